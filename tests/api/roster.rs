//! Roster imports over HTTP: `POST /api/v1/district/{id}/roster` with a
//! OneRoster 1.2 CSV package (tests/support/oneroster.rs builds them).

use serde_json::{json, Value};

use super::helpers::{Response, TestApp, ADMIN};
use super::oneroster::{Mode, Roster};

async fn import_as(app: &TestApp, user: &str, district: u64, zip: Vec<u8>, dry_run: bool) -> Response {
    let query = if dry_run { "?dry_run=true" } else { "" };
    app.send(
        app.client
            .post(app.url(&format!("/api/v1/district/{district}/roster{query}")))
            .header("X-User-ID", user)
            .header("content-type", "application/zip")
            .body(zip),
    )
    .await
}

async fn import(app: &TestApp, district: u64, roster: &Roster) -> Value {
    let r = import_as(app, ADMIN, district, roster.zip(), false).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn school<'a>(report: &'a Value, sid: &str) -> &'a Value {
    report["schools"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["sourced_id"] == sid))
        .unwrap_or_else(|| panic!("no school {sid} in {report}"))
}

fn tenant_of(report: &Value, sid: &str) -> u64 {
    school(report, sid)["tenant_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no tenant id for {sid}: {report}"))
}

/// Two schools (n1, s1), three students, a teacher, a site admin, a district admin.
fn springfield() -> Roster {
    Roster::bulk("d1", "Springfield USD")
        .school("n1", "North Elementary")
        .school("s1", "South Elementary")
        .student("stu-1", "n1")
        .student("stu-2", "n1")
        .student("stu-3", "s1")
        .staff("tch-1", "teacher", "n1")
        .staff("adm-1", "siteAdministrator", "s1")
        .staff("supt", "districtAdministrator", "d1")
}

async fn seated_learners(app: &TestApp, tenant: u64) -> Vec<String> {
    let r = app
        .get(&format!("/api/v1/seats?tenantId={tenant}&state=assigned&limit=1000"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut learners: Vec<String> = r.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["learner_id"].as_str().map(str::to_owned))
        .collect();
    learners.sort();
    learners
}

async fn active_roles(app: &TestApp, tenant: u64) -> Vec<(String, String)> {
    let r = app.get(&format!("/api/v1/roles?tenantId={tenant}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut roles: Vec<(String, String)> = r
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["is_active"] == true)
        .map(|r| {
            (
                r["user_id"].as_str().unwrap_or("").to_owned(),
                r["role"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    roles.sort();
    roles
}

/// Everything an import could change in a district, to compare before and after.
async fn snapshot(app: &TestApp, district: u64) -> Value {
    let d = app.get(&format!("/api/v1/district/{district}")).await;
    let mut seats = Vec::new();
    let mut roles = vec![json!(active_roles(app, district).await)];
    for child in d.body["children"].as_array().into_iter().flatten() {
        let id = child["id"].as_u64().unwrap_or(0);
        seats.push(json!(seated_learners(app, id).await));
        roles.push(json!(active_roles(app, id).await));
    }
    json!({"district": d.body, "seats": seats, "roles": roles})
}

#[tokio::test]
async fn a_first_import_makes_the_schools_and_staff_roles_and_a_second_seats_the_students() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let report = import(&app, district, &springfield()).await;
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["district"]["linked"], true);
    assert_eq!(report["district"]["renamed_from"], "Springfield");
    assert_eq!(school(&report, "n1")["change"], "created");
    // New schools have no seats yet: every student is listed, nothing fails.
    assert_eq!(school(&report, "n1")["unseated"], json!(["stu-1", "stu-2"]));
    assert_eq!(report["totals"]["schools_created"], 2);
    assert_eq!(report["totals"]["roles_granted"], 3);
    assert_eq!(report["totals"]["seated"], 0);
    let (north, south) = (tenant_of(&report, "n1"), tenant_of(&report, "s1"));
    let d = app.get(&format!("/api/v1/district/{district}")).await;
    assert_eq!(d.body["name"], "Springfield USD");
    assert_eq!(d.body["children"][0]["name"], "North Elementary");
    assert_eq!(active_roles(&app, north).await, [("tch-1".into(), "teacher".into())]);
    assert_eq!(active_roles(&app, south).await, [("adm-1".into(), "admin".into())]);
    assert_eq!(active_roles(&app, district).await, [("supt".into(), "admin".into())]);

    app.purchase(north, 5).await;
    app.purchase(south, 5).await;
    let report = import(&app, district, &springfield()).await;
    assert_eq!(report["totals"]["seated"], 3, "{report}");
    assert_eq!(report["totals"]["unseated"], 0);
    assert_eq!(report["totals"]["schools_created"], 0);
    assert_eq!(report["totals"]["roles_granted"], 0);
    assert_eq!(seated_learners(&app, north).await, ["stu-1", "stu-2"]);
    assert_eq!(seated_learners(&app, south).await, ["stu-3"]);
    // Every seat change is audited: the caller, and a reason naming the import.
    let audit = app
        .get(&format!("/api/v1/audit?tenantId={north}&order=desc&limit=1"))
        .await;
    let entry = &audit.body["items"][0];
    assert_eq!(entry["changed_by"], ADMIN);
    let reason = format!(
        "Seated by roster (roster import {})",
        report["import_id"].as_str().unwrap_or("?")
    );
    assert_eq!(entry["reason"], reason);
}

#[tokio::test]
async fn importing_the_same_package_again_changes_nothing() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let first = import(&app, district, &springfield()).await;
    for sid in ["n1", "s1"] {
        app.purchase(tenant_of(&first, sid), 3).await;
    }
    import(&app, district, &springfield()).await;
    let before = snapshot(&app, district).await;
    let north = tenant_of(&first, "n1");
    let trail_before = app.get(&format!("/api/v1/audit?tenantId={district}&limit=1000")).await;
    let events_before = app.get(&format!("/api/v1/roles/events?tenantId={north}")).await;

    let again = import(&app, district, &springfield()).await;
    let changes: u64 = [
        "schools_created",
        "schools_renamed",
        "schools_deactivated",
        "seated",
        "reclaimed",
        "roles_granted",
        "roles_deactivated",
    ]
    .iter()
    .map(|k| again["totals"][k].as_u64().unwrap_or(99))
    .sum();
    assert_eq!(changes, 0, "{again}");
    assert_eq!(again["totals"]["already_seated"], 3);
    assert_eq!(snapshot(&app, district).await, before);
    let trail_after = app.get(&format!("/api/v1/audit?tenantId={district}&limit=1000")).await;
    assert_eq!(
        trail_after.body, trail_before.body,
        "nothing was audited: nothing changed"
    );
    let events_after = app.get(&format!("/api/v1/roles/events?tenantId={north}")).await;
    assert_eq!(events_after.body, events_before.body);
}

#[tokio::test]
async fn a_bulk_roster_without_some_students_reclaims_their_seats() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let first = import(&app, district, &springfield()).await;
    let north = tenant_of(&first, "n1");
    let seats = app.purchase(north, 3).await;
    app.purchase(tenant_of(&first, "s1"), 3).await;
    import(&app, district, &springfield()).await;
    // A learner seated by hand in the roster's school is the roster's to decide too.
    let by_hand = app.allocate(seats[2], "walk-in").await;
    assert_eq!(by_hand.status, 200, "{}", by_hand.body);

    let without_stu_2 = Roster::bulk("d1", "Springfield USD")
        .school("n1", "North Elementary")
        .school("s1", "South Elementary")
        .student("stu-1", "n1")
        .student("stu-3", "s1")
        .staff("tch-1", "teacher", "n1")
        .staff("adm-1", "siteAdministrator", "s1")
        .staff("supt", "districtAdministrator", "d1");
    let report = import(&app, district, &without_stu_2).await;
    assert_eq!(school(&report, "n1")["reclaimed"], json!(["stu-2", "walk-in"]));
    assert_eq!(seated_learners(&app, north).await, ["stu-1"]);
    let trail = app.audit(seats[1]).await;
    let last = trail.last().unwrap_or_else(|| panic!("no audit"));
    assert_eq!(last["new_state"], "free");
    assert!(
        last["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("Removed from roster (roster import "),
        "{last}"
    );
}

#[tokio::test]
async fn a_delta_file_changes_only_what_it_lists() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let first = import(&app, district, &springfield()).await;
    let (north, south) = (tenant_of(&first, "n1"), tenant_of(&first, "s1"));
    app.purchase(north, 5).await;
    app.purchase(south, 5).await;
    import(&app, district, &springfield()).await;

    let delta = Roster::delta("d1", [Mode::Delta, Mode::Delta, Mode::Delta])
        .school("e1", "East Elementary")
        .user("stu-4", true)
        .role_row("stu-4", "student", "s1", "", "", false)
        .role_row("stu-1", "student", "n1", "", "", true)
        .role_row("tch-1", "teacher", "n1", "", "", true);
    let report = import(&app, district, &delta).await;
    assert_eq!(
        report["files"],
        json!({"orgs": "delta", "users": "delta", "roles": "delta"})
    );
    assert_eq!(school(&report, "e1")["change"], "created");
    assert_eq!(school(&report, "n1")["reclaimed"], json!(["stu-1"]));
    assert_eq!(school(&report, "s1")["seated"], 1);
    assert_eq!(report["totals"]["roles_deactivated"], 1);
    assert_eq!(
        seated_learners(&app, north).await,
        ["stu-2"],
        "stu-2 is not in the delta: kept"
    );
    assert_eq!(seated_learners(&app, south).await, ["stu-3", "stu-4"]);
    assert!(active_roles(&app, north).await.is_empty());
    assert_eq!(active_roles(&app, south).await, [("adm-1".into(), "admin".into())]);
    // A delta that deletes a school closes it (its seats stay as they are).
    let closing =
        Roster::delta("d1", [Mode::Delta, Mode::Absent, Mode::Absent]).deleted_school("e1", "East Elementary");
    let report = import(&app, district, &closing).await;
    assert_eq!(school(&report, "e1")["change"], "deactivated");
    let east = tenant_of(&report, "e1");
    assert_eq!(
        app.get(&format!("/api/v1/tenant/{east}")).await.body["is_active"],
        false
    );
}

#[tokio::test]
async fn a_school_short_of_seats_seats_as_many_as_it_can_in_file_order_and_lists_the_rest() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let mut roster = Roster::bulk("d1", "Springfield USD").school("n1", "North");
    for i in 0..6 {
        roster = roster.student(&format!("kid-{}", 6 - i), "n1");
    }
    let first = import(&app, district, &roster).await;
    let north = tenant_of(&first, "n1");
    app.purchase(north, 4).await;
    let report = import(&app, district, &roster).await;
    let n1 = school(&report, "n1");
    assert_eq!(n1["seated"], 4);
    assert_eq!(
        n1["unseated"],
        json!(["kid-2", "kid-1"]),
        "the last in file order are left over"
    );
    assert_eq!(seated_learners(&app, north).await, ["kid-3", "kid-4", "kid-5", "kid-6"]);
    // More seats, and the same package seats the rest.
    app.purchase(north, 2).await;
    let report = import(&app, district, &roster).await;
    assert_eq!(
        (
            &school(&report, "n1")["seated"],
            &school(&report, "n1")["already_seated"]
        ),
        (&json!(2), &json!(4))
    );
}

#[tokio::test]
async fn disabled_users_and_ended_roles_hold_no_seat() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let first = import(&app, district, &springfield()).await;
    let north = tenant_of(&first, "n1");
    app.purchase(north, 5).await;
    app.purchase(tenant_of(&first, "s1"), 5).await;
    import(&app, district, &springfield()).await;

    let roster = Roster::bulk("d1", "Springfield USD")
        .school("n1", "North Elementary")
        .school("s1", "South Elementary")
        .user("stu-1", false)
        .role_row("stu-1", "student", "n1", "", "", false)
        .user("stu-2", true)
        .role_row("stu-2", "student", "n1", "2020-01-01", "2020-06-30", false)
        .user("stu-5", true)
        .role_row("stu-5", "student", "n1", "2999-01-01", "", false)
        .student("stu-3", "s1")
        .user("tch-1", false)
        .role_row("tch-1", "teacher", "n1", "", "", false);
    let report = import(&app, district, &roster).await;
    assert_eq!(school(&report, "n1")["reclaimed"], json!(["stu-1", "stu-2"]));
    assert_eq!(school(&report, "n1")["seated"], 0, "stu-5 starts in the future");
    assert!(seated_learners(&app, north).await.is_empty());
    assert!(
        active_roles(&app, north).await.is_empty(),
        "a disabled teacher loses the role"
    );
}

#[tokio::test]
async fn staff_roles_follow_the_roster_and_roles_granted_by_hand_are_never_touched() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let first = import(&app, district, &springfield()).await;
    let (north, south) = (tenant_of(&first, "n1"), tenant_of(&first, "s1"));
    // By hand: a manager in North, and the roster's teacher-to-be as manager in South.
    for (user, tenant) in [("helper", north), ("tch-1", south)] {
        let r = app
            .post(
                "/api/v1/roles",
                json!({"user_id": user, "tenant_id": tenant, "role": "manager"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // tch-1 becomes a site admin in North and a teacher in South; adm-1 and supt leave.
    let roster = Roster::bulk("d1", "Springfield USD")
        .school("n1", "North Elementary")
        .school("s1", "South Elementary")
        .staff("tch-1", "teacher", "n1")
        .role_row("tch-1", "siteAdministrator", "n1", "", "", false)
        .role_row("tch-1", "teacher", "s1", "", "", false);
    let report = import(&app, district, &roster).await;
    assert_eq!(
        report["roles"]["granted"],
        json!([{"user_id": "tch-1", "tenant_id": north, "org_sourced_id": "n1", "role": "admin"}])
    );
    let ended: Vec<&str> = report["roles"]["deactivated"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["user_id"].as_str())
        .collect();
    assert_eq!(ended, ["supt", "tch-1", "adm-1"]);
    assert_eq!(
        report["roles"]["kept_hand_granted"],
        json!([{"user_id": "tch-1", "tenant_id": south, "held": "manager", "roster_role": "teacher"}])
    );
    assert_eq!(
        active_roles(&app, north).await,
        [("helper".into(), "manager".into()), ("tch-1".into(), "admin".into())]
    );
    assert_eq!(active_roles(&app, south).await, [("tch-1".into(), "manager".into())]);
    assert!(active_roles(&app, district).await.is_empty());
    // The trail says who did it.
    let events = app.get(&format!("/api/v1/roles/events?tenantId={north}")).await;
    let last = events
        .body
        .as_array()
        .and_then(|e| e.last().cloned())
        .unwrap_or_default();
    assert_eq!(
        (&last["change"], &last["changed_by"]),
        (&json!("granted"), &json!(ADMIN))
    );
}

#[tokio::test]
async fn a_package_that_breaks_the_binding_is_refused_whole_with_every_problem() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let first = import(&app, district, &springfield()).await;
    app.purchase(tenant_of(&first, "n1"), 5).await;
    let before = snapshot(&app, district).await;
    // Each package is otherwise a change the import would make (a new student).
    let base = || springfield().student("stu-9", "n1");
    let roles_header = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId";
    let cases: Vec<(Roster, &str)> = vec![
        (
            base().file(
                "users.csv",
                "sourcedId,status,dateLastModified,enabledUser,username,givenName\nstu-9,,,true,x,X\n",
            ),
            "users.csv:1: familyName: required column is missing from the header",
        ),
        (
            base().file("roles.csv", &format!("{roles_header}\nr1,,,stu-9,primary,pupil,,,n1\n")),
            "roles.csv:2: role: \"pupil\" is not a OneRoster 1.2 role",
        ),
        (
            base().file(
                "roles.csv",
                &format!("{roles_header}\nr1,,,stu-9,primary,student,2026-02-30,,n1\n"),
            ),
            "roles.csv:2: beginDate: \"2026-02-30\" is not a date (YYYY-MM-DD)",
        ),
        (
            base().file(
                "roles.csv",
                &format!("{roles_header}\nr1,,,stu-9,primary,student,,,n1\nr1,,,stu-1,primary,student,,,n1\n"),
            ),
            "roles.csv:3: sourcedId: \"r1\" repeats line 2",
        ),
        (
            base().file(
                "roles.csv",
                &format!("{roles_header}\nr1,active,,stu-9,primary,student,,,n1\n"),
            ),
            "roles.csv:2: status: must be blank in a bulk file",
        ),
        (
            base().org("x1", "Rogue School", "school", Some("d2")),
            "orgs.csv:5: parentSourcedId: \"d2\" is not this package's district \"d1\": a school of another district",
        ),
        (
            base().manifest("oneroster.version", Some("1.1")),
            "value: oneroster.version is \"1.1\"; this import reads 1.2",
        ),
        (
            base().manifest("file.users", Some("sometimes")),
            "value: file.users is \"sometimes\"; must be absent, bulk or delta",
        ),
        (
            Roster::bulk("d9", "Shelbyville").school("z1", "Z"),
            "orgs.csv:2: sourcedId: \"d9\" is another district: this district was imported as \"d1\"",
        ),
        (
            Roster::delta("d1", [Mode::Delta, Mode::Absent, Mode::Delta])
                .school("n2", "North Annex")
                .file(
                    "roles.csv",
                    &format!("{roles_header}\nr1,tobedeleted,yesterday,stu-1,primary,student,,,n1\n"),
                ),
            "roles.csv:2: dateLastModified: \"yesterday\" is not a DateTime (YYYY-MM-DDTHH:MM:SS.sssZ)",
        ),
    ];
    for (roster, expected) in cases {
        let r = import_as(&app, ADMIN, district, roster.zip(), false).await;
        assert_eq!(r.status, 422, "{expected}: {}", r.body);
        assert_eq!(r.body["error_code"], "ROSTER_INVALID", "{}", r.body);
        let errors: Vec<&str> = r.body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} not in {errors:?}"
        );
        assert!(r.detail().contains("nothing was changed"), "{}", r.body);
    }
    // Many problems: all listed up to 100, all counted.
    let mut roles = String::from(roles_header);
    for i in 0..150 {
        roles.push_str(&format!("\nr{i},,,stu-1,primary,pupil,,,n1"));
    }
    let r = import_as(
        &app,
        ADMIN,
        district,
        springfield().file("roles.csv", &roles).zip(),
        false,
    )
    .await;
    assert_eq!(
        (r.body["errors"].as_array().map(Vec::len), &r.body["error_count"]),
        (Some(100), &json!(150))
    );
    // Not a package at all.
    let r = import_as(&app, ADMIN, district, b"PK not really".to_vec(), false).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (422, Some("VALIDATION_ERROR")),
        "{}",
        r.body
    );
    assert!(
        r.detail().starts_with("roster package: the body is not a ZIP archive"),
        "{}",
        r.body
    );
    let r = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/district/{district}/roster")))
                .header("X-User-ID", ADMIN)
                .header("content-type", "text/csv")
                .body("sourcedId\n"),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE"))
    );
    assert_eq!(
        snapshot(&app, district).await,
        before,
        "a refused package changes nothing"
    );
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_reports_what_the_real_run_then_does() {
    let app = TestApp::spawn().await;
    let district = app.district("Springfield").await;
    let first = import(&app, district, &springfield()).await;
    let north = tenant_of(&first, "n1");
    app.purchase(north, 3).await;
    import(&app, district, &springfield()).await;
    // Changes of every kind: a school renamed, one new, seats short, a role changed.
    let roster = Roster::bulk("d1", "Springfield USD")
        .school("n1", "North Elementary School")
        .school("e1", "East Elementary")
        .student("stu-1", "n1")
        .student("stu-7", "n1")
        .student("stu-8", "n1")
        .staff("tch-1", "siteAdministrator", "n1");
    let before = snapshot(&app, district).await;
    let dry = import_as(&app, ADMIN, district, roster.zip(), true).await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(snapshot(&app, district).await, before, "a dry run changes nothing");
    let real = import(&app, district, &roster).await;
    // The same report, but for the ids a dry run cannot know yet.
    let mut expected = dry.body.clone();
    expected["dry_run"] = json!(false);
    for (i, s) in real["schools"].as_array().into_iter().flatten().enumerate() {
        if s["change"] == "created" {
            assert_eq!(expected["schools"][i]["tenant_id"], Value::Null);
            expected["schools"][i]["tenant_id"] = s["tenant_id"].clone();
        }
    }
    assert_eq!(real, expected);
    assert_eq!(real["totals"]["seated"], 2);
    assert_eq!(
        real["totals"]["unseated"], 0,
        "stu-2 and stu-3's seats were reclaimed first"
    );
    assert_eq!(school(&real, "n1")["change"], "renamed");
}

#[tokio::test]
async fn only_district_admins_and_platform_admins_may_import() {
    let app = TestApp::spawn_with(|s| {
        s.auth.enforce_roles = true;
        s.auth.platform_admins = vec!["root".into()];
    })
    .await;
    let r = app
        .send(
            app.client
                .post(app.url("/api/v1/district"))
                .header("X-User-ID", "root")
                .json(&json!({"name": "Springfield"})),
        )
        .await;
    let district = r.id();
    let grant = |user: &'static str, tenant: u64, role: &'static str| {
        app.client
            .post(app.url("/api/v1/roles"))
            .header("X-User-ID", "root")
            .json(&json!({"user_id": user, "tenant_id": tenant, "role": role}))
    };
    assert_eq!(app.send(grant("dana", district, "admin")).await.status, 201);
    assert_eq!(app.send(grant("manny", district, "manager")).await.status, 201);
    let zip = springfield().zip();
    let r = import_as(&app, "manny", district, zip.clone(), true).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{}",
        r.body
    );
    let r = import_as(&app, "eve", district, zip.clone(), true).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (404, Some("DISTRICT_NOT_FOUND")),
        "{}",
        r.body
    );
    let r = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/district/{district}/roster")))
                .body(zip.clone()),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = import_as(&app, "dana", district, zip.clone(), false).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A school admin (made by the roster: adm-1) may not import for the district.
    let r = import_as(&app, "adm-1", district, zip.clone(), true).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = import_as(&app, "root", district, zip, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A school is not a district.
    let school = tenant_of(&r.body, "n1");
    let r = import_as(&app, "root", school, springfield().zip(), true).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (404, Some("DISTRICT_NOT_FOUND"))
    );
}

#[tokio::test]
async fn a_package_over_the_limit_is_refused_with_413() {
    let app = TestApp::spawn_with(|s| s.roster.max_bytes = 2_000).await;
    let district = app.district("Springfield").await;
    let mut big = springfield();
    for i in 0..200 {
        big = big.student(&format!("stu-big-{i:04}-{}", "x".repeat(i % 17)), "n1");
    }
    let zip = big.zip();
    assert!(zip.len() > 2_000, "{}", zip.len());
    let r = import_as(&app, ADMIN, district, zip, false).await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{}",
        r.body
    );
    // The ordinary JSON limit does not apply to packages under the roster's own.
    let r = import_as(&app, ADMIN, district, springfield().zip(), false).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

// ---- a real process: kill -9 in the middle of an import, and the CLI ----

use super::process::{Server, BIN};

async fn post_zip(server: &Server, district: u64, zip: Vec<u8>) -> Option<(u16, Value)> {
    let res = server
        .client
        .post(format!("{}/api/v1/district/{district}/roster", server.base))
        .header("X-User-ID", "importer")
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.ok()?))
}

/// The district's schools by name, and each one's assigned seat count; every
/// tenant's audit chain must verify.
async fn settled(server: &Server, district: u64) -> Vec<(String, u64)> {
    let (status, d) = server.get(&format!("/api/v1/district/{district}")).await;
    assert_eq!(status, 200, "{d}");
    let mut out = Vec::new();
    for child in d["children"].as_array().into_iter().flatten() {
        let id = child["id"].as_u64().unwrap_or(0);
        let (_, summary) = server.get(&format!("/api/v1/seats/summary?tenantId={id}")).await;
        let (_, verified) = server.get(&format!("/api/v1/audit/verify?tenantId={id}")).await;
        assert_eq!(verified["intact"], true, "{verified}");
        out.push((
            child["name"].as_str().unwrap_or("").to_owned(),
            summary["assigned_seats"].as_u64().unwrap_or(0),
        ));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_an_import_and_the_same_import_again_finishes_the_job() {
    const SCHOOLS: usize = 8;
    const STUDENTS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let roster = super::oneroster::district(SCHOOLS, STUDENTS);
    let zip = roster.zip();
    // Slow flushes (20 ms each): an import is then several flushes long, and
    // the kill below lands inside one more often than not.
    let mut server = Server::start_on_disk(&data, "slow:20");
    let (_, d) = server
        .post("/api/v1/district", json!({"name": "Springfield"}))
        .await
        .unwrap_or_else(|| panic!("district"));
    let district = d["id"].as_u64().unwrap_or_else(|| panic!("{d}"));
    let mut partial = 0;
    for (round, kill_after_ms) in [40u64, 90, 25, 140].into_iter().enumerate() {
        if round == 1 {
            // Seats for everyone, bought once the first import made the schools.
            let (_, d) = server.get(&format!("/api/v1/district/{district}")).await;
            for child in d["children"].as_array().into_iter().flatten() {
                let r = server
                    .post(
                        "/api/v1/seats/purchase",
                        json!({"tenant_id": child["id"], "count": STUDENTS / SCHOOLS}),
                    )
                    .await;
                assert_eq!(r.map(|r| r.0), Some(201));
            }
        }
        let sent = tokio::spawn({
            let (client, base, zip) = (server.client.clone(), server.base.clone(), zip.clone());
            async move {
                client
                    .post(format!("{base}/api/v1/district/{district}/roster"))
                    .header("X-User-ID", "importer")
                    .body(zip)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        });
        // The kill point: a moment into the import (deliberately a delay,
        // not a wait for something to happen).
        tokio::time::sleep(std::time::Duration::from_millis(kill_after_ms)).await;
        server.kill9();
        let answered = sent.await.unwrap_or_else(|e| panic!("{e}"));
        server = Server::start_on_disk(&data, "slow:20");
        // Whatever the crash cut, each change is whole: chains verify, no
        // school twice, and the counts are what the seats say.
        let cut = settled(&server, district).await;
        let names: std::collections::BTreeSet<&String> = cut.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), cut.len(), "a school was made twice: {cut:?}");
        let seated: u64 = cut.iter().map(|(_, n)| n).sum();
        if answered.is_err() && (cut.len() < SCHOOLS || (round > 0 && 0 < seated && seated < STUDENTS as u64)) {
            partial += 1;
        }
        // The same package again finishes the job.
        let (status, report) = post_zip(&server, district, zip.clone())
            .await
            .unwrap_or_else(|| panic!("rerun"));
        assert_eq!(status, 200, "{report}");
        let done = settled(&server, district).await;
        assert_eq!(done.len(), SCHOOLS, "{done:?}");
        let want = if round == 0 { 0 } else { (STUDENTS / SCHOOLS) as u64 };
        assert!(done.iter().all(|(_, n)| *n == want), "round {round}: {done:?}");
        let (status, again) = post_zip(&server, district, zip.clone())
            .await
            .unwrap_or_else(|| panic!("again"));
        assert_eq!(status, 200);
        assert_eq!(
            (
                &again["totals"]["seated"],
                &again["totals"]["roles_granted"],
                &again["totals"]["schools_created"]
            ),
            (&json!(0), &json!(0), &json!(0)),
            "{}",
            again["totals"]
        );
    }
    // Not an assertion (the kill is a moment, the import may be quicker):
    // how many rounds cut an import short.
    eprintln!("rounds that cut an import short: {partial} of 4");
}

#[tokio::test]
async fn the_cli_uploads_a_directory_and_prints_the_report_or_every_problem() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(&dir.path().join("data"));
    let (_, d) = server
        .post("/api/v1/district", json!({"name": "Springfield"}))
        .await
        .unwrap_or_else(|| panic!("district"));
    let district = d["id"].as_u64().unwrap_or(0).to_string();
    let package = dir.path().join("package");
    springfield().write_dir(&package);
    let run = |extra: &[&str], path: &std::path::Path| {
        std::process::Command::new(BIN)
            .args([
                "roster",
                "import",
                "--url",
                &server.base,
                "--district",
                &district,
                "--user",
                "cli-user",
            ])
            .args(extra)
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let dry = run(&["--dry-run"], &package);
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(stdout.contains("DRY RUN, nothing changed"), "{stdout}");
    assert!(
        stdout.contains("North Elementary") && stdout.contains("created"),
        "{stdout}"
    );
    let (_, after_dry) = server.get(&format!("/api/v1/district/{district}")).await;
    assert_eq!(after_dry["children"], json!([]));

    let real = run(&[], &package);
    let stdout = String::from_utf8_lossy(&real.stdout);
    assert!(
        real.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert!(stdout.contains("roles: 3 granted"), "{stdout}");
    assert!(stdout.contains("no free seat for"), "{stdout}");
    let (_, after) = server.get(&format!("/api/v1/district/{district}")).await;
    assert_eq!(after["children"].as_array().map(Vec::len), Some(2));

    // A zip file works as well; a broken one prints every problem and exits 1.
    let broken = dir.path().join("broken.zip");
    let roles =
        "sourcedId,status,dateLastModified,userSourcedId,roleType,role,orgSourcedId\nr1,,,stu-1,primary,pupil,n1\n";
    std::fs::write(&broken, springfield().file("roles.csv", roles).zip()).unwrap_or_else(|e| panic!("{e}"));
    let refused = run(&[], &broken);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("roles.csv:2: role: \"pupil\" is not a OneRoster 1.2 role"),
        "{stderr}"
    );
    assert!(
        stderr.contains("tenant-service: the service refused the import (422)"),
        "{stderr}"
    );
}
