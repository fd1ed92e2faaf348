//! What the binary says when it starts, in text and in JSON logs, and the
//! refusal of a log format it does not have.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::process::BIN;

/// How long a start may take to say it is listening.
const START: Duration = Duration::from_secs(30);

/// The binary, started in `cwd` with `args`, its settings from nothing but
/// those (the environment's TENANT_* and RUST_LOG removed); its stdout
/// lines arrive on the receiver.
fn launch(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut command = Command::new(BIN);
    command.current_dir(cwd).args(["--listen", "127.0.0.1:0"]).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("TENANT_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines up to and including the first that `last` accepts.
fn lines_until(rx: &mpsc::Receiver<String>, last: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_timeout(START).unwrap_or_else(|e| panic!("{e} after {lines:?}"));
        let done = last(&line);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_start_says_what_starts_with_which_settings() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cwd = std::fs::canonicalize(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(cwd.join("tenant.toml"), "[auth]\nplatform_admins = []\n").unwrap_or_else(|e| panic!("{e}"));
    // A relative data dir is reported absolute; the config file, by its path.
    let (child, rx) = launch(&cwd, &["--config", "tenant.toml", "--data-dir", "data"], &[]);
    let lines = lines_until(&rx, |l| l.contains("listening"));
    stop(child);
    let starting: Vec<&String> = lines.iter().filter(|l| l.contains(" starting ")).collect();
    assert_eq!(starting.len(), 1, "{lines:#?}");
    let line = starting[0];
    for part in [
        format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        format!("config={}", cwd.join("tenant.toml").display()),
        format!("data_dir={}", cwd.join("data").display()),
        "auth=\"header\"".to_owned(),
        "enforce_roles=true".to_owned(),
    ] {
        assert!(line.contains(&part), "{part} not in {line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("no platform admin is configured")),
        "{lines:#?}"
    );

    // No config file: it says so; roles not enforced: it warns about that.
    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (child, rx) = launch(
        empty.path(),
        &["--data-dir", "data"],
        &[
            ("TENANT_ENFORCE_ROLES", "false"),
            ("TENANT_AUTH_MODE", "jwt"),
            ("TENANT_JWT_SECRET", "s"),
        ],
    );
    let lines = lines_until(&rx, |l| l.contains("listening"));
    stop(child);
    let line = lines
        .iter()
        .find(|l| l.contains(" starting "))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    for part in ["config=none", "auth=\"jwt\"", "enforce_roles=false"] {
        assert!(line.contains(part), "{part} not in {line}");
    }
    assert!(lines.iter().any(|l| l.contains("roles are not enforced")), "{lines:#?}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("config.toml"), "log_format = \"json\"\n").unwrap_or_else(|e| panic!("{e}"));
    let (child, rx) = launch(
        dir.path(),
        &["--data-dir", "data"],
        &[("TENANT_PLATFORM_ADMINS", "root")],
    );
    let lines = lines_until(&rx, |l| l.contains("listening"));
    let objects: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let starting = objects
        .iter()
        .find(|o| o["fields"]["message"] == "starting")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(starting["fields"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(starting["fields"]["enforce_roles"], true);
    assert_eq!(starting["level"], "INFO");
    let addr = objects
        .iter()
        .find_map(|o| o["fields"]["addr"].as_str())
        .unwrap_or_else(|| panic!("{lines:#?}"))
        .to_owned();

    let res = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/me"))
        .header("x-request-id", "trace-17")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res.status(), 401);
    let lines = lines_until(&rx, |l| l.contains("trace-17") && l.contains("\"status\""));
    stop(child);
    let request: Value =
        serde_json::from_str(lines.last().map_or("", String::as_str)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(request["span"]["request_id"], "trace-17", "{request}");
    assert_eq!(request["span"]["error_code"], "UNAUTHORIZED", "{request}");
    assert_eq!(request["fields"]["status"], 401, "{request}");
}

#[test]
fn a_log_format_it_does_not_have_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (config, env) in [("log_format = \"xml\"\n", None), ("", Some("JSON"))] {
        std::fs::write(dir.path().join("config.toml"), config).unwrap_or_else(|e| panic!("{e}"));
        let mut command = Command::new(BIN);
        command
            .current_dir(dir.path())
            .args(["--listen", "127.0.0.1:0", "--data-dir", "data"])
            .env_remove("TENANT_LOG_FORMAT");
        if let Some(format) = env {
            command.env("TENANT_LOG_FORMAT", format);
        }
        let out = command.output().unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].starts_with("tenant-service: setting log_format = ") && lines[0].ends_with("must be text or json"),
            "{stderr}"
        );
        assert!(
            !dir.path().join("data").exists(),
            "nothing was created before the refusal"
        );
    }
}
