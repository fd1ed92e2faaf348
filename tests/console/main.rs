//! The district admins' console (`/ui/`) in a real browser: headless
//! Chromium, driven over the DevTools protocol, against a real server on
//! 127.0.0.1:0. Each step waits for what a person would see on the page.
//! Screenshots of every page, at 1280x800 and at phone width (390 px), are
//! written to target/ui-screenshots/.
//!
//! Without Chromium (`apt-get install -y chromium`) these tests pass without
//! doing anything and say so in one line; `TENANT_TEST_CHROMIUM` names
//! another browser binary.

mod harness;
#[path = "../support/oneroster.rs"]
mod oneroster;
#[path = "../support/optional.rs"]
mod optional;

use harness::{chromium, seed, Console, Server};
use serde_json::json;

/// Dana, the district's admin: signs in with the keyboard, sees the district's
/// schools and counts, assigns a seat and sees the counts move, bulk assigns
/// a list with bad rows and a CSV file, exports, reclaims, filters, and reads
/// the audit entries and the chain's badge. Then the same pages at phone width.
#[test]
fn a_district_admin_works_through_the_console() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start(|_| {});
    let ids = seed(&server);
    let c = Console::open(&chromium);

    // Sign in, by keyboard: type the id, Enter.
    c.goto(&format!("{}/ui/", server.base));
    c.wait_visible("#user-id");
    c.screenshot("01-sign-in");
    c.type_into("#user-id", "dana");
    c.press("Enter");
    c.wait_text("#districts", "Shelbyville District");
    c.wait_text("#signed-in-user", "dana");
    // One district: no further page to offer.
    assert_eq!(
        c.eval("return document.querySelector('#more-districts').offsetParent === null;"),
        json!(true)
    );
    c.screenshot("02-districts");

    // The heading has the focus after the page changed; the next Tab is the
    // district's link, and it shows where the focus is.
    c.wait_for(
        "focus on the heading",
        "return document.activeElement.tagName === 'H1';",
    );
    c.press("Tab");
    let focused = c.eval(
        "const e = document.activeElement; \
         return {text: e.innerText, outline: getComputedStyle(e).outlineStyle};",
    );
    assert_eq!(focused["text"], json!("Shelbyville District"), "{focused}");
    assert_eq!(focused["outline"], json!("solid"), "focus must be visible: {focused}");
    c.press("Enter");

    // The district: each school's bar and counts, the alert, the history chart.
    c.wait_visible("#school-list");
    let north_row = format!("#school-list li[data-tenant='{}']", ids.north);
    let south_row = format!("#school-list li[data-tenant='{}']", ids.south);
    c.wait_text(&north_row, "12 free");
    assert!(c.text(&north_row).contains("0 assigned"), "{}", c.text(&north_row));
    assert!(c.text(&south_row).contains("6 assigned"), "{}", c.text(&south_row));
    assert!(c.text(&south_row).contains("75% in use"), "{}", c.text(&south_row));
    assert_eq!(c.tile("total"), "20");
    assert_eq!(c.tile("assigned"), "6");
    let bar = c.eval(&format!(
        "return document.querySelector(\"{south_row} .bar .fill\").style.width;"
    ));
    assert_eq!(bar, json!("75%"));
    c.wait_text("#alert-list", "South Middle School");
    assert!(c.text("#alert-list").contains("70%"), "{}", c.text("#alert-list"));
    c.wait_visible("#history-chart");
    assert_eq!(
        c.eval("return document.querySelectorAll('#history-chart circle').length;"),
        json!(30)
    );
    c.screenshot("03-district");

    // A school: assign one seat, see the counts move.
    c.click(&format!("{north_row} a.name"));
    c.wait_visible("#seats-table");
    c.wait_tile("free", "12");
    c.screenshot("04-school");
    c.type_into("#assign-learner", "ada");
    c.click("#assign-submit");
    c.wait_text("#assign-result", "assigned to ada");
    c.wait_tile("free", "11");
    c.wait_tile("assigned", "1");
    c.wait_text("#seats-table", "ada");

    // Bulk assign from a pasted list: a new learner, a repeat, one already
    // seated, and an id no learner may have; each row says what happened.
    let too_long = "x".repeat(256);
    c.paste("#bulk-text", &format!("ben\n\ncy\nben\nada\n{too_long}\n"));
    c.click("#bulk-submit");
    c.wait_visible("#bulk-table");
    let rows = c.eval(
        "return [...document.querySelectorAll('#bulk-table tbody tr')].map(r => \
         [...r.cells].map(td => td.innerText));",
    );
    let row = |result: &str| -> Vec<String> {
        rows.as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_value::<Vec<String>>(r.clone()).ok())
            .find(|r| r[2] == result)
            .unwrap_or_else(|| panic!("no {result} row in {rows}"))
    };
    let invalid = row("invalid");
    assert_eq!(invalid[0], "6", "the bad id's line: {invalid:?}");
    assert!(invalid[4].contains("learner_id"), "{invalid:?}");
    assert_eq!(row("duplicate")[1], "ben");
    assert_eq!(row("already assigned")[1], "ada");
    assert_eq!(row("assigned")[1], "ben");
    assert!(
        c.text("#bulk-message").contains("2 assigned"),
        "{}",
        c.text("#bulk-message")
    );
    c.wait_tile("free", "9");
    c.wait_tile("assigned", "3");
    c.screenshot("05-school-bulk");

    // Bulk assign from a CSV file (a header line and quoted cells).
    let csv = tempfile::Builder::new()
        .suffix(".csv")
        .tempfile()
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(csv.path(), "learner_id,grade\n\"dee\",3\neve,4\n").unwrap_or_else(|e| panic!("{e}"));
    c.choose_file("#bulk-file", csv.path());
    c.wait_for(
        "the file's ids in the list",
        "return document.querySelector('#bulk-text').value.includes('eve');",
    );
    c.wait_text("#bulk-message", "2 learner ids");
    c.click("#bulk-submit");
    c.wait_text("#bulk-message", "Done: 2 assigned");
    c.wait_tile("free", "7");

    // The export: fetched with Dana's identity, saved as a file.
    c.click("#export-csv");
    let csv = c.downloaded(&format!("seats-{}.csv", ids.north));
    assert!(
        csv.starts_with("seat_id,tenant_id,state,learner_id,assigned_at"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 13, "{csv}");
    assert!(csv.contains(",assigned,ada,"), "{csv}");

    // Filter by state, then by learner; reclaim Ada's seat with a confirm.
    c.eval("document.querySelector('#filter-state').value = 'assigned'; return true;");
    c.click("#filter-apply");
    c.wait_for(
        "only assigned seats",
        "const rows = [...document.querySelectorAll('#seats-table tbody tr')]; \
         return rows.length === 5 && rows.every(r => r.innerText.includes('assigned'));",
    );
    c.click("#filter-clear");
    c.type_into("#filter-learner", "ada");
    c.click("#filter-apply");
    c.wait_for(
        "Ada's seat alone",
        "return document.querySelectorAll('#seats-table tbody tr').length === 1;",
    );
    c.click("#seats-table [data-reclaim]");
    c.click("#seats-table [data-confirm]");
    c.wait_tile("free", "8");
    c.wait_visible("#seats-empty");

    // The audit trail: Dana's entries, newest first, and the chain's badge.
    c.click("#open-audit");
    c.wait_visible("#audit-table");
    c.wait_text("#verify-badge", "Chain intact");
    let first = c.text("#audit-table tbody tr");
    assert!(
        first.contains("ada") && first.contains("dana") && first.contains("Reclaimed in the console"),
        "newest entry: {first}"
    );
    c.type_into("#audit-learner", "ada");
    c.click("#audit-apply");
    c.wait_for(
        "Ada's two entries",
        "const rows = [...document.querySelectorAll('#audit-table tbody tr')]; \
         return rows.length === 2 && rows.every(r => r.innerText.includes('ada'));",
    );
    c.screenshot("06-audit");
    c.assert_no_raw_json();

    // Phone width: every page fits the screen.
    let c = c.viewport(390, 844);
    for (name, hash) in [
        ("districts", "#/".to_owned()),
        ("district", format!("#/district/{}", ids.district)),
        ("school", format!("#/school/{}", ids.north)),
        ("audit", format!("#/audit/{}", ids.north)),
    ] {
        c.goto(&format!("{}/ui/{hash}", server.base));
        c.wait_for("the page", "return !!document.querySelector('main h2, main table');");
        match name {
            "district" => c.wait_visible("#history-chart"),
            "school" => c.wait_visible("#seats-table"),
            "audit" => c.wait_visible("#audit-table"),
            _ => c.wait_visible("#districts"),
        }
        c.assert_fits_width(name);
        c.screenshot(&format!("phone-{name}"));
    }
    c.eval("sessionStorage.clear(); return true;");
    c.goto(&format!("{}/ui/", server.base));
    c.wait_visible("#user-id");
    c.assert_fits_width("sign-in");
    c.screenshot("phone-sign-in");
}

/// Tess, a teacher: sees the seats but no assign controls; the audit trail,
/// which needs a manager, shows the API's refusal as a sentence. Eve, with
/// no role at all, is told the district does not exist.
#[test]
fn refusals_are_shown_as_sentences() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start(|_| {});
    let ids = seed(&server);
    // 32 seats in North: two pages of the seats table.
    server.post(
        harness::ROOT,
        "/seats/purchase",
        json!({"tenant_id": ids.north, "count": 20}),
    );
    let c = Console::open(&chromium);

    c.goto(&format!("{}/ui/", server.base));
    c.type_into("#user-id", "tess");
    c.click("#sign-in");
    c.wait_text("main", "Your schools");
    c.click(&format!("a[href='#/school/{}']", ids.north));
    c.wait_visible("#seats-table");
    assert!(
        c.text("main").contains("may view seats but not assign"),
        "{}",
        c.text("main")
    );
    assert_eq!(c.eval("return document.querySelector('#assign-learner');"), json!(null));
    assert_eq!(c.eval("return document.querySelector('[data-reclaim]');"), json!(null));

    // Reading is allowed: the seats, a page at a time.
    let rows = "return document.querySelectorAll('#seats-table tbody tr').length;";
    c.wait_for("a full first page", &format!("{} === 25", rows.trim_end_matches(';')));
    c.click("#seats-next");
    c.wait_text("#seats-page", "Page 2");
    c.wait_for("the last 7 seats", &format!("{} === 7", rows.trim_end_matches(';')));
    assert_eq!(
        c.eval("return document.querySelector('#seats-next').disabled;"),
        json!(true)
    );
    // North holds seats 1-12 and 21-40 (South bought 13-20 in between).
    let first = c.eval("return document.querySelector('#seats-table tbody td').innerText;");
    assert_eq!(first, json!("34"));
    c.click("#seats-prev");
    c.wait_text("#seats-page", "Page 1");
    c.wait_for(
        "the first page again",
        &format!("{} === 25", rows.trim_end_matches(';')),
    );

    c.click("#open-audit");
    c.wait_text(
        ".message.error",
        "This action requires the manager role in this tenant.",
    );
    c.wait_text("#verify-badge", "Not verified: This action requires the manager role");
    c.assert_no_raw_json();
    c.screenshot("07-forbidden");

    // Typed into the address bar: a district Tess has no role in.
    c.eval("sessionStorage.clear(); return true;");
    c.goto(&format!("{}/ui/", server.base));
    c.type_into("#user-id", "eve");
    c.press("Enter");
    c.wait_text("main", "no role in any district");
    c.goto(&format!("{}/ui/#/district/{}", server.base, ids.district));
    c.wait_text("main [role=alert]", "not found");
    c.assert_no_raw_json();
    c.screenshot("08-not-found");

    // A user id the service refuses (over 255 characters), and one no HTTP
    // header can carry: the sign-in form says why, and nobody is signed in.
    c.eval("sessionStorage.clear(); return true;");
    c.goto(&format!("{}/ui/", server.base));
    c.paste("#user-id", &"u".repeat(256));
    c.press("Enter");
    c.wait_text(".message.error", "Sign-in refused: Missing or empty X-User-ID header.");
    c.paste("#user-id", "\u{141}ukasz");
    c.press("Enter");
    c.wait_text(".message.error", "This identity cannot be sent");
    c.assert_no_raw_json();
    assert_eq!(c.eval("return sessionStorage.length;"), json!(0));
    assert_eq!(c.text("#who"), "");
}

/// JWT mode: the sign-in page asks for a token (the service's challenge says
/// which scheme it uses), refuses a bad one with the API's sentence, and
/// works with a good one.
#[test]
fn jwt_mode_signs_in_with_a_pasted_token() {
    let Some(chromium) = chromium() else { return };
    const SECRET: &str = "console-test-secret";
    let server = Server::start(|s| {
        s.auth.mode = tenant_service::config::AuthMode::Jwt;
        s.auth.jwt_secret = Some(SECRET.to_owned());
    });
    let c = Console::open(&chromium);

    c.goto(&format!("{}/ui/", server.base));
    c.wait_visible("#token");
    c.paste("#token", "not-a-token");
    c.click("#sign-in");
    c.wait_text(".message.error", "Sign-in refused: Missing or invalid credentials.");

    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or_default();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "root", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    c.paste("#token", &token);
    c.click("#sign-in");
    c.wait_text("#signed-in-user", "root");
    c.wait_text("main", "no role in any district");
    c.screenshot("09-jwt-signed-in");

    // A token the service stops accepting (here: replaced by a forged one)
    // sends the person back to sign in, saying why.
    c.eval(
        "const id = JSON.parse(sessionStorage.getItem('tenant-console.identity')); \
         id.value = id.value + 'A'; \
         sessionStorage.setItem('tenant-console.identity', JSON.stringify(id)); return true;",
    );
    c.goto(&format!("{}/ui/#/", server.base));
    c.wait_text(
        ".message.error",
        "Your sign-in was not accepted: Missing or invalid credentials.",
    );
    c.wait_visible("#token");
    assert_eq!(c.eval("return sessionStorage.length;"), json!(0));
    c.paste("#token", &token);
    c.click("#sign-in");
    c.wait_text("#signed-in-user", "root");

    // Signing out forgets the token.
    c.click("#sign-out");
    c.wait_visible("#token");
    assert_eq!(c.eval("return sessionStorage.length;"), json!(0));
}

/// Dana loads a roster package: a broken one is refused with its problems
/// listed; a good one is checked first (a dry run: the report, nothing
/// changed), then imported on confirmation, and the new school appears.
#[test]
fn a_roster_package_is_checked_then_imported() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start(|_| {});
    let ids = seed(&server);
    let package = |roster: oneroster::Roster| {
        let file = tempfile::Builder::new()
            .suffix(".zip")
            .tempfile()
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(file.path(), roster.zip()).unwrap_or_else(|e| panic!("{e}"));
        file
    };
    let good = || {
        oneroster::Roster::bulk("org-d", "Shelbyville District")
            .school("org-r", "Roster Academy")
            .staff("t-1", "teacher", "org-r")
            .student("stu-1", "org-r")
    };
    let broken = package(good().user("stu-1", true));
    let good = package(good());
    let c = Console::open(&chromium);

    c.goto(&format!("{}/ui/", server.base));
    c.type_into("#user-id", "dana");
    c.click("#sign-in");
    c.wait_text("#districts", "Shelbyville District");
    c.goto(&format!("{}/ui/#/district/{}", server.base, ids.district));
    c.wait_visible("#roster-file");

    c.choose_file("#roster-file", broken.path());
    c.click("#roster-check");
    c.wait_text("#roster-problems", "users.csv:");
    assert!(
        c.text("#roster-message").contains("nothing was changed"),
        "{}",
        c.text("#roster-message")
    );
    c.assert_no_raw_json();

    c.choose_file("#roster-file", good.path());
    c.click("#roster-check");
    c.wait_text("#roster-summary", "Would do");
    assert!(c.text("#roster-schools").contains("Roster Academy"));
    assert!(c.text("#roster-schools").contains("created"));
    assert!(
        !c.text("#school-list").contains("Roster Academy"),
        "a check changes nothing"
    );
    let district = server.call(harness::ROOT, "GET", &format!("/district/{}", ids.district), None, 200);
    assert_eq!(district["children"].as_array().map(Vec::len), Some(2), "{district}");
    c.screenshot("10-roster-checked");

    c.click("#roster-import");
    c.wait_text("#roster-message", "Imported");
    c.wait_text("#roster-summary", "Done");
    c.click("#roster-refresh");
    c.wait_text("#school-list", "Roster Academy");
    c.screenshot("11-roster-imported");
}
