//! Roster imports: a district's OneRoster package checked, planned against
//! the district as it is (`roster::plan`), and applied through the engine's
//! own operations: tenants created and changed, bulk reclaim and bulk
//! assign per school (chunks of `MAX_ROWS`), roles granted and deactivated.
//!
//! Every change is one of those operations, durable with its audit entry
//! (seat changes carry a reason naming the import; `changed_by` is the
//! caller). An import cut short (kill -9) leaves each of them done or not;
//! importing the same package again plans only what is left, so it
//! finishes the job. One import per district at a time.

use std::collections::BTreeMap;

use futures_util::future;
use serde::Serialize;

use crate::domain::{Caller, LearnerId, Reason, RoleId, RoleKind, SeatId, Tenant, TenantId, TenantKind};
use crate::roster::plan::{Blocked, RoleGrant};
use crate::roster::{self, Current, CurrentRole, CurrentSchool, Date, Files, Place, Plan, SchoolChange, SchoolRef};

use super::actor;
use super::bulk::{Input, RowResult, Targets, MAX_ROWS};
use super::durable::Durable;
use super::error::{Error, Missing};
use super::pool::SeatFilter;
use super::{Action, Engine};

/// How many seats one read of a school's seats takes.
const SEAT_PAGE: usize = 10_000;

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RosterReport {
    pub district_id: TenantId,
    /// Names the import in the audit trail's reasons: the start of the
    /// package's SHA-256 (the same package is the same import).
    pub import_id: String,
    pub dry_run: bool,
    pub files: BTreeMap<&'static str, roster::FileMode>,
    pub district: DistrictReport,
    pub schools: Vec<SchoolReport>,
    pub roles: RolesReport,
    pub totals: BTreeMap<&'static str, u64>,
    /// Always empty in a report: a package with problems is refused whole.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DistrictReport {
    pub sourced_id: String,
    /// This import linked the district to its org (the first import).
    pub linked: bool,
    pub renamed_from: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SchoolReport {
    pub sourced_id: String,
    /// Null for a school a dry run would create.
    pub tenant_id: Option<TenantId>,
    pub name: String,
    /// `created`, `renamed`, `reactivated`, `deactivated` or `unchanged`.
    pub change: &'static str,
    pub previous_name: Option<String>,
    pub seated: u64,
    pub already_seated: u64,
    pub reclaimed: Vec<String>,
    /// Students left without a seat: the school had no free seat for them.
    pub unseated: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RolesReport {
    pub granted: Vec<RoleLine>,
    pub deactivated: Vec<RoleLine>,
    /// Roles the roster gives that a role granted by hand stands in the way
    /// of (one active role per user per tenant): the hand-granted one stays.
    pub kept_hand_granted: Vec<KeptRole>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RoleLine {
    pub user_id: String,
    /// Null for a school a dry run would create.
    pub tenant_id: Option<TenantId>,
    /// The org's sourcedId (the district's or a school's), when it has one.
    pub org_sourced_id: Option<String>,
    pub role: RoleKind,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct KeptRole {
    pub user_id: String,
    pub tenant_id: TenantId,
    pub held: RoleKind,
    pub roster_role: RoleKind,
}

impl Engine {
    /// Checks, plans and (unless `dry_run`) applies a roster package for a
    /// district; district admins and platform admins only.
    pub async fn import_roster(
        &self,
        caller: &Caller,
        district: TenantId,
        files: Files,
        import_id: String,
        dry_run: bool,
    ) -> Result<Durable<RosterReport>, Error> {
        if self.directory.district(district).is_none() {
            return Err(Error::NotFound(Missing::District));
        }
        self.check(caller, Action::ManageTenant, district, Missing::District)
            .await?;
        self.writable(district).await?;
        let lock = self.imports.entry(district).or_default().clone();
        let _one_at_a_time = lock.lock().await;

        let package = tokio::task::spawn_blocking(move || roster::parse(&files))
            .await
            .map_err(|e| Error::Internal(e.into()))?
            .map_err(Error::RosterInvalid)?;
        let current = self.roster_current(district).await?;
        let today = Date::today();
        let (plan, current) = tokio::task::spawn_blocking(move || {
            let plan = roster::plan(&package, &current, today);
            (plan, current)
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        let plan = plan.map_err(Error::RosterInvalid)?;
        if dry_run {
            let report = Applied::predicted(&plan).report(&plan, &current, &import_id, true);
            return Ok(Durable::ready(report));
        }
        let applied = self.apply_roster(caller, &plan, &current, &import_id).await?;
        Ok(Durable::ready(applied.report(&plan, &current, &import_id, false)))
    }

    /// The district as a roster import sees it: its schools with their
    /// seat holders and free seats, and the active roles in it.
    async fn roster_current(&self, district: TenantId) -> Result<Current, Error> {
        let (tenant, children, _) = self
            .directory
            .district(district)
            .ok_or(Error::NotFound(Missing::District))?;
        let schools = future::try_join_all(children.into_iter().map(|id| self.roster_school(id))).await?;
        let (roles, seq) = self.directory.roles_read().active_in(&self.directory.family(district));
        self.store.durable(seq).await?;
        Ok(Current {
            district,
            name: tenant.name.as_str().to_owned(),
            sourced_id: tenant.sourced_id,
            schools: schools.into_iter().flatten().collect(),
            roles: roles
                .into_iter()
                .map(|r| CurrentRole {
                    id: r.id,
                    user: r.user_id,
                    tenant: r.tenant_id,
                    kind: r.role,
                    roster: r.roster,
                })
                .collect(),
        })
    }

    /// A school's learners (in seat order) and free seats, read once durable.
    async fn roster_school(&self, id: TenantId) -> Result<Option<CurrentSchool>, Error> {
        let Some((tenant, _, seq)) = self.directory.counts(id) else {
            return Ok(None);
        };
        self.store.durable(seq).await?;
        let actor = self.actor(id)?;
        let mut seated = Vec::new();
        let mut free = 0;
        let mut after: Option<SeatId> = None;
        loop {
            let run = self
                .read(
                    &actor,
                    actor::ListSeats {
                        after,
                        filter: SeatFilter::default(),
                        limit: SEAT_PAGE,
                    },
                )
                .await?;
            after = run.seats.last().map(|s| s.id).or(after);
            for seat in run.seats {
                match seat.learner_id {
                    Some(learner) => seated.push(learner),
                    None => free += 1,
                }
            }
            if !run.more {
                break;
            }
        }
        Ok(Some(CurrentSchool {
            id,
            name: tenant.name.as_str().to_owned(),
            sourced_id: tenant.sourced_id,
            active: tenant.is_active,
            seated,
            free,
        }))
    }

    async fn apply_roster(
        &self,
        caller: &Caller,
        plan: &Plan,
        current: &Current,
        import_id: &str,
    ) -> Result<Applied, Error> {
        let mut applied = Applied::default();
        // Writes are issued first and waited for together: a wait covers
        // every write made before it (group commit), so a batch of them
        // costs about one flush, not one each.
        let mut tenants: Vec<(Option<String>, Durable<Tenant>)> = Vec::new();

        // The district, then its schools: the seats and roles below need them.
        if plan.link_district || plan.rename_district.is_some() {
            let sid = plan.district_sourced_id.clone();
            let name = plan.rename_district.clone();
            let changed = self.change_tenant(current.district, None, |t| {
                t.sourced_id = Some(sid);
                if let Some(name) = name {
                    t.name = name;
                }
            })?;
            tenants.push((None, changed));
        }
        for school in &plan.schools {
            let sid = Some(school.sourced_id.clone());
            match (&school.school, school.change) {
                (SchoolRef::New(new), _) => {
                    let made = self.create_tenant(
                        school.name.clone(),
                        TenantKind::School,
                        Some(current.district),
                        Some(new.clone()),
                        None,
                    )?;
                    tenants.push((sid, made));
                }
                (SchoolRef::Existing(id), SchoolChange::Renamed | SchoolChange::Reactivated) => {
                    let name = school.name.clone();
                    let changed = self.change_tenant(*id, None, |t| {
                        t.name = name;
                        t.is_active = true;
                    })?;
                    tenants.push((sid, changed));
                }
                (SchoolRef::Existing(id), _) => {
                    applied.tenants.insert(school.sourced_id.clone(), *id);
                }
            }
        }
        for (sid, written) in tenants {
            let tenant = written.wait(&self.store).await?;
            if let Some(sid) = sid {
                applied.tenants.insert(sid, tenant.id);
            }
        }

        // Seats: every school at once, reclaims before assignments.
        let by = caller.clone();
        let reclaim_reason = Reason::parse_reclaim(Some(format!("Removed from roster (roster import {import_id})")))?;
        let seat_reason = Reason::parse_reclaim(Some(format!("Seated by roster (roster import {import_id})")))?;
        let outcomes = future::try_join_all(
            plan.schools
                .iter()
                .filter(|s| s.change != SchoolChange::Deactivated)
                .map(|school| {
                    let tenant = applied.tenants.get(&school.sourced_id).copied();
                    let (by, reclaim_reason, seat_reason) = (&by, reclaim_reason.clone(), seat_reason.clone());
                    async move {
                        let Some(tenant) = tenant else {
                            return Ok::<_, Error>(None);
                        };
                        let mut seats = SchoolSeats {
                            already: school.already,
                            ..SchoolSeats::default()
                        };
                        for chunk in school.reclaim.chunks(MAX_ROWS) {
                            let targets = Targets::Learners(chunk.iter().map(input).collect());
                            let report = self
                                .reclaim_many(by, tenant, targets, reclaim_reason.clone(), None)
                                .await?
                                .wait(&self.store)
                                .await?;
                            for row in report.results {
                                if row.result == RowResult::Reclaimed {
                                    seats.reclaimed.extend(row.learner_id);
                                }
                            }
                        }
                        for chunk in school.seat.chunks(MAX_ROWS) {
                            let learners = chunk.iter().map(input).collect();
                            let report = self
                                .assign_many_because(by, tenant, learners, Some(seat_reason.clone()), None)
                                .await?
                                .wait(&self.store)
                                .await?;
                            for row in report.results {
                                match row.result {
                                    RowResult::Assigned => seats.seated += 1,
                                    RowResult::AlreadyAssigned => seats.already += 1,
                                    _ => seats.unseated.extend(row.learner_id),
                                }
                            }
                        }
                        Ok(Some((school.sourced_id.clone(), seats)))
                    }
                }),
        )
        .await?;
        applied.seats = outcomes.into_iter().flatten().collect();

        // Roles: what the roster no longer gives first (a changed role is
        // one deactivation and one grant), then the grants.
        let mut ended = Vec::new();
        for end in &plan.deactivate {
            match self.end_role(caller, end.id, None) {
                Ok(done) => ended.push((end.id, done)),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut granted = Vec::new();
        for grant in &plan.grant {
            let Some(tenant) = applied.place(grant, current.district) else {
                continue;
            };
            granted.push((
                grant,
                tenant,
                self.grant_role(caller, grant.user.clone(), tenant, grant.kind, true, None)?,
            ));
        }
        for (id, done) in ended {
            match done.wait(&self.store).await {
                Ok(_) | Err(Error::RoleInactive) => {
                    applied.ended.insert(id);
                }
                Err(e) => return Err(e),
            }
        }
        for (grant, tenant, done) in granted {
            match done.wait(&self.store).await {
                Ok(_) => applied.granted.push(grant.clone()),
                // A role granted by hand meanwhile: it stays.
                Err(Error::RoleExists) => {
                    if let Some(held) = self.directory.roles_read().active_role(&grant.user, tenant) {
                        applied.blocked.push(Blocked {
                            user: grant.user.clone(),
                            tenant,
                            held,
                            wanted: grant.kind,
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        applied.blocked.extend(plan.blocked.iter().cloned());

        // Schools the roster closes, last.
        for school in plan.schools.iter().filter(|s| s.change == SchoolChange::Deactivated) {
            if let SchoolRef::Existing(id) = school.school {
                self.change_tenant(id, None, |t| t.is_active = false)?
                    .wait(&self.store)
                    .await?;
            }
        }
        Ok(applied)
    }
}

fn input(learner: &LearnerId) -> Input<LearnerId> {
    Input {
        learner_id: Some(learner.as_str().to_owned()),
        seat_id: None,
        parsed: Ok(learner.clone()),
    }
}

/// What one school's seat changes came to.
#[derive(Debug, Default)]
struct SchoolSeats {
    seated: u64,
    already: u64,
    reclaimed: Vec<String>,
    unseated: Vec<String>,
}

/// What an import did (or a dry run predicts).
#[derive(Debug, Default)]
struct Applied {
    /// Each roster school's tenant (a dry run knows only existing ones).
    tenants: BTreeMap<String, TenantId>,
    seats: BTreeMap<String, SchoolSeats>,
    ended: std::collections::HashSet<RoleId>,
    granted: Vec<RoleGrant>,
    blocked: Vec<Blocked>,
}

impl Applied {
    /// The plan's outcome, as a dry run reports it.
    fn predicted(plan: &Plan) -> Applied {
        let mut applied = Applied::default();
        for school in &plan.schools {
            if let SchoolRef::Existing(id) = school.school {
                applied.tenants.insert(school.sourced_id.clone(), id);
            }
            if school.change == SchoolChange::Deactivated {
                continue;
            }
            let seats = SchoolSeats {
                seated: school.seated().len() as u64,
                already: school.already,
                reclaimed: school.reclaim.iter().map(|l| l.as_str().to_owned()).collect(),
                unseated: school.unseated().iter().map(|l| l.as_str().to_owned()).collect(),
            };
            applied.seats.insert(school.sourced_id.clone(), seats);
        }
        applied.ended = plan.deactivate.iter().map(|r| r.id).collect();
        applied.granted = plan.grant.clone();
        applied.blocked = plan.blocked.clone();
        applied
    }

    fn place(&self, grant: &RoleGrant, district: TenantId) -> Option<TenantId> {
        match &grant.place {
            Place::District => Some(district),
            Place::School(SchoolRef::Existing(id)) => Some(*id),
            Place::School(SchoolRef::New(sid)) => self.tenants.get(sid).copied(),
        }
    }

    fn report(&self, plan: &Plan, current: &Current, import_id: &str, dry_run: bool) -> RosterReport {
        let mut totals: BTreeMap<&'static str, u64> = [
            "schools_created",
            "schools_renamed",
            "schools_reactivated",
            "schools_deactivated",
            "seated",
            "already_seated",
            "reclaimed",
            "unseated",
            "roles_granted",
            "roles_deactivated",
            "roles_kept_hand_granted",
        ]
        .into_iter()
        .map(|k| (k, 0))
        .collect();
        let mut bump = |k: &'static str, n: u64| *totals.entry(k).or_default() += n;
        let org_of = |tenant: TenantId| -> Option<String> {
            if tenant == current.district {
                return Some(plan.district_sourced_id.clone());
            }
            self.tenants
                .iter()
                .find(|(_, t)| **t == tenant)
                .map(|(sid, _)| sid.clone())
        };
        let schools = plan
            .schools
            .iter()
            .map(|school| {
                let change = match school.change {
                    SchoolChange::Created => "created",
                    SchoolChange::Renamed => "renamed",
                    SchoolChange::Reactivated => "reactivated",
                    SchoolChange::Deactivated => "deactivated",
                    SchoolChange::Unchanged => "unchanged",
                };
                if let Some(key) = match school.change {
                    SchoolChange::Created => Some("schools_created"),
                    SchoolChange::Renamed => Some("schools_renamed"),
                    SchoolChange::Reactivated => Some("schools_reactivated"),
                    SchoolChange::Deactivated => Some("schools_deactivated"),
                    SchoolChange::Unchanged => None,
                } {
                    bump(key, 1);
                }
                let empty = SchoolSeats::default();
                let seats = self.seats.get(&school.sourced_id).unwrap_or(&empty);
                bump("seated", seats.seated);
                bump("already_seated", seats.already);
                bump("reclaimed", seats.reclaimed.len() as u64);
                bump("unseated", seats.unseated.len() as u64);
                SchoolReport {
                    sourced_id: school.sourced_id.clone(),
                    tenant_id: self.tenants.get(&school.sourced_id).copied(),
                    name: school.name.as_str().to_owned(),
                    change,
                    previous_name: school.previous_name.clone(),
                    seated: seats.seated,
                    already_seated: seats.already,
                    reclaimed: seats.reclaimed.clone(),
                    unseated: seats.unseated.clone(),
                }
            })
            .collect();
        let granted: Vec<RoleLine> = self
            .granted
            .iter()
            .map(|g| {
                let tenant = self.place(g, current.district);
                RoleLine {
                    user_id: g.user.as_str().to_owned(),
                    tenant_id: tenant,
                    org_sourced_id: match &g.place {
                        Place::District => Some(plan.district_sourced_id.clone()),
                        Place::School(SchoolRef::New(sid)) => Some(sid.clone()),
                        Place::School(SchoolRef::Existing(id)) => org_of(*id),
                    },
                    role: g.kind,
                }
            })
            .collect();
        let deactivated: Vec<RoleLine> = plan
            .deactivate
            .iter()
            .filter(|r| self.ended.contains(&r.id))
            .map(|r| RoleLine {
                user_id: r.user.as_str().to_owned(),
                tenant_id: Some(r.tenant),
                org_sourced_id: org_of(r.tenant),
                role: r.kind,
            })
            .collect();
        let kept: Vec<KeptRole> = self
            .blocked
            .iter()
            .map(|b| KeptRole {
                user_id: b.user.as_str().to_owned(),
                tenant_id: b.tenant,
                held: b.held,
                roster_role: b.wanted,
            })
            .collect();
        bump("roles_granted", granted.len() as u64);
        bump("roles_deactivated", deactivated.len() as u64);
        bump("roles_kept_hand_granted", kept.len() as u64);
        let district_name = plan
            .rename_district
            .as_ref()
            .map_or_else(|| current.name.clone(), |n| n.as_str().to_owned());
        RosterReport {
            district_id: current.district,
            import_id: import_id.to_owned(),
            dry_run,
            files: ["orgs", "users", "roles"].into_iter().zip(plan.modes).collect(),
            district: DistrictReport {
                sourced_id: plan.district_sourced_id.clone(),
                linked: plan.link_district,
                renamed_from: plan.rename_district.as_ref().map(|_| current.name.clone()),
                name: district_name,
            },
            schools,
            roles: RolesReport {
                granted,
                deactivated,
                kept_hand_granted: kept,
            },
            totals,
            errors: Vec::new(),
        }
    }
}

/// The id an import goes by: the first 12 hex digits of the package's SHA-256.
pub fn import_id(package: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(package)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}
