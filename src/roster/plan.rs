//! The plan of an import: what must change for the district to match its
//! roster, from a checked package and the district as it is. Pure: the
//! engine gathers `Current`, and applies the `Plan` through its own
//! operations, so that re-planning after a crash (or a second import of the
//! same package) finds only what is left to do.
//!
//! What the roster decides (and nothing else):
//! - the district org (linked to the tenant by its `sourcedId` on the first
//!   import) and its schools: the schools the roster made (they carry a
//!   `sourcedId`) are created, renamed, reactivated or deactivated; schools
//!   made by hand are never touched;
//! - the seats of the roster's schools: a student (role `student` at the
//!   school, user enabled, today within `beginDate..=endDate`) holds a seat,
//!   and every other seat holder there loses theirs; new students take the
//!   free seats in file order, and those left over are reported, nothing
//!   else blocked;
//! - staff roles: `teacher` is teacher, `siteAdministrator` admin at its org,
//!   `districtAdministrator` admin at the district (the strongest wins when a
//!   user has several at one place); roles the roster granted and no longer
//!   gives are deactivated, and a role granted by hand is never touched (a
//!   roster role for the same user and place is then not granted: one active
//!   role per user per tenant).
//!
//! A bulk file is the whole set: what it does not list is gone. A delta file
//! changes only what it lists (`tobedeleted` rows take away). A user disabled
//! or deleted in users.csv loses every seat and roster role in the district.

use std::collections::{HashMap, HashSet};

use crate::domain::{LearnerId, RoleId, RoleKind, TenantId, TenantName, UserId};

use super::binding::{Date, FileMode, OrgType, Package, Problems, RosterRole, Status};

/// A school the plan names: one that exists, or one it creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchoolRef {
    Existing(TenantId),
    /// Created by this import; its `sourcedId`.
    New(String),
}

/// Where a staff role is held.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Place {
    District,
    School(SchoolRef),
}

/// The district as it is.
#[derive(Debug, Clone)]
pub struct Current {
    pub district: TenantId,
    pub name: String,
    pub sourced_id: Option<String>,
    pub schools: Vec<CurrentSchool>,
    /// The active roles in the district and its schools.
    pub roles: Vec<CurrentRole>,
}

#[derive(Debug, Clone)]
pub struct CurrentSchool {
    pub id: TenantId,
    pub name: String,
    /// Set when the roster made it.
    pub sourced_id: Option<String>,
    pub active: bool,
    /// Learners holding a seat here, in seat order.
    pub seated: Vec<LearnerId>,
    pub free: u64,
}

#[derive(Debug, Clone)]
pub struct CurrentRole {
    pub id: RoleId,
    pub user: UserId,
    pub tenant: TenantId,
    pub kind: RoleKind,
    /// Granted by a roster import (not by hand).
    pub roster: bool,
}

/// What happens to a roster school itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchoolChange {
    Created,
    Renamed,
    Reactivated,
    Deactivated,
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct SchoolPlan {
    pub sourced_id: String,
    pub school: SchoolRef,
    /// The name after the import.
    pub name: TenantName,
    pub previous_name: Option<String>,
    pub change: SchoolChange,
    /// Also renamed when reactivated.
    pub renamed: bool,
    /// Learners whose seats are reclaimed, in seat order.
    pub reclaim: Vec<LearnerId>,
    /// Learners to seat, in file order: the first `seatable` of them get the
    /// free seats, the rest are left over.
    pub seat: Vec<LearnerId>,
    pub seatable: usize,
    /// Learners the package names here who already hold a seat.
    pub already: u64,
}

impl SchoolPlan {
    /// The learners who will not get a seat for want of free ones.
    pub fn unseated(&self) -> &[LearnerId] {
        self.seat.get(self.seatable..).unwrap_or(&[])
    }

    pub fn seated(&self) -> &[LearnerId] {
        &self.seat[..self.seatable.min(self.seat.len())]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub user: UserId,
    pub place: Place,
    pub kind: RoleKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEnd {
    pub id: RoleId,
    pub user: UserId,
    pub tenant: TenantId,
    pub kind: RoleKind,
}

/// A role the roster gives that a hand-granted role stands in the way of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub user: UserId,
    pub tenant: TenantId,
    pub held: RoleKind,
    pub wanted: RoleKind,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub district_sourced_id: String,
    /// The first import: the district gets its `sourcedId`.
    pub link_district: bool,
    pub rename_district: Option<TenantName>,
    pub schools: Vec<SchoolPlan>,
    /// Deactivated before the grants (a changed role is one of each).
    pub deactivate: Vec<RoleEnd>,
    pub grant: Vec<RoleGrant>,
    pub blocked: Vec<Blocked>,
    pub modes: [FileMode; 3],
}

/// What the package says of one learner at one school, or of one staff
/// member at one place.
struct Wanted<K> {
    /// In file order, each once.
    add: Vec<K>,
    added: HashSet<K>,
    remove: HashSet<K>,
}

impl<K> Default for Wanted<K> {
    fn default() -> Self {
        Wanted {
            add: Vec::new(),
            added: HashSet::new(),
            remove: HashSet::new(),
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash> Wanted<K> {
    fn add(&mut self, k: K) {
        self.remove.remove(&k);
        if self.added.insert(k.clone()) {
            self.add.push(k);
        }
    }
    /// A row that does not (or no longer) hold: it takes away only what no
    /// other row of the package gives.
    fn remove(&mut self, k: K) {
        if !self.added.contains(&k) {
            self.remove.insert(k);
        }
    }
}

fn strength(kind: RoleKind) -> u8 {
    match kind {
        RoleKind::Learner => 0,
        RoleKind::Teacher => 1,
        RoleKind::Manager => 2,
        RoleKind::Admin => 3,
    }
}

/// The plan for `package` against `current`, or every problem that keeps it
/// from being applied (the binding's rules that depend on the district:
/// which district, which schools, which ids).
pub fn plan(package: &Package, current: &Current, today: Date) -> Result<Plan, Problems> {
    let mut problems = Problems::default();
    let modes = [package.mode("orgs"), package.mode("users"), package.mode("roles")];

    // ---- the district -------------------------------------------------
    let mut district_row = None;
    if let Some(orgs) = &package.orgs {
        for org in orgs.rows.iter().filter(|o| o.kind == OrgType::District) {
            match district_row {
                None => district_row = Some(org),
                Some(first) => problems.add(
                    "orgs.csv",
                    org.line,
                    "type",
                    format!(
                        "a second district (the first is line {}): a package is one district",
                        first.line
                    ),
                ),
            }
        }
        if district_row.is_none() && orgs.mode == FileMode::Bulk {
            problems.add(
                "orgs.csv",
                1,
                "type",
                "a bulk orgs.csv must list the district (type district)",
            );
        }
    }
    if let Some(row) = district_row {
        if row.status == Status::ToBeDeleted {
            problems.add(
                "orgs.csv",
                row.line,
                "status",
                "the district cannot be deleted by its roster",
            );
        }
        if let Some(stored) = current.sourced_id.as_deref().filter(|s| *s != row.sourced_id) {
            problems.add(
                "orgs.csv",
                row.line,
                "sourcedId",
                format!(
                    "{:?} is another district: this district was imported as {stored:?}",
                    row.sourced_id
                ),
            );
        }
    }
    let district_sid = match (district_row, &current.sourced_id) {
        (Some(row), _) => row.sourced_id.clone(),
        (None, Some(stored)) => stored.clone(),
        (None, None) => {
            problems.add(
                "orgs.csv",
                1,
                "(file)",
                "the first import of a district needs its district org (type district) in orgs.csv",
            );
            String::new()
        }
    };
    let rename_district = match district_row {
        Some(row) if row.name != current.name => match TenantName::parse(row.name.clone()) {
            Ok(name) => Some(name),
            Err(e) => {
                problems.add("orgs.csv", row.line, "name", e.to_string());
                None
            }
        },
        _ => None,
    };

    // ---- schools ------------------------------------------------------
    let by_sid: HashMap<&str, &CurrentSchool> = current
        .schools
        .iter()
        .filter_map(|s| s.sourced_id.as_deref().map(|sid| (sid, s)))
        .collect();
    let mut schools: Vec<SchoolPlan> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    // Every org of the package, for the roles' references.
    let mut orgs_known: HashSet<&str> = HashSet::new();
    let mut listed: HashSet<&str> = HashSet::new();
    if let Some(orgs) = &package.orgs {
        for org in &orgs.rows {
            orgs_known.insert(&org.sourced_id);
            if org.kind != OrgType::School {
                continue;
            }
            match &org.parent {
                None => problems.add(
                    "orgs.csv",
                    org.line,
                    "parentSourcedId",
                    format!("a school must name its district ({district_sid:?})"),
                ),
                Some(p) if *p != district_sid => problems.add(
                    "orgs.csv",
                    org.line,
                    "parentSourcedId",
                    format!("{p:?} is not this package's district {district_sid:?}: a school of another district"),
                ),
                Some(_) => {}
            }
            let name = match TenantName::parse(org.name.clone()) {
                Ok(n) => n,
                Err(e) => {
                    problems.add("orgs.csv", org.line, "name", e.to_string());
                    continue;
                }
            };
            listed.insert(&org.sourced_id);
            let existing = by_sid.get(org.sourced_id.as_str());
            let plan = match (existing, org.status) {
                (None, Status::ToBeDeleted) => continue,
                (None, Status::Active) => school_plan(
                    &org.sourced_id,
                    SchoolRef::New(org.sourced_id.clone()),
                    name,
                    SchoolChange::Created,
                ),
                (Some(s), Status::ToBeDeleted) => {
                    let change = if s.active {
                        SchoolChange::Deactivated
                    } else {
                        SchoolChange::Unchanged
                    };
                    existing_plan(s, &org.sourced_id, None, change)
                }
                (Some(s), Status::Active) => {
                    let renamed = s.name != org.name;
                    let change = match (s.active, renamed) {
                        (false, _) => SchoolChange::Reactivated,
                        (true, true) => SchoolChange::Renamed,
                        (true, false) => SchoolChange::Unchanged,
                    };
                    existing_plan(s, &org.sourced_id, Some(name).filter(|_| renamed), change)
                }
            };
            index.insert(org.sourced_id.clone(), schools.len());
            schools.push(plan);
        }
    }
    for school in &current.schools {
        let Some(sid) = school.sourced_id.as_deref() else {
            continue;
        };
        if index.contains_key(sid) {
            continue;
        }
        let gone = modes[0] == FileMode::Bulk && !listed.contains(sid);
        let change = if gone && school.active {
            SchoolChange::Deactivated
        } else {
            SchoolChange::Unchanged
        };
        index.insert(sid.to_owned(), schools.len());
        schools.push(existing_plan(school, sid, None, change));
    }
    // Schools open after the import: only these take seat and role changes.
    let open = |p: &SchoolPlan| -> bool {
        match p.change {
            SchoolChange::Deactivated => false,
            SchoolChange::Unchanged => match &p.school {
                SchoolRef::Existing(id) => current.schools.iter().any(|s| s.id == *id && s.active),
                SchoolRef::New(_) => true,
            },
            _ => true,
        }
    };

    // ---- users ----------------------------------------------------------
    // Whether each user the package lists may hold seats and roles.
    let mut enabled: HashMap<&str, bool> = HashMap::new();
    if let Some(users) = &package.users {
        for u in &users.rows {
            enabled.insert(&u.sourced_id, u.enabled && u.status == Status::Active);
        }
    }
    let users_complete = modes[1] == FileMode::Bulk;
    let is_enabled = |user: &str| enabled.get(user).copied().unwrap_or(!users_complete);

    // ---- roles ----------------------------------------------------------
    let mut students: HashMap<usize, Wanted<LearnerId>> = HashMap::new();
    let mut staff: Wanted<(UserId, Place)> = Wanted::default();
    let mut staff_kind: HashMap<(UserId, Place), RoleKind> = HashMap::new();
    let place_of = |org: &str| -> Option<Place> {
        if org == district_sid {
            return Some(Place::District);
        }
        let i = index.get(org)?;
        Some(Place::School(schools[*i].school.clone()))
    };
    if let Some(roles) = &package.roles {
        for row in &roles.rows {
            let org_known =
                row.org == district_sid || index.contains_key(&row.org) || orgs_known.contains(row.org.as_str());
            if !org_known && modes[0] == FileMode::Bulk {
                problems.add(
                    "roles.csv",
                    row.line,
                    "orgSourcedId",
                    format!("no org {:?} in orgs.csv (a bulk file lists every org)", row.org),
                );
                continue;
            }
            let effective = row.status == Status::Active
                && is_enabled(&row.user)
                && row.begin.is_none_or(|b| b <= today)
                && row.end.is_none_or(|e| today <= e);
            match row.role {
                RosterRole::Student => {
                    let Some(&i) = index.get(&row.org) else { continue };
                    let learner = match LearnerId::parse(&row.user) {
                        Ok(l) => l,
                        Err(e) => {
                            problems.add(
                                "roles.csv",
                                row.line,
                                "userSourcedId",
                                format!("cannot be a learner id: {e}"),
                            );
                            continue;
                        }
                    };
                    let wanted = students.entry(i).or_default();
                    if effective {
                        wanted.add(learner);
                    } else {
                        wanted.remove(learner);
                    }
                }
                RosterRole::Teacher | RosterRole::SiteAdministrator | RosterRole::DistrictAdministrator => {
                    let place = if row.role == RosterRole::DistrictAdministrator {
                        Some(Place::District)
                    } else {
                        place_of(&row.org)
                    };
                    let Some(place) = place else { continue };
                    let user = match UserId::parse(&row.user) {
                        Ok(u) => u,
                        Err(e) => {
                            problems.add(
                                "roles.csv",
                                row.line,
                                "userSourcedId",
                                format!("cannot be a user id: {e}"),
                            );
                            continue;
                        }
                    };
                    let kind = if row.role == RosterRole::Teacher {
                        RoleKind::Teacher
                    } else {
                        RoleKind::Admin
                    };
                    let key = (user, place);
                    if effective {
                        let stronger = staff_kind.get(&key).is_none_or(|k| strength(kind) > strength(*k));
                        if stronger {
                            staff_kind.insert(key.clone(), kind);
                        }
                        staff.add(key);
                    } else {
                        staff.remove(key);
                    }
                }
                RosterRole::Other => {}
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // ---- seats ----------------------------------------------------------
    let roles_complete = modes[2] == FileMode::Bulk;
    for (i, school) in schools.iter_mut().enumerate() {
        let is_open = open(school);
        let wanted = students.remove(&i).unwrap_or_default();
        if !is_open {
            continue;
        }
        let (seated, free): (&[LearnerId], u64) = match &school.school {
            SchoolRef::Existing(id) => current
                .schools
                .iter()
                .find(|s| s.id == *id)
                .map_or((&[][..], 0), |s| (&s.seated[..], s.free)),
            SchoolRef::New(_) => (&[], 0),
        };
        let holding: HashSet<&LearnerId> = seated.iter().collect();
        let keeps = |l: &LearnerId| -> bool {
            let listed = wanted.added.contains(l);
            let named_off = wanted.remove.contains(l);
            let user_ok = is_enabled(l.as_str());
            user_ok && !named_off && (listed || !roles_complete)
        };
        school.reclaim = seated.iter().filter(|l| !keeps(l)).cloned().collect();
        school.already = wanted.add.iter().filter(|l| holding.contains(l)).count() as u64;
        school.seat = wanted.add.into_iter().filter(|l| !holding.contains(l)).collect();
        let free_after = free + school.reclaim.len() as u64;
        school.seatable = school.seat.len().min(usize::try_from(free_after).unwrap_or(usize::MAX));
    }

    // ---- staff roles ----------------------------------------------------
    let tenant_of = |place: &Place| -> Option<TenantId> {
        match place {
            Place::District => Some(current.district),
            Place::School(SchoolRef::Existing(id)) => Some(*id),
            Place::School(SchoolRef::New(_)) => None,
        }
    };
    let place_open = |place: &Place| -> bool {
        match place {
            Place::District => true,
            Place::School(school) => schools.iter().any(|p| p.school == *school && open(p)),
        }
    };
    let mut deactivate = Vec::new();
    let mut grant = Vec::new();
    let mut blocked = Vec::new();
    let held: HashMap<(&UserId, TenantId), &CurrentRole> =
        current.roles.iter().map(|r| ((&r.user, r.tenant), r)).collect();
    // Roster roles that no longer hold.
    for role in current.roles.iter().filter(|r| r.roster) {
        let place = if role.tenant == current.district {
            Place::District
        } else {
            Place::School(SchoolRef::Existing(role.tenant))
        };
        let key = (role.user.clone(), place.clone());
        let still = place_open(&place)
            && is_enabled(role.user.as_str())
            && !staff.remove.contains(&key)
            && (staff.added.contains(&key) || !roles_complete);
        let same = staff_kind.get(&key).is_none_or(|k| *k == role.kind);
        if !still || !same {
            deactivate.push(RoleEnd {
                id: role.id,
                user: role.user.clone(),
                tenant: role.tenant,
                kind: role.kind,
            });
        }
    }
    for key in &staff.add {
        let (user, place) = key;
        let Some(kind) = staff_kind.get(key).copied() else {
            continue;
        };
        if !place_open(place) {
            continue;
        }
        match tenant_of(place).and_then(|t| held.get(&(user, t)).map(|r| (t, r))) {
            Some((_, r)) if r.roster && r.kind == kind => {}
            Some((tenant, r)) if !r.roster => blocked.push(Blocked {
                user: user.clone(),
                tenant,
                held: r.kind,
                wanted: kind,
            }),
            _ => grant.push(RoleGrant {
                user: user.clone(),
                place: place.clone(),
                kind,
            }),
        }
    }

    Ok(Plan {
        link_district: current.sourced_id.is_none(),
        district_sourced_id: district_sid,
        rename_district,
        schools,
        deactivate,
        grant,
        blocked,
        modes,
    })
}

fn school_plan(sid: &str, school: SchoolRef, name: TenantName, change: SchoolChange) -> SchoolPlan {
    SchoolPlan {
        sourced_id: sid.to_owned(),
        school,
        name,
        previous_name: None,
        change,
        renamed: false,
        reclaim: Vec::new(),
        seat: Vec::new(),
        seatable: 0,
        already: 0,
    }
}

fn existing_plan(s: &CurrentSchool, sid: &str, rename: Option<TenantName>, change: SchoolChange) -> SchoolPlan {
    let renamed = rename.is_some();
    let current = TenantName::parse(s.name.clone());
    let name = match (rename, current) {
        (Some(n), _) => n,
        (None, Ok(n)) => n,
        // A stored name is valid; this keeps the plan total anyway.
        (None, Err(_)) => TenantName::parse(sid.to_owned()).unwrap_or_else(|_| unreachable_name()),
    };
    let mut plan = school_plan(sid, SchoolRef::Existing(s.id), name, change);
    plan.renamed = renamed;
    plan.previous_name = renamed.then(|| s.name.clone());
    plan
}

fn unreachable_name() -> TenantName {
    match TenantName::parse("school".to_owned()) {
        Ok(n) => n,
        Err(e) => unreachable!("a constant name is valid: {e}"),
    }
}

#[cfg(test)]
mod tests;
