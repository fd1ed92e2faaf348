//! Start-up faults, with the real binary: a data dir that cannot be used, or a
//! store holding a corrupted or unknown-version record. Each must stop the
//! start with exactly one line on stderr naming the problem and the path, a
//! non-zero exit, and nothing in the store overwritten or dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tenant_service::store::records::{self, key, FORMAT};

use super::helpers::open_sled;
use super::process::{Server, BIN};

type Dump = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every key and value in the store, read with sled directly.
fn dump(data: &Path) -> Dump {
    let db = open_sled(data);
    db.iter()
        .map(|kv| {
            let (k, v) = kv.unwrap_or_else(|e| panic!("scan: {e}"));
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Replaces one value, with sled directly, and flushes.
fn overwrite(data: &Path, key: &[u8], value: Vec<u8>) {
    let db = open_sled(data);
    assert!(
        db.insert(key, value).unwrap_or_else(|e| panic!("{e}")).is_some(),
        "no record under {}",
        records::show_key(key)
    );
    db.flush().unwrap_or_else(|e| panic!("{e}"));
}

/// Starts the binary on `data`, expecting it to refuse; returns its one stderr line.
fn refused_start(data: &Path) -> String {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "error")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "started on {}: {stderr}", data.display());
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr}");
    assert!(lines[0].starts_with("tenant-service: "), "{stderr}");
    assert!(
        lines[0].contains(&data.display().to_string()),
        "path not named: {stderr}"
    );
    lines[0].to_owned()
}

/// A store with a district, a school, seats, an allocation (so one seat and
/// one audit record exist), written by the binary and stopped cleanly.
async fn populated(data: &Path) -> (u64, u64) {
    let mut server = Server::start(data);
    let (_, d) = server
        .post("/api/v1/district", json!({"name": "D"}))
        .await
        .unwrap_or_default();
    let district = d["id"].as_u64().unwrap_or_else(|| panic!("{d}"));
    let (_, seats) = server
        .post("/api/v1/seats/purchase", json!({"tenant_id": district, "count": 3}))
        .await
        .unwrap_or_default();
    let seat = seats[0]["id"].as_u64().unwrap_or_else(|| panic!("{seats}"));
    let (status, _) = server
        .post("/api/v1/seats/allocate", json!({"seat_id": seat, "learner_id": "l1"}))
        .await
        .unwrap_or_default();
    assert_eq!(status, 200);
    server.sigterm();
    assert_eq!(server.exit_code(Duration::from_secs(10)).await, Some(0));
    (district, seat)
}

#[tokio::test]
async fn corrupted_or_unknown_version_records_stop_the_start_and_are_kept() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let (district, seat) = populated(&data).await;
    let pristine = dump(&data);
    let audit_key = pristine
        .keys()
        .find(|k| k.first() == Some(&records::AUDIT))
        .cloned()
        .unwrap_or_else(|| panic!("no audit record"));
    let trail_key = pristine
        .keys()
        .find(|k| k.first() == Some(&records::TRAIL))
        .cloned()
        .unwrap_or_else(|| panic!("no trail record"));

    let cases: Vec<(&str, Vec<u8>, Vec<u8>, &str)> = vec![
        (
            "tenant, unknown version",
            key(records::TENANT, district).to_vec(),
            vec![9, 1, 2, 3],
            "format version 9",
        ),
        (
            "seat, garbage",
            key(records::SEAT, seat).to_vec(),
            vec![FORMAT, 0xff, 0xfe, 0x00],
            "corrupted",
        ),
        (
            "block, empty",
            key(records::BLOCK, seat).to_vec(),
            Vec::new(),
            "corrupted",
        ),
        (
            "audit, unknown version",
            audit_key.clone(),
            vec![FORMAT + 1],
            "format version 2",
        ),
        (
            "trail entry, garbage",
            trail_key.clone(),
            vec![FORMAT, 7, 0, 0, 0],
            "corrupted",
        ),
    ];
    for (what, k, bad, problem) in cases {
        let original = pristine
            .get(&k)
            .cloned()
            .unwrap_or_else(|| panic!("{what}: no such record"));
        overwrite(&data, &k, bad);
        let corrupted = dump(&data);
        let line = refused_start(&data);
        assert!(line.contains(problem), "{what}: {line}");
        assert!(
            line.contains(&records::show_key(&k)),
            "{what}: the record is not named: {line}"
        );
        assert_eq!(dump(&data), corrupted, "{what}: the refused start changed the store");
        eprintln!("{what}: {line}");
        // Repair it; the service starts again with everything in place.
        overwrite(&data, &k, original);
    }
    assert_eq!(dump(&data), pristine);
    let server = Server::start(&data);
    let (status, body) = server.get(&format!("/api/v1/seats/{seat}")).await;
    assert_eq!((status, body["learner_id"].clone()), (200, json!("l1")));
}

#[test]
fn a_data_dir_that_is_a_file_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    std::fs::write(&data, b"not a directory").unwrap_or_else(|e| panic!("{e}"));
    let line = refused_start(&data);
    assert!(line.contains("is not a directory"), "{line}");
    eprintln!("data dir is a file: {line}");
    assert_eq!(
        std::fs::read(&data).ok().as_deref(),
        Some(&b"not a directory"[..]),
        "overwritten"
    );
}

#[tokio::test]
async fn an_unreadable_data_dir_is_refused_with_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    populated(&data).await;
    let before = dump(&data);
    let db_file = data.join("db");
    // The store's main file unreadable. Root ignores permission bits, so as
    // root the same fault is made by replacing the file with a directory.
    let saved = std::fs::read(&db_file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&db_file, std::fs::Permissions::from_mode(0o000)).unwrap_or_else(|e| panic!("{e}"));
    let privileged = std::fs::File::open(&db_file).is_ok();
    if privileged {
        std::fs::remove_file(&db_file).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(&db_file).unwrap_or_else(|e| panic!("{e}"));
    }
    let line = refused_start(&data);
    eprintln!(
        "unreadable store ({}): {line}",
        if privileged { "db is a directory" } else { "mode 000" }
    );
    if privileged {
        std::fs::remove_dir(&db_file).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&db_file, &saved).unwrap_or_else(|e| panic!("{e}"));
    } else {
        assert_eq!(
            std::fs::metadata(&db_file).map(|m| m.len()).ok(),
            Some(saved.len() as u64)
        );
    }
    std::fs::set_permissions(&db_file, std::fs::Permissions::from_mode(0o644)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dump(&data), before, "the store changed");
}

/// `[audit] retention_days = 0` would export and purge the whole trail at
/// start: the start is refused with one line naming the setting, and the
/// store is left as it was.
#[tokio::test]
async fn a_retention_under_one_day_is_refused_and_nothing_is_purged() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    populated(&data).await;
    let before = dump(&data);
    let config = dir.path().join("retention.toml");
    std::fs::write(&config, "[audit]\nretention_days = 0\n").unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the service started with retention_days = 0");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(!status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr}");
    assert!(lines[0].starts_with("tenant-service: "), "{stderr}");
    assert!(
        lines[0].contains("retention_days") && lines[0].contains("at least 1 day"),
        "{stderr}"
    );
    eprintln!("retention_days = 0: {}", lines[0]);
    assert_eq!(dump(&data), before, "the refused start changed the store");
    assert!(!data.join("audit-exports").exists(), "an export was written");
}

/// A mistyped log filter is an error at start, not a service with no log.
#[test]
fn a_log_filter_that_is_not_one_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    for (via_env, filter) in [(true, "infoo"), (true, "tenant_service=loud"), (false, "infoo")] {
        let mut command = Command::new(BIN);
        command.args(["--listen", "127.0.0.1:0", "--data-dir"]).arg(&data);
        if via_env {
            command.env("RUST_LOG", filter);
        } else {
            let config = dir.path().join("config.toml");
            std::fs::write(&config, format!("log_level = \"{filter}\"\n")).unwrap_or_else(|e| panic!("{e}"));
            command.env_remove("RUST_LOG").arg("--config").arg(&config);
        }
        let out = command.output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{filter}: {stderr}");
        assert!(
            stderr.trim().starts_with("tenant-service: log filter") && stderr.contains(filter),
            "{filter}: {stderr}"
        );
        assert!(!data.exists(), "nothing was created before the refusal");
    }
}
