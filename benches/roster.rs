//! Roster imports against the real server in-process.
//!
//! `cargo bench --bench roster`
//!
//! A generated district (tests/support/oneroster.rs): 50 schools, 100,000
//! students, a teacher per 20 students, a site administrator per school and
//! a district administrator, all bulk. Phases, one after another on one
//! server, each one `POST /api/v1/district/{id}/roster` answered once
//! durable (upload included):
//! 1. import into an empty district: 50 schools and 5,051 roles made, the
//!    100,000 students reported unseated (the new schools have no seats);
//! 2. 2,020 seats bought in each school, then the same package dry-run
//!    (reading and planning alone) and imported: 100,000 students seated;
//! 3. the same package again (nothing changes);
//! 4. a delta of 1,000 changes: 500 students' roles deleted, 500 new
//!    students (users and roles) added.
//!
//! The baseline, in the same run: 100,000 seats assigned by 10
//! `POST /seats/assign/bulk` of 10,000 learners in another district.

mod common;
#[path = "../tests/support/oneroster.rs"]
mod oneroster;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{f1, f2, table, Conn, Req, Server, ROOT};
use oneroster::{Mode, Roster};
use serde_json::Value;

const SCHOOLS: usize = 50;
const STUDENTS: usize = 100_000;
const SEATS_PER_SCHOOL: u64 = 2_020;

fn main() {
    let generating = Instant::now();
    let roster = oneroster::district(SCHOOLS, STUDENTS);
    let zip = roster.zip();
    let generated = generating.elapsed();
    let delta = delta_package();
    let delta_zip = delta.zip();

    let server = Server::start();
    let addr = server.addr;
    let client = common::runtime("client", 2);
    let rows = client.block_on(async {
        let district = made(addr, "/api/v1/district", r#"{"name":"Springfield"}"#).await;
        let mut rows = Vec::new();
        let (took, report) = import(addr, district, &zip, false).await;
        check(&report, "schools_created", SCHOOLS as u64);
        check(&report, "unseated", STUDENTS as u64);
        rows.push(("1. into an empty district (schools, roles; no seats yet)", took, report));

        let (_, d) = get(addr, &format!("/api/v1/district/{district}")).await;
        for school in d["children"].as_array().into_iter().flatten() {
            let id = school["id"].as_u64().unwrap_or(0);
            common::call(addr, common::purchase_req(id, SEATS_PER_SCHOOL).by(ROOT), 201).await;
        }
        let (took, report) = import(addr, district, &zip, true).await;
        check(&report, "seated", STUDENTS as u64);
        rows.push(("2a. the same, dry run (read and plan only)", took, report));
        let (took, report) = import(addr, district, &zip, false).await;
        check(&report, "seated", STUDENTS as u64);
        rows.push(("2b. the same, seating 100,000 students", took, report));
        let (took, report) = import(addr, district, &zip, false).await;
        check(&report, "seated", 0);
        check(&report, "already_seated", STUDENTS as u64);
        rows.push(("3. unchanged re-import", took, report));
        let (took, report) = import(addr, district, &delta_zip, false).await;
        check(&report, "seated", 500);
        check(&report, "reclaimed", 500);
        rows.push(("4. delta of 1,000 changes", took, report));

        // The baseline: the same number of seats by bulk assign.
        let other = common::setup(addr, "Baseline").await;
        common::purchase(addr, other, STUDENTS as u64).await;
        let mut conn = Conn::open(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
        let started = Instant::now();
        for r in 0..STUDENTS / 10_000 {
            let learners: Vec<String> = (0..10_000).map(|i| format!("base-{r:02}-{i:05}")).collect();
            let body = serde_json::json!({"tenant_id": other, "learner_ids": learners}).to_string();
            let (status, _) = conn
                .call(Req::post("/api/v1/seats/assign/bulk", body))
                .await
                .unwrap_or_else(|e| panic!("bulk: {e}"));
            assert_eq!(status.as_u16(), 200);
        }
        (rows, started.elapsed())
    });
    drop(client);
    drop(server);
    let (rows, baseline) = rows;

    println!(
        "\nroster: {} cores; server in-process, client on the same machine; package {:.1} MiB zipped \
         ({} students, {} schools), generated in {:.2} s",
        common::cores(),
        zip.len() as f64 / (1024.0 * 1024.0),
        STUDENTS,
        SCHOOLS,
        generated.as_secs_f64()
    );
    let seated_rate = |took: Duration| STUDENTS as f64 / took.as_secs_f64();
    let base_rate = seated_rate(baseline);
    let mut out = Vec::new();
    for (name, took, report) in &rows {
        let t = &report["totals"];
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        let changes = n("seated") + n("reclaimed") + n("roles_granted") + n("roles_deactivated") + n("schools_created");
        out.push(vec![
            (*name).to_owned(),
            f2(took.as_secs_f64()),
            changes.to_string(),
            n("seated").to_string(),
            n("already_seated").to_string(),
            n("reclaimed").to_string(),
            n("roles_granted").to_string(),
        ]);
    }
    table(
        "roster imports (s = request sent to report received, durable)",
        &[
            "phase",
            "s",
            "changes",
            "seated",
            "already",
            "reclaimed",
            "roles granted",
        ],
        &out,
    );
    let seating = rows[2].1;
    println!(
        "\nbaseline, same server: 100,000 seats by 10 bulk assigns of 10,000: {} s ({} seats/s); \
         the seating import {} s ({} seats/s, {}x the baseline's time)",
        f2(baseline.as_secs_f64()),
        f1(base_rate),
        f2(seating.as_secs_f64()),
        f1(seated_rate(seating)),
        f2(seating.as_secs_f64() / baseline.as_secs_f64())
    );
}

/// 500 students' roles deleted (stu-000000.., in school order) and 500 new
/// students, ten in each school.
fn delta_package() -> Roster {
    let mut r = Roster::delta("district-1", [Mode::Absent, Mode::Delta, Mode::Delta]);
    for i in 0..500 {
        let school = format!("school-{:02}", i * SCHOOLS / STUDENTS);
        r = r.role_row(&format!("stu-{i:06}"), "student", &school, "", "", true);
    }
    for i in 0..500 {
        let user = format!("new-{i:04}");
        r = r
            .user(&user, true)
            .role_row(&user, "student", &format!("school-{:02}", i % SCHOOLS), "", "", false);
    }
    r
}

fn check(report: &Value, total: &str, want: u64) {
    assert_eq!(
        report["totals"][total].as_u64(),
        Some(want),
        "{total}: {}",
        report["totals"]
    );
}

async fn made(addr: SocketAddr, path: &str, body: &str) -> u64 {
    let bytes = common::call(addr, Req::post(path, body.to_owned()).by(ROOT), 201).await;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
    v["id"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let bytes = common::call(addr, Req::get(path.to_owned()).by(ROOT), 200).await;
    (200, serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}")))
}

/// One import, timed from the request to the whole report.
async fn import(addr: SocketAddr, district: u64, zip: &[u8], dry_run: bool) -> (Duration, Value) {
    let query = if dry_run { "?dry_run=true" } else { "" };
    let client = reqwest::Client::new();
    let started = Instant::now();
    let res = client
        .post(format!("http://{addr}/api/v1/district/{district}/roster{query}"))
        .header("X-User-ID", ROOT)
        .header("content-type", "application/zip")
        .body(zip.to_vec())
        .send()
        .await
        .unwrap_or_else(|e| panic!("import: {e}"));
    let status = res.status().as_u16();
    let body = res.bytes().await.unwrap_or_else(|e| panic!("import body: {e}"));
    let took = started.elapsed();
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(2000)])
    );
    (took, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}")))
}
