//! `tenant-service audit export --before DATE --out FILE`: the entries older
//! than DATE, of every tenant, as JSON Lines; never over a running service's
//! store, never over an existing file.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::helpers::*;
use super::process::BIN;

fn export(data: &Path, before: &str, out: &Path) -> (i32, String, String) {
    let o = Command::new(BIN)
        .args(["audit", "export", "--before", before, "--out"])
        .arg(out)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn export_writes_every_older_entry_of_every_tenant_and_nothing_newer() {
    let app = TestApp::spawn().await;
    let d = app.district("D").await;
    let s = app.school(d, "S").await;
    let ds = app.purchase(d, 2).await;
    let ss = app.purchase(s, 3).await;
    assert_eq!(app.allocate(ss[0], "l1").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(app.reclaim(ss[0], Some("left")).await.status, 200);
    let mut want = Vec::new();
    for &seat in ds.iter().chain(&ss) {
        want.extend(app.audit(seat).await);
    }
    let reclaim_at = app.audit(ss[0]).await[2]["created_at"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let data = app.data_dir();
    let out = app.dir.path().join("export.jsonl");

    let (code, _, stderr) = export(&data, "2100-01-01", &out);
    assert_eq!(code, 1, "a running service holds the store");
    assert!(stderr.contains("in use by another tenant-service process"), "{stderr}");
    assert!(!out.exists());

    let dir = app.stop().await;
    let (code, stdout, stderr) = export(&data, "2100-01-01", &out);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("exported 7 audit entries"), "{stdout}");
    let got = lines(&out);
    assert_eq!(got.len(), want.len());
    for entry in &want {
        let line = got
            .iter()
            .find(|l| l["id"] == entry["id"])
            .unwrap_or_else(|| panic!("{entry} not exported"));
        let mut without_tenant = line.clone();
        let tenant = without_tenant
            .as_object_mut()
            .and_then(|o| o.remove("tenant_id"))
            .unwrap_or_default();
        let kind = without_tenant
            .as_object_mut()
            .and_then(|o| o.remove("kind"))
            .unwrap_or_default();
        assert_eq!(kind, "seat_audit");
        assert_eq!(&without_tenant, entry);
        let owner = if ds.contains(&entry["seat_id"].as_u64().unwrap_or_default()) {
            d
        } else {
            s
        };
        assert_eq!(tenant, owner);
    }

    // Only entries created before the cut: everything but the reclaim.
    let cut = dir.path().join("cut.jsonl");
    let (code, _, stderr) = export(&data, &reclaim_at, &cut);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(lines(&cut).len(), 6);
    assert!(lines(&cut).iter().all(|l| l["reason"] != "left"));

    let old = dir.path().join("old.jsonl");
    assert_eq!(export(&data, "2000-01-01", &old).0, 0);
    assert!(lines(&old).is_empty());

    // Never over an existing file; a bad date is refused.
    let before = std::fs::read(&out).unwrap_or_default();
    let (code, _, stderr) = export(&data, "2100-01-01", &out);
    assert_eq!(code, 1);
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap_or_default(), before);
    let (code, _, stderr) = export(&data, "soon", &dir.path().join("x.jsonl"));
    assert_eq!(code, 1);
    assert!(stderr.contains("--before"), "{stderr}");
}
