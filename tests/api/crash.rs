//! The built binary as a child process: kill -9 under load loses nothing
//! acknowledged; SIGTERM exits 0; a locked data dir is refused with one line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts the binary on port 0 and reads the bound address from its log.
    pub fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenant-service"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .env("TENANT_ENFORCE_ROLES", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => panic!("server exited before listening"),
            };
            if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("listening")) {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on unix
        let _ = self.child.wait();
    }

    pub async fn post(&self, path: &str, body: Value) -> Option<(u16, Value)> {
        let res = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("X-User-ID", "crash_test")
            .json(&body)
            .send()
            .await
            .ok()?;
        let status = res.status().as_u16();
        Some((status, res.json().await.ok()?))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}{}", self.base, path))
            .header("X-User-ID", "crash_test")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_else(|e| panic!("GET {path}: {e}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What the clients were told: seat → learner for every acknowledged allocation,
/// and seats whose reclaim was acknowledged after it.
#[derive(Default)]
struct Acked {
    holder: HashMap<u64, Option<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let (_, district) = server
        .post("/api/v1/district", json!({"name": "Crash"}))
        .await
        .unwrap_or_default();
    let tenant = district["id"].as_u64().unwrap_or_else(|| panic!("{district}"));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut all_seats: Vec<u64> = Vec::new();
    let mut seen_ids: Vec<u64> = Vec::new();

    for round in 0..3u64 {
        let (status, seats) = server
            .post("/api/v1/seats/purchase", json!({"tenant_id": tenant, "count": 400}))
            .await
            .unwrap_or_else(|| panic!("purchase failed"));
        assert_eq!(status, 201);
        let seats: Vec<u64> = seats
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .filter_map(|s| s["id"].as_u64())
            .collect();
        assert!(
            seats.iter().all(|s| !seen_ids.contains(s)),
            "round {round}: a seat id was reused"
        );
        seen_ids.extend(&seats);
        all_seats.extend(&seats);

        // 16 clients allocate (and sometimes reclaim) until the server dies.
        let base = Arc::new(server.base.clone());
        let client = server.client.clone();
        let tasks: Vec<_> = (0..16usize)
            .map(|c| {
                let acked = Arc::clone(&acked);
                let seats: Vec<u64> = seats.iter().copied().skip(c).step_by(16).collect();
                let base = Arc::clone(&base);
                let client = client.clone();
                tokio::spawn(async move {
                    for (i, seat) in seats.into_iter().enumerate() {
                        let learner = format!("r{round}-c{c}-{i}");
                        let res = client
                            .post(format!("{base}/api/v1/seats/allocate"))
                            .header("X-User-ID", "crash_test")
                            .json(&json!({"seat_id": seat, "learner_id": learner}))
                            .send()
                            .await;
                        match res {
                            Ok(r) if r.status() == 200 => {
                                acked
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .holder
                                    .insert(seat, Some(learner));
                            }
                            Ok(r) => panic!("allocate answered {}", r.status()),
                            Err(_) => return, // the server is gone
                        }
                        if i % 3 == 0 {
                            let res = client
                                .post(format!("{base}/api/v1/seats/reclaim"))
                                .header("X-User-ID", "crash_test")
                                .json(&json!({"seat_id": seat}))
                                .send()
                                .await;
                            match res {
                                Ok(r) if r.status() == 200 => {
                                    acked
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .holder
                                        .insert(seat, None);
                                }
                                Ok(r) => panic!("reclaim answered {}", r.status()),
                                Err(_) => return,
                            }
                        }
                    }
                })
            })
            .collect();
        // Kill at a different moment each round, while requests are in flight.
        tokio::time::sleep(Duration::from_millis(40 + 70 * round)).await;
        server.kill9();
        for t in tasks {
            t.await.unwrap_or_else(|e| panic!("client task: {e}"));
        }

        server = Server::start(&data);
        let acked: HashMap<u64, Option<String>> = acked.lock().unwrap_or_else(|e| e.into_inner()).holder.clone();
        // Every acknowledged write is there exactly as acknowledged. (A write in
        // flight at the kill may or may not have survived: both are correct.)
        let mut assigned = 0;
        let mut holders: HashMap<String, u64> = HashMap::new();
        for &seat in &all_seats {
            let (status, body) = server.get(&format!("/api/v1/seats/{seat}")).await;
            assert_eq!(status, 200, "round {round}: seat {seat} lost: {body}");
            if let Some(expected) = acked.get(&seat) {
                match expected {
                    Some(learner) if body["state"] == "assigned" && body["learner_id"] == json!(learner) => {}
                    // An acknowledged allocation followed by an unacknowledged reclaim.
                    Some(_) if body["state"] == "free" => {}
                    None if body["state"] == "free" => {}
                    _ => panic!("round {round}: seat {seat} is {body}, acknowledged {expected:?}"),
                }
            }
            if body["state"] == "assigned" {
                assigned += 1;
                let learner = body["learner_id"].as_str().unwrap_or_default().to_owned();
                assert!(holders.insert(learner, seat).is_none(), "a learner holds two seats");
            }
            // Audit entries equal transitions: states alternate free/assigned from the purchase on.
            let (_, audit) = server.get(&format!("/api/v1/seats/{seat}/audit")).await;
            let audit = audit.as_array().cloned().unwrap_or_default();
            assert_eq!(
                audit.last().map(|a| a["new_state"].clone()),
                Some(body["state"].clone())
            );
            for pair in audit.windows(2) {
                assert_eq!(
                    pair[0]["new_state"], pair[1]["previous_state"],
                    "seat {seat}: audit gap"
                );
            }
        }
        let (_, summary) = server.get(&format!("/api/v1/seats/summary?tenantId={tenant}")).await;
        assert_eq!(
            summary["assigned_seats"],
            json!(assigned),
            "round {round}: counters differ from seats"
        );
        assert_eq!(summary["total_seats"], json!(all_seats.len()));
        eprintln!(
            "round {round}: {} acknowledged seats checked, {assigned} assigned after restart",
            acked.len()
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_cleanly_with_exit_zero_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let (status, d) = server
        .post("/api/v1/district", json!({"name": "T"}))
        .await
        .unwrap_or_default();
    assert_eq!(status, 201);
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = server.child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status.code();
        }
        assert!(Instant::now() < deadline, "server did not stop within 10 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code, Some(0));
    let server = Server::start(&data);
    let (status, body) = server.get(&format!("/api/v1/tenant/{}", d["id"])).await;
    assert_eq!((status, body["name"].clone()), (200, json!("T")));
}

#[test]
fn a_second_process_on_the_same_data_dir_exits_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let _first = Server::start(&data);
    let out = Command::new(env!("CARGO_BIN_EXE_tenant-service"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "error")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another tenant-service process"), "{stderr}");
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
}
