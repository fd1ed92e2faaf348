use super::*;

const MANIFEST_BULK: &str = "propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\n\
    file.academicSessions,absent\nfile.orgs,bulk\nfile.users,bulk\nfile.roles,bulk\nsource.systemName,SIS\n";
const ORGS: &str = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
    d1,,,Springfield,district,,\ns1,,,North,school,,d1\n";
const USERS: &str = "sourcedId,status,dateLastModified,enabledUser,username,givenName,familyName,metadata.grade\n\
    u1,,,true,ann,Ann,A,3\nt1,,,true,tom,Tom,T,\n";
const ROLES: &str = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId\n\
    r1,,,u1,primary,student,2020-01-01,,s1\nr2,,,t1,primary,teacher,,,s1\n";

fn files(pairs: &[(&'static str, &str)]) -> Files {
    Files::from_pairs(pairs.iter().map(|(n, c)| (*n, c.as_bytes().to_vec())))
}

fn bulk_with(name: &'static str, contents: &str) -> Files {
    let mut all = vec![
        ("manifest.csv", MANIFEST_BULK),
        ("orgs.csv", ORGS),
        ("users.csv", USERS),
        ("roles.csv", ROLES),
    ];
    for slot in &mut all {
        if slot.0 == name {
            slot.1 = contents;
        }
    }
    files(&all)
}

fn problems(files: &Files) -> Vec<String> {
    match parse(files) {
        Ok(p) => panic!("parsed: {p:?}"),
        Err(p) => p.lines(),
    }
}

#[test]
fn a_sound_bulk_package_parses_into_typed_rows() {
    let package = parse(&bulk_with("", "")).unwrap_or_else(|p| panic!("{:?}", p.lines()));
    let orgs = package.orgs.unwrap_or_else(|| panic!("orgs"));
    assert_eq!(orgs.mode, FileMode::Bulk);
    assert_eq!(orgs.rows[1].kind, OrgType::School);
    assert_eq!(orgs.rows[1].parent.as_deref(), Some("d1"));
    let roles = package.roles.unwrap_or_else(|| panic!("roles"));
    assert_eq!(roles.rows[0].role, RosterRole::Student);
    assert_eq!(roles.rows[0].line, 2);
    assert_eq!(roles.rows[0].begin, Date::parse("2020-01-01"));
    assert_eq!(roles.rows[1].role, RosterRole::Teacher);
    assert!(package.users.is_some_and(|u| u.rows.iter().all(|u| u.enabled)));
}

#[test]
fn columns_are_found_by_name_in_any_order_with_a_bom() {
    let orgs =
        "\u{feff}name,type,sourcedId,parentSourcedId,dateLastModified,status\nD,district,d1,,,\nN,school,s1,d1,,\n";
    assert!(parse(&bulk_with("orgs.csv", orgs)).is_ok());
}

#[test]
fn every_problem_is_listed_as_file_line_column_message() {
    let roles = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId\n\
        r1,,,u1,primary,administrator,2020-13-01,,s1\n\
        r1,active,,u1,tertiary,student,,2020-02-30,s1\n\
        r3,,,ghost,primary,student,,,s1\n";
    let lines = problems(&bulk_with("roles.csv", roles));
    assert_eq!(
        lines,
        [
            "roles.csv:2: role: \"administrator\" is not a OneRoster 1.2 role (aide, counselor, districtAdministrator, guardian, parent, principal, proctor, relative, siteAdministrator, student, systemAdministrator, teacher, or ext:...)",
            "roles.csv:2: beginDate: \"2020-13-01\" is not a date (YYYY-MM-DD)",
            "roles.csv:3: sourcedId: \"r1\" repeats line 2",
            "roles.csv:3: roleType: \"tertiary\" must be primary or secondary",
            "roles.csv:3: endDate: \"2020-02-30\" is not a date (YYYY-MM-DD)",
            "roles.csv:3: status: must be blank in a bulk file",
            "roles.csv:4: userSourcedId: no user \"ghost\" in users.csv (a bulk file lists every user)",
        ]
    );
}

#[test]
fn headers_must_hold_the_required_columns_and_only_known_or_metadata_ones() {
    let users = "sourcedId,status,enabledUser,username,givenName,nickname,metadata.x\nu1,,true,a,A,x,y\n";
    assert_eq!(
        problems(&bulk_with("users.csv", users)),
        [
            "users.csv:1: dateLastModified: required column is missing from the header",
            "users.csv:1: familyName: required column is missing from the header",
            "users.csv:1: nickname: is not a column of users.csv in OneRoster 1.2 (extensions are named metadata.*)",
        ]
    );
}

#[test]
fn values_are_checked_against_the_binding() {
    let users = "sourcedId,status,dateLastModified,enabledUser,username,givenName,familyName\n\
        u1,,,yes,ann,Ann,A\nt1,,,true,,Tom,T\nx1,,,true,x\n";
    let orgs = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
        d1,,,Springfield,district,,\ns1,,,North,campus,,d1\ns2,,,South,ext:campus,,d1\n";
    let mut all = problems(&bulk_with("users.csv", users));
    all.extend(problems(&bulk_with("orgs.csv", orgs)));
    assert_eq!(
        all,
        [
            "users.csv:2: enabledUser: \"yes\" must be true or false",
            "users.csv:3: username: is required",
            "users.csv:4: (file): the row has 5 fields, the header 7",
            "orgs.csv:3: type: \"campus\" must be one of department, school, district, local, state, national (or ext:...)",
        ]
    );
}

#[test]
fn delta_rows_carry_status_and_a_datetime() {
    let manifest = MANIFEST_BULK.replace("file.roles,bulk", "file.roles,delta");
    let roles = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,orgSourcedId\n\
        r1,active,2026-09-01T08:00:00.000Z,u1,primary,student,s1\n\
        r2,tobedeleted,2026-09-01T08:00:00Z,t1,primary,teacher,s1\n\
        r3,,2026-09-01T08:00:00.000Z,u1,primary,student,s1\n\
        r4,deleted,2026-09-01 08:00,u1,primary,student,s1\n";
    let f = files(&[
        ("manifest.csv", &manifest),
        ("orgs.csv", ORGS),
        ("users.csv", USERS),
        ("roles.csv", roles),
    ]);
    assert_eq!(
        problems(&f),
        [
            "roles.csv:4: status: is required in a delta file (active or tobedeleted)",
            "roles.csv:5: dateLastModified: \"2026-09-01 08:00\" is not a DateTime (YYYY-MM-DDTHH:MM:SS.sssZ)",
            "roles.csv:5: status: \"deleted\" must be active or tobedeleted",
        ]
    );
}

#[test]
fn the_manifest_must_match_the_package() {
    let manifest = "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.orgs,bulk\nfile.users,absent\nfile.roles,full\n";
    assert_eq!(
        problems(&files(&[("manifest.csv", manifest), ("users.csv", USERS)])),
        [
            "manifest.csv:3: value: oneroster.version is \"1.1\"; this import reads 1.2",
            "manifest.csv:6: value: file.roles is \"full\"; must be absent, bulk or delta",
            "manifest.csv:4: value: file.orgs is bulk but orgs.csv is not in the package",
            "users.csv:1: (file): is in the package but manifest.csv line 5 says file.users is absent",
        ]
    );
    assert_eq!(
        problems(&files(&[("orgs.csv", ORGS)])),
        ["manifest.csv:1: (file): the package has no manifest.csv at the root of the ZIP archive"]
    );
}

#[test]
fn problems_stop_being_listed_at_the_cap_but_are_counted() {
    let mut roles = String::from("sourcedId,status,dateLastModified,userSourcedId,roleType,role,orgSourcedId\n");
    for i in 0..250 {
        roles.push_str(&format!("r{i},,,u1,primary,janitor,s1\n"));
    }
    let err = parse(&bulk_with("roles.csv", &roles))
        .err()
        .unwrap_or_else(|| panic!("parsed"));
    assert_eq!((err.list.len(), err.total), (MAX_PROBLEMS, 250));
}

#[test]
fn dates_and_datetimes_follow_the_calendar() {
    assert_eq!(
        Date::parse("2024-02-29").map(|d| d.to_string()).as_deref(),
        Some("2024-02-29")
    );
    assert_eq!(Date::parse("2023-02-29"), None);
    assert_eq!(Date::parse("2024-2-29"), None);
    assert_eq!(Date::from_unix_days(0).to_string(), "1970-01-01");
    assert_eq!(Date::from_unix_days(19_723).to_string(), "2024-01-01");
    assert_eq!(Date::from_unix_days(-1).to_string(), "1969-12-31");
    assert!(is_datetime("2026-09-01T08:00:00.123Z"));
    assert!(is_datetime("2026-09-01T08:00:00Z"));
    assert!(!is_datetime("2026-09-01T08:00:00.Z"));
    assert!(!is_datetime("2026-09-01T08:00:00+02:00"));
    assert!(!is_datetime("2026-09-01T24:00:00Z"));
    assert!(!is_datetime("2026-09-01"));
}
