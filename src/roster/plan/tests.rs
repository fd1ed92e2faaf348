use super::super::binding::{Org, RoleRow, Table, User};
use super::*;
use crate::domain::Id;

fn tid(n: u64) -> TenantId {
    TenantId::new(n).unwrap_or_else(|| unreachable!())
}

fn learner(s: &str) -> LearnerId {
    LearnerId::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn user_id(s: &str) -> UserId {
    UserId::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

const TODAY: Date = Date {
    year: 2026,
    month: 9,
    day: 1,
};

fn table<T>(mode: FileMode, rows: Vec<T>) -> Option<Table<T>> {
    Some(Table {
        mode,
        rows,
        ids: Default::default(),
    })
}

fn org(line: u64, sid: &str, kind: OrgType, name: &str, parent: Option<&str>) -> Org {
    Org {
        line,
        sourced_id: sid.into(),
        status: Status::Active,
        name: name.into(),
        kind,
        parent: parent.map(Into::into),
    }
}

fn user(sid: &str, enabled: bool) -> User {
    User {
        line: 0,
        sourced_id: sid.into(),
        status: Status::Active,
        enabled,
    }
}

fn role(line: u64, user: &str, role: RosterRole, org: &str) -> RoleRow {
    RoleRow {
        line,
        sourced_id: format!("r{line}"),
        status: Status::Active,
        user: user.into(),
        role,
        org: org.into(),
        begin: None,
        end: None,
    }
}

fn orgs() -> Vec<Org> {
    vec![
        org(2, "d1", OrgType::District, "Springfield", None),
        org(3, "s1", OrgType::School, "North", Some("d1")),
        org(4, "s2", OrgType::School, "South", Some("d1")),
    ]
}

/// A district (1) that a roster made: schools 2 (s1) and 3 (s2), and 4 made by hand.
fn current() -> Current {
    Current {
        district: tid(1),
        name: "Springfield".into(),
        sourced_id: Some("d1".into()),
        schools: vec![
            CurrentSchool {
                id: tid(2),
                name: "North".into(),
                sourced_id: Some("s1".into()),
                active: true,
                seated: vec![learner("a"), learner("b")],
                free: 1,
            },
            CurrentSchool {
                id: tid(3),
                name: "South".into(),
                sourced_id: Some("s2".into()),
                active: true,
                seated: vec![],
                free: 0,
            },
            CurrentSchool {
                id: tid(4),
                name: "By hand".into(),
                sourced_id: None,
                active: true,
                seated: vec![learner("z")],
                free: 5,
            },
        ],
        roles: vec![],
    }
}

fn bulk(users: Vec<User>, roles: Vec<RoleRow>) -> Package {
    Package {
        orgs: table(FileMode::Bulk, orgs()),
        users: table(FileMode::Bulk, users),
        roles: table(FileMode::Bulk, roles),
    }
}

fn planned(package: &Package, current: &Current) -> Plan {
    plan(package, current, TODAY).unwrap_or_else(|p| panic!("{:?}", p.lines()))
}

fn school<'a>(plan: &'a Plan, sid: &str) -> &'a SchoolPlan {
    plan.schools
        .iter()
        .find(|s| s.sourced_id == sid)
        .unwrap_or_else(|| panic!("no {sid}"))
}

fn names(learners: &[LearnerId]) -> Vec<&str> {
    learners.iter().map(LearnerId::as_str).collect()
}

#[test]
fn a_first_import_links_the_district_and_creates_its_schools_without_seats() {
    let empty = Current {
        district: tid(1),
        name: "Springfield".into(),
        sourced_id: None,
        schools: vec![],
        roles: vec![],
    };
    let package = bulk(
        vec![user("a", true), user("t", true)],
        vec![
            role(2, "a", RosterRole::Student, "s1"),
            role(3, "t", RosterRole::Teacher, "s1"),
        ],
    );
    let plan = planned(&package, &empty);
    assert!(plan.link_district);
    assert_eq!(plan.district_sourced_id, "d1");
    assert_eq!(plan.schools.len(), 2);
    let s1 = school(&plan, "s1");
    assert_eq!(
        (s1.change, &s1.school),
        (SchoolChange::Created, &SchoolRef::New("s1".into()))
    );
    // A new school has no seats: the student is left over, not an error.
    assert_eq!((names(s1.seated()), names(s1.unseated())), (vec![], vec!["a"]));
    assert_eq!(
        plan.grant,
        [RoleGrant {
            user: user_id("t"),
            place: Place::School(SchoolRef::New("s1".into())),
            kind: RoleKind::Teacher
        }]
    );
}

#[test]
fn the_same_roster_again_changes_nothing() {
    let package = bulk(
        vec![user("a", true), user("b", true)],
        vec![
            role(2, "a", RosterRole::Student, "s1"),
            role(3, "b", RosterRole::Student, "s1"),
        ],
    );
    let plan = planned(&package, &current());
    assert!(!plan.link_district && plan.rename_district.is_none());
    for s in &plan.schools {
        assert_eq!(s.change, SchoolChange::Unchanged, "{}", s.sourced_id);
        assert!(s.reclaim.is_empty() && s.seat.is_empty(), "{}", s.sourced_id);
    }
    assert_eq!(school(&plan, "s1").already, 2);
    assert!(plan.grant.is_empty() && plan.deactivate.is_empty());
}

#[test]
fn a_bulk_roster_reclaims_who_it_no_longer_lists_and_seats_newcomers_in_file_order() {
    // b is gone; c, d, e are new; s1 has 1 free seat + b's.
    let package = bulk(
        vec![user("a", true), user("c", true), user("d", true), user("e", true)],
        vec![
            role(2, "e", RosterRole::Student, "s1"),
            role(3, "a", RosterRole::Student, "s1"),
            role(4, "c", RosterRole::Student, "s1"),
            role(5, "d", RosterRole::Student, "s1"),
        ],
    );
    let plan = planned(&package, &current());
    let s1 = school(&plan, "s1");
    assert_eq!(names(&s1.reclaim), ["b"]);
    assert_eq!(names(s1.seated()), ["e", "c"]);
    assert_eq!(names(s1.unseated()), ["d"]);
    assert_eq!(s1.already, 1);
    // The school made by hand is not the roster's: its seat holder stays.
    assert!(plan.schools.iter().all(|s| s.sourced_id != "z"));
}

#[test]
fn disabled_users_and_roles_outside_their_dates_hold_no_seat() {
    let mut ended = role(3, "b", RosterRole::Student, "s1");
    ended.end = Date::parse("2026-08-31");
    let mut future = role(4, "c", RosterRole::Student, "s1");
    future.begin = Date::parse("2026-09-02");
    let mut today = role(5, "d", RosterRole::Student, "s1");
    today.begin = Some(TODAY);
    today.end = Some(TODAY);
    let package = bulk(
        vec![user("a", false), user("b", true), user("c", true), user("d", true)],
        vec![role(2, "a", RosterRole::Student, "s1"), ended, future, today],
    );
    let plan = planned(&package, &current());
    let s1 = school(&plan, "s1");
    assert_eq!(names(&s1.reclaim), ["a", "b"]);
    assert_eq!(names(s1.seated()), ["d"]);
}

#[test]
fn a_delta_changes_only_what_it_lists() {
    let mut gone = role(2, "a", RosterRole::Student, "s1");
    gone.status = Status::ToBeDeleted;
    let package = Package {
        orgs: None,
        users: table(FileMode::Delta, vec![user("x", true)]),
        roles: table(FileMode::Delta, vec![gone, role(3, "c", RosterRole::Student, "s2")]),
    };
    let plan = planned(&package, &current());
    let s1 = school(&plan, "s1");
    assert_eq!(names(&s1.reclaim), ["a"], "b is not in the delta and keeps the seat");
    let s2 = school(&plan, "s2");
    assert_eq!((names(s2.seated()), names(s2.unseated())), (vec![], vec!["c"]));
    assert!(plan.schools.iter().all(|s| s.change == SchoolChange::Unchanged));
}

#[test]
fn a_user_disabled_in_a_delta_loses_seats_and_roster_roles_everywhere() {
    let mut now = current();
    now.roles = vec![CurrentRole {
        id: RoleId::new(9).unwrap_or_else(|| unreachable!()),
        user: user_id("b"),
        tenant: tid(3),
        kind: RoleKind::Teacher,
        roster: true,
    }];
    let package = Package {
        orgs: None,
        users: table(FileMode::Delta, vec![user("b", false)]),
        roles: None,
    };
    let plan = planned(&package, &now);
    assert_eq!(names(&school(&plan, "s1").reclaim), ["b"]);
    assert_eq!(plan.deactivate.len(), 1);
}

#[test]
fn staff_roles_follow_the_roster_and_hand_granted_roles_are_left_alone() {
    let role_id = |n| RoleId::new(n).unwrap_or_else(|| unreachable!());
    let mut now = current();
    now.roles = vec![
        // Roster: t1 teacher at s1 (now site admin), t2 teacher at s2 (gone).
        CurrentRole {
            id: role_id(1),
            user: user_id("t1"),
            tenant: tid(2),
            kind: RoleKind::Teacher,
            roster: true,
        },
        CurrentRole {
            id: role_id(2),
            user: user_id("t2"),
            tenant: tid(3),
            kind: RoleKind::Teacher,
            roster: true,
        },
        // By hand: t3 manager at s1 (the roster wants teacher); boss admin of the district.
        CurrentRole {
            id: role_id(3),
            user: user_id("t3"),
            tenant: tid(2),
            kind: RoleKind::Manager,
            roster: false,
        },
        CurrentRole {
            id: role_id(4),
            user: user_id("boss"),
            tenant: tid(1),
            kind: RoleKind::Admin,
            roster: false,
        },
    ];
    let package = bulk(
        vec![user("t1", true), user("t3", true), user("da", true)],
        vec![
            role(2, "t1", RosterRole::Teacher, "s1"),
            role(3, "t1", RosterRole::SiteAdministrator, "s1"),
            role(4, "t3", RosterRole::Teacher, "s1"),
            role(5, "da", RosterRole::DistrictAdministrator, "s2"),
        ],
    );
    let plan = planned(&package, &now);
    let ended: Vec<u64> = plan.deactivate.iter().map(|r| r.id.get()).collect();
    assert_eq!(ended, [1, 2]);
    assert_eq!(
        plan.grant,
        [
            RoleGrant {
                user: user_id("t1"),
                place: Place::School(SchoolRef::Existing(tid(2))),
                kind: RoleKind::Admin
            },
            RoleGrant {
                user: user_id("da"),
                place: Place::District,
                kind: RoleKind::Admin
            },
        ]
    );
    assert_eq!(
        plan.blocked,
        [Blocked {
            user: user_id("t3"),
            tenant: tid(2),
            held: RoleKind::Manager,
            wanted: RoleKind::Teacher
        }]
    );
}

#[test]
fn schools_are_renamed_reactivated_and_deactivated_by_a_bulk_orgs_file() {
    let mut now = current();
    now.schools[0].active = false;
    let package = Package {
        orgs: table(
            FileMode::Bulk,
            vec![
                org(2, "d1", OrgType::District, "Springfield USD", None),
                org(3, "s1", OrgType::School, "North", Some("d1")),
                org(4, "s3", OrgType::School, "East", Some("d1")),
            ],
        ),
        users: None,
        roles: None,
    };
    let plan = planned(&package, &now);
    assert_eq!(
        plan.rename_district.as_ref().map(|n| n.as_str()),
        Some("Springfield USD")
    );
    assert_eq!(school(&plan, "s1").change, SchoolChange::Reactivated);
    assert_eq!(school(&plan, "s2").change, SchoolChange::Deactivated);
    assert_eq!(school(&plan, "s3").change, SchoolChange::Created);
    // Roles absent: seat holders of a reactivated school keep their seats.
    assert!(school(&plan, "s1").reclaim.is_empty());
}

#[test]
fn a_package_of_another_district_is_refused_with_every_reason() {
    let package = Package {
        orgs: table(
            FileMode::Bulk,
            vec![
                org(2, "d9", OrgType::District, "Shelbyville", None),
                org(3, "s1", OrgType::School, "North", Some("d1")),
                org(4, "s5", OrgType::School, "West", None),
            ],
        ),
        users: None,
        roles: table(FileMode::Bulk, vec![role(2, "a", RosterRole::Student, "nowhere")]),
    };
    let err = plan(&package, &current(), TODAY)
        .err()
        .unwrap_or_else(|| panic!("planned"));
    assert_eq!(
        err.lines(),
        [
            "orgs.csv:2: sourcedId: \"d9\" is another district: this district was imported as \"d1\"",
            "orgs.csv:3: parentSourcedId: \"d1\" is not this package's district \"d9\": a school of another district",
            "orgs.csv:4: parentSourcedId: a school must name its district (\"d9\")",
            "roles.csv:2: orgSourcedId: no org \"nowhere\" in orgs.csv (a bulk file lists every org)",
        ]
    );
}
