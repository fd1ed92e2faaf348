//! The engine: the API the HTTP layer calls, in domain types only.
//!
//! Seat operations go to the owning tenant's actor; tenant metadata and roles
//! are served from the `Directory`. Every method waits until what it is about
//! to reveal is durable before returning it.

mod access;
mod actor;
mod arbiters;
mod directory;
mod learners;
mod mailbox;
pub mod pool;
mod router;
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::domain::{
    Alert, Audit, AuditPage, AuditQuery, Caller, Id, LearnerId, Percent, Reason, Role, RoleChange, RoleEvent, RoleId,
    RoleKind, Seat, SeatCount, SeatId, SeatSummary, Tenant, TenantId, TenantKind, TenantName, TenantPatch, Threshold,
    Timestamp, Transition, UserId,
};
use crate::error::{Error, Missing};
use crate::metrics::Metrics;
use crate::store::{ChainReport, IdSpace, Recovered, RetainReport, Seq, Store};

use access::Access;
pub use access::Action;
use actor::{Pending, Restored, TenantActor};
use arbiters::Arbiters;
use directory::{Directory, PublishedCounts, Roles, TenantEntry};
use mailbox::Mailbox;
pub use pool::{SeatPool, MAX_SEATS};
use router::SeatRouter;
use stats::MinuteStats;

/// What recovery found, for the start-up log.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryReport {
    pub tenants: usize,
    pub seats: u64,
    pub roles: usize,
    pub millis: u128,
}

/// `GET /me`: who the caller is and what they may do where.
#[derive(Debug, Serialize)]
pub struct Me {
    pub user_id: UserId,
    pub platform_admin: bool,
    pub enforce_roles: bool,
    pub roles: Vec<Role>,
    /// Tenants where the caller holds a role, and the schools of such districts.
    /// A platform admin may act everywhere; their list shows only their own roles.
    pub tenants: Vec<Reach>,
}

/// `GET /district/{id}/summary`: the top level is a SeatSummary of the
/// district's own and its schools' seats together.
#[derive(Debug, Serialize)]
pub struct DistrictSummary {
    #[serde(flatten)]
    pub totals: SeatSummary,
    /// The seats bought by the district itself.
    pub own: SeatSummary,
    /// One per school, in creation order.
    pub schools: Vec<SeatSummary>,
}

/// `GET /seats/history`: one entry per day, oldest first, today last.
#[derive(Debug, Serialize)]
pub struct History {
    pub tenant_id: TenantId,
    pub days: Vec<DayUtilization>,
}

#[derive(Debug, Serialize)]
pub struct DayUtilization {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub total_seats: u64,
    pub free_seats: u64,
    pub reserved_seats: u64,
    pub assigned_seats: u64,
    pub utilization_percentage: f64,
}

/// `GET /alerts`.
#[derive(Debug, Serialize)]
pub struct Alerts {
    pub tenant_id: TenantId,
    /// This tenant's threshold (its schools' may differ).
    pub threshold_percent: Option<Percent>,
    pub alerts: Vec<Alert>,
}

/// `GET /seats/stats`: seat transitions over a window of whole minutes.
#[derive(Debug, Serialize)]
pub struct SeatStats {
    pub tenant_id: TenantId,
    pub window_minutes: i64,
    /// The start of the window's first minute.
    pub from: Timestamp,
    pub until: Timestamp,
    /// Seats purchased, allocations and reclaims in the window.
    pub purchases: u64,
    pub allocations: u64,
    pub reclaims: u64,
    /// The same, averaged per minute of the window (2 decimals).
    pub per_minute: Rates,
    /// The minute with the most transitions (null when there were none).
    pub peak_minute: Option<MinuteActivity>,
    /// Every minute with activity, oldest first (idle minutes are left out).
    pub minutes: Vec<MinuteActivity>,
}

#[derive(Debug, Serialize)]
pub struct Rates {
    pub purchases: f64,
    pub allocations: f64,
    pub reclaims: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MinuteActivity {
    /// The minute's start.
    pub minute: Timestamp,
    pub purchases: u64,
    pub allocations: u64,
    pub reclaims: u64,
}

impl MinuteActivity {
    fn transitions(&self) -> u64 {
        self.purchases + self.allocations + self.reclaims
    }
}

#[derive(Debug, Serialize)]
pub struct Reach {
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: TenantKind,
    /// The strongest role in effect here (held here or in the district).
    pub role: Option<RoleKind>,
    pub actions: Vec<Action>,
}

pub struct Engine {
    access: Access,
    store: Arc<Store>,
    directory: Directory,
    router: Arc<SeatRouter>,
    spawner: Spawner,
    metrics: Arc<Metrics>,
    /// Held by a retention run and by a chain walk (each on a blocking
    /// thread): a walk never sees a purge half done, and `stop` waits for a
    /// purge in progress before the store closes.
    retention: Arc<std::sync::Mutex<()>>,
    /// The per-minute stats from before this process started, once the
    /// history pass (`check_history`) has counted them.
    past_stats: tokio::sync::watch::Sender<PastStats>,
    /// Set by `stop`: a history pass still running gives up.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// Dropped with `check_history`'s future: if the pass has not published by
/// then (the service is stopping), stats stop waiting and the pass gives up.
struct PassGuard<'a>(&'a Engine);

impl Drop for PassGuard<'_> {
    fn drop(&mut self) {
        let unfinished = self.0.past_stats.send_if_modified(|state| {
            let counting = matches!(state, PastStats::Counting);
            if counting {
                *state = PastStats::Failed;
            }
            counting
        });
        if unfinished {
            self.0.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Where the history pass is: stats wait for it, and answer 503 if it failed
/// (the service is stopping then).
#[derive(Debug, Clone)]
enum PastStats {
    Counting,
    Counted(Arc<HashMap<TenantId, MinuteStats>>),
    Failed,
}

/// Starts tenant actors (spread over the arbiters) and enters their tenants
/// in the directory: the one place a tenant comes alive, on start or create.
struct Spawner {
    arbiters: Arbiters,
    store: Arc<Store>,
    router: Arc<SeatRouter>,
    /// How many messages may wait for one tenant actor (`Settings::mailbox_bound`).
    mailbox_bound: usize,
    metrics: Arc<Metrics>,
}

impl Spawner {
    fn register(&self, directory: &Directory, tenant: Tenant, pool: SeatPool, seq: Seq, restored: Restored) {
        let counts = Arc::new(PublishedCounts::new(pool.counts()));
        let actor = TenantActor::new(
            tenant.id,
            pool,
            Arc::clone(&self.store),
            Arc::clone(&self.router),
            Arc::clone(&counts),
            Arc::clone(&self.metrics),
            restored,
        );
        let actor = Mailbox::new(self.arbiters.spawn(actor), self.mailbox_bound);
        let (id, parent) = (tenant.id, tenant.parent_id);
        let entry = TenantEntry {
            tenant,
            seq,
            children: Vec::new(),
            actor,
            counts,
        };
        directory.tenants.insert(id, entry);
        if let Some(mut district) = parent.and_then(|p| directory.tenants.get_mut(&p)) {
            district.children.push(id);
        }
    }
}

impl Engine {
    /// Rebuilds every tenant actor, the seat router and the role index from
    /// what the store read back, and starts the actors.
    pub fn start(
        store: Arc<Store>,
        recovered: Recovered,
        enforce_roles: bool,
        started: Instant,
        mailbox_bound: usize,
    ) -> Result<(Engine, RecoveryReport), crate::StartError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arbiters = Arbiters::start(cores).map_err(crate::StartError::Actors)?;
        let router = Arc::new(SeatRouter::default());
        let Recovered {
            tenants,
            roles,
            blocks,
            seats,
            heads,
            thresholds,
        } = recovered;
        let thresholds: HashMap<TenantId, Percent> = thresholds
            .into_iter()
            .filter_map(|t| Some((t.tenant_id, t.percent?)))
            .collect();

        let mut pools: HashMap<TenantId, SeatPool> = tenants.iter().map(|t| (t.id, SeatPool::new(t.id))).collect();
        let mut seat_total = 0;
        for block in blocks {
            seat_total += block.count;
            router.insert(block.first_seat, block.count, block.tenant_id);
            if let Some(pool) = pools.get_mut(&block.tenant_id) {
                // Purchases are refused past it, so only a store this build
                // did not write could hold more; the learner index could not
                // tell its seats apart.
                if pool.room_for(block.count).is_err() {
                    return Err(crate::StartError::TooManySeats(block.tenant_id));
                }
                pool.add_block(block);
            }
        }
        // Room in each learner index for every seat restored (nearly all
        // hold a learner): no rehash while a million seats go in.
        let mut held: HashMap<TenantId, usize> = HashMap::new();
        for (_, record) in &seats {
            *held.entry(record.tenant_id).or_default() += 1;
        }
        for (tenant, n) in held {
            if let Some(pool) = pools.get_mut(&tenant) {
                pool.reserve_learners(n);
            }
        }
        for (seat, record) in seats {
            if let Some(pool) = pools.get_mut(&record.tenant_id) {
                pool.restore(seat, record);
            }
        }

        let metrics = Arc::new(Metrics::new().map_err(|e| crate::StartError::Actors(std::io::Error::other(e)))?);
        {
            let m = Arc::clone(&metrics);
            store.on_flush(Box::new(move |batch, took| m.flushed(batch, took)));
        }
        let totals = pools.values().fold(pool::Counts::default(), |t, p| {
            let c = p.counts();
            pool::Counts {
                free: t.free + c.free,
                reserved: t.reserved + c.reserved,
                assigned: t.assigned + c.assigned,
            }
        });
        metrics.recovered(totals.free, totals.reserved, totals.assigned);
        let spawner = Spawner {
            arbiters,
            store: Arc::clone(&store),
            router: Arc::clone(&router),
            mailbox_bound,
            metrics: Arc::clone(&metrics),
        };
        let directory = Directory::default();
        let tenant_count = tenants.len();
        for tenant in tenants {
            let pool = pools.remove(&tenant.id).unwrap_or_else(|| SeatPool::new(tenant.id));
            let restored = Restored {
                head: heads.get(&tenant.id).copied(),
                // What happens from now on; what happened before comes from
                // the history pass (`check_history`).
                stats: MinuteStats::default(),
                threshold: thresholds.get(&tenant.id).copied(),
            };
            spawner.register(&directory, tenant, pool, 0, restored);
        }
        let role_count = roles.len();
        {
            let mut index = directory.roles_write();
            for role in roles {
                index.insert(role, 0);
            }
        }
        let report = RecoveryReport {
            tenants: tenant_count,
            seats: seat_total,
            roles: role_count,
            millis: started.elapsed().as_millis(),
        };
        Ok((
            Engine {
                access: Access { enforce: enforce_roles },
                store,
                directory,
                router,
                spawner,
                metrics,
                retention: Arc::default(),
                past_stats: tokio::sync::watch::Sender::new(PastStats::Counting),
                stopping: Arc::default(),
            },
            report,
        ))
    }

    /// Stops every actor. In-flight requests must have finished first.
    pub fn stop(&self) {
        // First, so that a history pass holding the retention lock lets go.
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(self.retention.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.spawner.arbiters.stop();
        self.store.close();
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The history pass (`Store::check_history`), on a blocking thread: every
    /// audit and trail record decoded, and the per-minute stats of the last
    /// day rebuilt from them. Called once the service answers; stats wait
    /// for it. An error means a corrupt record: the caller stops the service.
    pub async fn check_history(&self) -> Result<(), crate::store::OpenError> {
        // If this future is dropped first (the service is stopping), stats
        // waiting for it answer 503 at once and the pass gives up.
        let _unfinished = PassGuard(self);
        let started = Instant::now();
        let store = Arc::clone(&self.store);
        let lock = Arc::clone(&self.retention);
        let stop = Arc::clone(&self.stopping);
        let since = Timestamp::from_micros(Timestamp::now().micros() - crate::store::RECENT.as_micros() as i64);
        let counted = tokio::task::spawn_blocking(move || {
            // A purge would move entries out from under the count.
            let _purging = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let counted = store.check_history(since, &stop);
            if matches!(counted, Ok(Some(_))) {
                // The pass's page-ins and its threads' arenas; on this
                // thread, not a request's.
                crate::release_startup_memory();
            }
            counted
        })
        .await;
        match counted {
            Ok(Ok(Some(changes))) => {
                let stats = changes
                    .into_iter()
                    .map(|(tenant, changes)| {
                        let mut stats = MinuteStats::default();
                        for (at, kind, n) in changes {
                            stats.record(kind, at, n);
                        }
                        (tenant, stats)
                    })
                    .collect();
                self.past_stats.send_replace(PastStats::Counted(Arc::new(stats)));
                tracing::info!(
                    millis = started.elapsed().as_millis() as u64,
                    "checked every audit and trail record; per-minute stats restored"
                );
                Ok(())
            }
            // Stopped before the end: the service is stopping.
            Ok(Ok(None)) => {
                self.past_stats.send_replace(PastStats::Failed);
                Ok(())
            }
            Ok(Err(e)) => {
                self.past_stats.send_replace(PastStats::Failed);
                Err(e)
            }
            Err(join) => {
                self.past_stats.send_replace(PastStats::Failed);
                match join.try_into_panic() {
                    Ok(panic) => std::panic::resume_unwind(panic),
                    // Cancelled: only when the runtime shuts down.
                    Err(_) => Ok(()),
                }
            }
        }
    }

    /// Resolves once the history pass has ended, whichever way.
    pub async fn history_checked(&self) {
        let mut rx = self.past_stats.subscribe();
        let _ = rx.wait_for(|h| !matches!(h, PastStats::Counting)).await;
    }

    /// The per-minute stats from before this process started, once counted.
    async fn past_stats(&self) -> Result<Arc<HashMap<TenantId, MinuteStats>>, Error> {
        let mut rx = self.past_stats.subscribe();
        let state = rx
            .wait_for(|h| !matches!(h, PastStats::Counting))
            .await
            .map(|h| h.clone())
            .unwrap_or(PastStats::Failed);
        match state {
            PastStats::Counted(stats) => Ok(stats),
            PastStats::Counting | PastStats::Failed => Err(Error::StoreUnavailable(anyhow::anyhow!(
                "the audit history could not be read; the service is stopping"
            ))),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus exposition: counters kept as things happen, plus the
    /// store's size and the mailboxes' depth read now (O(tenants)).
    pub fn metrics_text(&self) -> String {
        let depth = self.directory.tenants.iter().map(|e| e.actor.depth()).sum();
        self.metrics.render(self.store.size_on_disk(), depth)
    }

    // ---- tenants -------------------------------------------------------

    pub async fn create_district(&self, caller: &Caller, name: TenantName) -> Result<Tenant, Error> {
        self.access.create_district(caller)?;
        self.create_tenant(name, TenantKind::District, None).await
    }

    pub async fn create_school(&self, caller: &Caller, district: TenantId, name: TenantName) -> Result<Tenant, Error> {
        match self.directory.tenant(district) {
            Some((parent, _)) if parent.kind == TenantKind::District => {}
            _ => return Err(Error::NotFound(Missing::District)),
        }
        self.check(caller, Action::ManageTenant, district, Missing::District)
            .await?;
        self.writable(district).await?;
        self.create_tenant(name, TenantKind::School, Some(district)).await
    }

    async fn create_tenant(
        &self,
        name: TenantName,
        kind: TenantKind,
        parent_id: Option<TenantId>,
    ) -> Result<Tenant, Error> {
        let now = Timestamp::now();
        let tenant = Tenant {
            id: self.new_id(IdSpace::Tenant)?,
            name,
            kind,
            parent_id,
            created_at: now,
            updated_at: now,
            is_active: true,
        };
        let seq = self.store.put_tenant(&tenant)?;
        self.spawner.register(
            &self.directory,
            tenant.clone(),
            SeatPool::new(tenant.id),
            seq,
            Restored::default(),
        );
        self.store.durable(seq).await?;
        Ok(tenant)
    }

    pub async fn tenant(&self, caller: &Caller, id: TenantId) -> Result<Tenant, Error> {
        self.check(caller, Action::Read, id, Missing::Tenant).await?;
        let (tenant, seq) = self.directory.tenant(id).ok_or(Error::NotFound(Missing::Tenant))?;
        self.store.durable(seq).await?;
        Ok(tenant)
    }

    /// A district and its schools.
    pub async fn district(&self, caller: &Caller, id: TenantId) -> Result<(Tenant, Vec<Tenant>), Error> {
        let (district, children, mut seq) = {
            let entry = self
                .directory
                .tenants
                .get(&id)
                .ok_or(Error::NotFound(Missing::District))?;
            if entry.tenant.kind != TenantKind::District {
                return Err(Error::NotFound(Missing::District));
            }
            (entry.tenant.clone(), entry.children.clone(), entry.seq)
        };
        self.check(caller, Action::Read, id, Missing::District).await?;
        let mut schools = Vec::with_capacity(children.len());
        for child in children {
            if let Some((school, s)) = self.directory.tenant(child) {
                seq = seq.max(s);
                schools.push(school);
            }
        }
        self.store.durable(seq).await?;
        Ok((district, schools))
    }

    /// Renames or (de)activates a tenant. Allowed on an inactive tenant: this
    /// is how it is reactivated.
    pub async fn update_tenant(&self, caller: &Caller, id: TenantId, patch: TenantPatch) -> Result<Tenant, Error> {
        self.check(caller, Action::ManageTenant, id, Missing::Tenant).await?;
        let (tenant, seq) = {
            // The entry's shard lock orders concurrent updates of one tenant:
            // memory and disk see them in the same order.
            let mut entry = self
                .directory
                .tenants
                .get_mut(&id)
                .ok_or(Error::NotFound(Missing::Tenant))?;
            let mut next = entry.tenant.clone();
            if let Some(name) = patch.name {
                next.name = name;
            }
            if let Some(active) = patch.is_active {
                next.is_active = active;
            }
            if next != entry.tenant {
                next.updated_at = Timestamp::now();
                entry.seq = self.store.put_tenant(&next)?;
                entry.tenant = next;
            }
            (entry.tenant.clone(), entry.seq)
        };
        self.store.durable(seq).await?;
        Ok(tenant)
    }

    // ---- seats ----------------------------------------------------------

    pub async fn purchase(&self, caller: &Caller, tenant: TenantId, count: SeatCount) -> Result<Vec<Seat>, Error> {
        self.check(caller, Action::Purchase, tenant, Missing::Tenant).await?;
        self.writable(tenant).await?;
        let actor = self.directory.actor(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        self.ask(
            &actor,
            actor::Purchase {
                count,
                by: caller.user.clone(),
            },
        )
        .await
    }

    pub async fn allocate(&self, caller: &Caller, seat: SeatId, learner: LearnerId) -> Result<Seat, Error> {
        let (tenant, actor) = self.seat_owner(seat)?;
        self.check(caller, Action::Allocate, tenant, Missing::Seat).await?;
        self.writable(tenant).await?;
        self.ask(
            &actor,
            actor::Allocate {
                seat,
                learner,
                by: caller.user.clone(),
            },
        )
        .await
    }

    pub async fn reclaim(&self, caller: &Caller, seat: SeatId, reason: Reason) -> Result<Seat, Error> {
        let (tenant, actor) = self.seat_owner(seat)?;
        self.check(caller, Action::Allocate, tenant, Missing::Seat).await?;
        self.writable(tenant).await?;
        self.ask(
            &actor,
            actor::Reclaim {
                seat,
                reason,
                by: caller.user.clone(),
            },
        )
        .await
    }

    /// A seat; learners (and anyone else with a role in the district) may
    /// read the seat they hold themselves.
    pub async fn seat(&self, caller: &Caller, seat: SeatId) -> Result<Seat, Error> {
        let (tenant, actor) = self.seat_owner(seat)?;
        let refusal = match self.check(caller, Action::Read, tenant, Missing::Seat).await {
            Ok(()) => return self.ask(&actor, actor::GetSeat { seat }).await,
            Err(refusal @ Error::Forbidden(_)) => refusal,
            Err(other) => return Err(other),
        };
        let found = self.ask(&actor, actor::GetSeat { seat }).await?;
        if found.learner_id.as_ref().map(LearnerId::as_str) == Some(caller.user.as_str()) {
            Ok(found)
        } else {
            Err(refusal)
        }
    }

    pub async fn summary(&self, caller: &Caller, tenant: TenantId) -> Result<SeatSummary, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        self.counted(tenant, Missing::Tenant).await
    }

    /// A district's seats: its own and its schools' together, its own alone,
    /// and each school's (one actor message per tenant; no seat is scanned).
    pub async fn district_summary(&self, caller: &Caller, district: TenantId) -> Result<DistrictSummary, Error> {
        let children = match self.directory.tenants.get(&district) {
            Some(entry) if entry.tenant.kind == TenantKind::District => entry.children.clone(),
            _ => return Err(Error::NotFound(Missing::District)),
        };
        self.check(caller, Action::Read, district, Missing::District).await?;
        let own = self.counted(district, Missing::District).await?;
        let mut schools = Vec::with_capacity(children.len());
        for school in children {
            schools.push(self.counted(school, Missing::Tenant).await?);
        }
        let (mut free, mut reserved, mut assigned) = (own.free_seats, own.reserved_seats, own.assigned_seats);
        for s in &schools {
            free += s.free_seats;
            reserved += s.reserved_seats;
            assigned += s.assigned_seats;
        }
        let total = free + reserved + assigned;
        Ok(DistrictSummary {
            totals: SeatSummary {
                tenant_id: district,
                tenant_name: own.tenant_name.clone(),
                total_seats: total,
                free_seats: free,
                reserved_seats: reserved,
                assigned_seats: assigned,
                utilization_percentage: SeatSummary::utilization(total, reserved, assigned),
            },
            own,
            schools,
        })
    }

    /// Transitions per minute over the last `minutes` (1 to 1,440) minutes,
    /// in a tenant (a district's include its schools').
    pub async fn seat_stats(&self, caller: &Caller, tenant: TenantId, minutes: i64) -> Result<SeatStats, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let mut scope = vec![tenant];
        if let Some(entry) = self.directory.tenants.get(&tenant) {
            scope.extend(entry.children.iter().copied());
        }
        let past = self.past_stats().await?;
        let now = Timestamp::now();
        let to = stats::minute_of(now);
        let from = to - minutes + 1;
        let mut merged: std::collections::BTreeMap<i64, stats::MinuteCounts> = Default::default();
        for t in scope {
            let Some(actor) = self.directory.actor(t) else { continue };
            let before = past.get(&t).map(|h| h.between(from, to)).unwrap_or_default();
            for (minute, counts) in self
                .ask(&actor, actor::Stats { from, to })
                .await?
                .into_iter()
                .chain(before)
            {
                let sum = merged.entry(minute).or_default();
                for (s, c) in sum.iter_mut().zip(counts) {
                    *s += c;
                }
            }
        }
        let minute_view = |(minute, c): (i64, stats::MinuteCounts)| MinuteActivity {
            minute: Timestamp::from_micros(minute.saturating_mul(60_000_000)),
            purchases: c[Transition::Purchase as usize],
            allocations: c[Transition::Allocate as usize],
            reclaims: c[Transition::Reclaim as usize],
        };
        let active: Vec<MinuteActivity> = merged.into_iter().map(minute_view).collect();
        let total = |f: fn(&MinuteActivity) -> u64| active.iter().map(f).sum::<u64>();
        let (purchases, allocations, reclaims) =
            (total(|m| m.purchases), total(|m| m.allocations), total(|m| m.reclaims));
        let rate = |n: u64| (n as f64 / minutes as f64 * 100.0).round() / 100.0;
        // The busiest minute by transitions; the earliest wins a tie.
        let peak_minute = active
            .iter()
            .fold(None::<&MinuteActivity>, |best, m| match best {
                Some(b) if b.transitions() >= m.transitions() => Some(b),
                _ => Some(m),
            })
            .cloned();
        Ok(SeatStats {
            tenant_id: tenant,
            window_minutes: minutes,
            from: Timestamp::from_micros(from.saturating_mul(60_000_000)),
            until: now,
            purchases,
            allocations,
            reclaims,
            per_minute: Rates {
                purchases: rate(purchases),
                allocations: rate(allocations),
                reclaims: rate(reclaims),
            },
            peak_minute,
            minutes: active,
        })
    }

    /// Sets (or, with `None`, clears) a tenant's utilization alert threshold.
    /// Setting it raises no alert by itself: alerts come from changes.
    pub async fn set_threshold(
        &self,
        caller: &Caller,
        tenant: TenantId,
        percent: Option<Percent>,
    ) -> Result<Threshold, Error> {
        self.check(caller, Action::ManageTenant, tenant, Missing::Tenant)
            .await?;
        let actor = self.directory.actor(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        let threshold = Threshold {
            tenant_id: tenant,
            percent,
            updated_by: caller.user.clone(),
            updated_at: Timestamp::now(),
        };
        self.ask(&actor, actor::SetThreshold { threshold }).await
    }

    /// A tenant's threshold and its alerts, with its schools' for a district
    /// (ordered by the audit id of the change that raised them).
    pub async fn alerts(&self, caller: &Caller, tenant: TenantId) -> Result<Alerts, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let actor = self.directory.actor(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        let threshold_percent = self.ask(&actor, actor::GetThreshold {}).await?;
        let mut scope = vec![tenant];
        if let Some(entry) = self.directory.tenants.get(&tenant) {
            scope.extend(entry.children.iter().copied());
        }
        let mut alerts = Vec::new();
        for t in scope {
            alerts.extend(self.store.alerts(t)?);
        }
        alerts.sort_by_key(|a| a.audit_id);
        self.store.durable(self.store.latest()).await?;
        Ok(Alerts {
            tenant_id: tenant,
            threshold_percent,
            alerts,
        })
    }

    /// A tenant's seat counts at the end of each of the last `days` days
    /// (today: now), summed over its schools for a district.
    pub async fn history(&self, caller: &Caller, tenant: TenantId, days: i64) -> Result<History, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let mut scope = vec![tenant];
        if let Some(entry) = self.directory.tenants.get(&tenant) {
            scope.extend(entry.children.iter().copied());
        }
        let today = stats::day_of(Timestamp::now());
        let from = today - days + 1;
        let mut sums = vec![pool::Counts::default(); days as usize];
        for t in scope {
            let Some(actor) = self.directory.actor(t) else { continue };
            let (day, current) = self.ask(&actor, actor::Today {}).await?;
            let snapshots: Vec<(i64, pool::Counts)> = self
                .store
                .days(t, from, today)?
                .into_iter()
                .map(|(d, s)| {
                    let counts = pool::Counts {
                        free: s.free,
                        reserved: s.reserved,
                        assigned: s.assigned,
                    };
                    (d, counts)
                })
                .collect();
            for (sum, (_, c)) in sums
                .iter_mut()
                .zip(stats::day_series(from, today, &snapshots, day, current))
            {
                sum.free += c.free;
                sum.reserved += c.reserved;
                sum.assigned += c.assigned;
            }
        }
        self.store.durable(self.store.latest()).await?;
        let days = (from..=today)
            .zip(sums)
            .map(|(day, c)| DayUtilization {
                date: chrono::DateTime::from_timestamp(day.saturating_mul(86_400), 0)
                    .map(|d| d.date_naive().to_string())
                    .unwrap_or_default(),
                total_seats: c.total(),
                free_seats: c.free,
                reserved_seats: c.reserved,
                assigned_seats: c.assigned,
                utilization_percentage: c.utilization(),
            })
            .collect();
        Ok(History {
            tenant_id: tenant,
            days,
        })
    }

    /// A tenant's counters as a summary, once they (and its name) are
    /// durable: as the actor last published them, read without a mailbox
    /// round trip; the wait covers the write they reflect (O(1), exact).
    async fn counted(&self, tenant: TenantId, missing: Missing) -> Result<SeatSummary, Error> {
        let (meta, counts, seq) = {
            let entry = self.directory.tenants.get(&tenant).ok_or(Error::NotFound(missing))?;
            let (counts, written) = entry.counts.get();
            (entry.tenant.clone(), counts, written.max(entry.seq))
        };
        self.store.durable(seq).await?;
        Ok(SeatSummary {
            tenant_id: tenant,
            tenant_name: meta.name.as_str().to_owned(),
            total_seats: counts.total(),
            free_seats: counts.free,
            reserved_seats: counts.reserved,
            assigned_seats: counts.assigned,
            utilization_percentage: SeatSummary::utilization(counts.total(), counts.reserved, counts.assigned),
        })
    }

    /// A seat's audit entries, oldest first.
    pub async fn seat_audit(&self, caller: &Caller, seat: SeatId) -> Result<Vec<Audit>, Error> {
        let (tenant, actor) = self.seat_owner(seat)?;
        self.check(caller, Action::ReadAudit, tenant, Missing::Seat).await?;
        let block = self.ask(&actor, actor::GetBlock { seat }).await?;
        let entries = self.store.seat_audit(seat, &block)?;
        // The scan read sled directly and may have seen writes still in
        // flight; wait for everything written so far.
        self.store.durable(self.store.latest()).await?;
        Ok(entries)
    }

    /// A page of the audit trail: one seat's, or a tenant's (a district's
    /// includes its schools'), filtered and in time order.
    pub async fn audit(&self, caller: &Caller, query: AuditQuery) -> Result<AuditPage, Error> {
        let store = Arc::clone(&self.store);
        let read = match (query.seat, query.tenant) {
            (Some(seat), scope) => {
                let (owner, actor) = self.seat_owner(seat)?;
                self.check(caller, Action::ReadAudit, owner, Missing::Seat).await?;
                if let Some(scope) = scope {
                    self.check(caller, Action::ReadAudit, scope, Missing::Tenant).await?;
                    if scope != owner && self.directory.district_of(owner) != Some(scope) {
                        return Ok(AuditPage {
                            items: Vec::new(),
                            next_cursor: None,
                        });
                    }
                }
                let block = self.ask(&actor, actor::GetBlock { seat }).await?;
                tokio::task::spawn_blocking(move || store.seat_audit_page(seat, &block, &query)).await
            }
            (None, Some(tenant)) => {
                self.check(caller, Action::ReadAudit, tenant, Missing::Tenant).await?;
                let mut scope = vec![tenant];
                if let Some(entry) = self.directory.tenants.get(&tenant) {
                    scope.extend(entry.children.iter().copied());
                }
                // A page steps over up to `SCAN_BUDGET` entries on disk: off
                // the async workers.
                tokio::task::spawn_blocking(move || store.audit_page(&scope, &query)).await
            }
            (None, None) => return Err(Error::Invalid("query parameter tenantId or seatId is required".into())),
        };
        let page = read.map_err(|e| Error::Internal(anyhow::anyhow!("audit read task: {e}")))??;
        // The scan read sled directly and may have seen writes still in
        // flight; wait for everything written so far.
        self.store.durable(self.store.latest()).await?;
        Ok(page)
    }

    /// Walks a tenant's audit hash chain (O(its trail), off the async
    /// workers) and names the first entry that does not match.
    pub async fn verify_audit(&self, caller: &Caller, tenant: TenantId) -> Result<ChainReport, Error> {
        self.check(caller, Action::ReadAudit, tenant, Missing::Tenant).await?;
        let actor = self.directory.actor(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        // Read before the walk: every entry it covers is already in sled, so
        // it must be one of the links walked (see `store::verify`).
        let head = self.ask(&actor, actor::Head {}).await?;
        let store = Arc::clone(&self.store);
        let lock = Arc::clone(&self.retention);
        let report = tokio::task::spawn_blocking(move || {
            let _walking = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            store.verify_chain(tenant, Some(head))
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("audit verify task: {e}")))??;
        self.store.durable(self.store.latest()).await?;
        Ok(report)
    }

    /// Exports, then purges, the audit entries older than `keep_days` days
    /// (see `store::retain`), and waits until the purge is durable.
    pub async fn retain(&self, keep_days: u64, export_dir: std::path::PathBuf) -> Result<RetainReport, Error> {
        let keep = i64::try_from(keep_days)
            .unwrap_or(i64::MAX)
            .saturating_mul(86_400_000_000);
        let horizon = Timestamp::from_micros(Timestamp::now().micros().saturating_sub(keep));
        // A barrier: a change whose time was taken before the horizon but
        // not yet written could land behind the export pass and be purged
        // unexported. Each actor handles one message at a time, so once
        // every actor has answered one, every such change is written.
        let actors: Vec<Mailbox> = self.directory.tenants.iter().map(|e| e.actor.clone()).collect();
        for actor in actors {
            self.ask(&actor, actor::GetThreshold {}).await?;
        }
        let store = Arc::clone(&self.store);
        let lock = Arc::clone(&self.retention);
        let (report, seq) = tokio::task::spawn_blocking(move || {
            let _purging = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            store.retain(horizon, &export_dir)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("audit retention task: {e}")))??;
        self.store.durable(seq).await?;
        Ok(report)
    }

    // ---- roles ----------------------------------------------------------

    pub async fn assign_role(
        &self,
        caller: &Caller,
        user: UserId,
        tenant: TenantId,
        kind: RoleKind,
    ) -> Result<Role, Error> {
        self.check(caller, Action::ManageRoles, tenant, Missing::Tenant).await?;
        self.writable(tenant).await?;
        // The write lock makes check-then-insert atomic (rule 6); it is held
        // for one small sled write, never across the flush.
        let granted = {
            let mut roles = self.directory.roles_write();
            let existing = roles
                .active
                .get(&(user.clone(), tenant))
                .and_then(|id| roles.by_id.get(id));
            match existing {
                Some((_, seq)) => Err(*seq),
                None => {
                    let now = Timestamp::now();
                    let role = Role {
                        id: self.new_id(IdSpace::Role)?,
                        user_id: user,
                        tenant_id: tenant,
                        role: kind,
                        created_at: now,
                        is_active: true,
                        granted_by: Some(caller.user.clone()),
                        deactivated_at: None,
                        deactivated_by: None,
                    };
                    let seq = self
                        .store
                        .put_role(&role, &self.role_event(&role, RoleChange::Granted, caller, now)?)?;
                    roles.insert(role.clone(), seq);
                    Ok((role, seq))
                }
            }
        };
        match granted {
            Ok((role, seq)) => {
                self.store.durable(seq).await?;
                Ok(role)
            }
            // A refusal that depends on a grant still in flight waits for it too.
            Err(seq) => {
                self.store.durable(seq).await?;
                Err(Error::RoleExists)
            }
        }
    }

    /// Sets a role inactive, keeping it (and the user may be granted a role
    /// in the tenant again).
    pub async fn deactivate_role(&self, caller: &Caller, id: RoleId) -> Result<Role, Error> {
        let tenant = {
            let roles = self.directory.roles_read();
            roles
                .by_id
                .get(&id)
                .map(|(role, _)| role.tenant_id)
                .ok_or(Error::NotFound(Missing::Role))?
        };
        self.check(caller, Action::ManageRoles, tenant, Missing::Role).await?;
        self.writable(tenant).await?;
        let (role, seq) = {
            let mut roles = self.directory.roles_write();
            let (current, seq) = roles.by_id.get(&id).cloned().ok_or(Error::NotFound(Missing::Role))?;
            if !current.is_active {
                (Err(Error::RoleInactive), seq)
            } else {
                let now = Timestamp::now();
                let role = Role {
                    is_active: false,
                    deactivated_at: Some(now),
                    deactivated_by: Some(caller.user.clone()),
                    ..current
                };
                let seq = self
                    .store
                    .put_role(&role, &self.role_event(&role, RoleChange::Deactivated, caller, now)?)?;
                roles.update(role.clone(), seq);
                (Ok(role), seq)
            }
        };
        self.store.durable(seq).await?;
        role
    }

    fn role_event(&self, role: &Role, change: RoleChange, caller: &Caller, at: Timestamp) -> Result<RoleEvent, Error> {
        Ok(RoleEvent {
            id: self.new_id(IdSpace::RoleEvent)?,
            role_id: role.id,
            user_id: role.user_id.clone(),
            tenant_id: role.tenant_id,
            role: role.role,
            change,
            changed_by: caller.user.clone(),
            created_at: at,
        })
    }

    /// Every role in a tenant, active or not.
    pub async fn tenant_roles(&self, caller: &Caller, tenant: TenantId) -> Result<Vec<Role>, Error> {
        // The old service listed an unknown tenant as empty; keep that where
        // no one is being kept out.
        let open = !self.access.enforce || caller.platform_admin;
        if !open || self.directory.tenants.contains_key(&tenant) {
            self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        }
        let (roles, seq) = {
            let index = self.directory.roles_read();
            Self::listed(&index, index.by_tenant.get(&tenant), |_| true)
        };
        self.store.durable(seq).await?;
        Ok(roles)
    }

    /// A tenant's role grants and deactivations, oldest first (admins in scope).
    pub async fn role_events(&self, caller: &Caller, tenant: TenantId) -> Result<Vec<RoleEvent>, Error> {
        self.check(caller, Action::ManageRoles, tenant, Missing::Tenant).await?;
        let events = self.store.role_events(tenant)?;
        self.store.durable(self.store.latest()).await?;
        Ok(events)
    }

    /// A user's active roles: all of them for the user themself, otherwise
    /// only those in tenants the caller administers.
    pub async fn user_roles(&self, caller: &Caller, user: &UserId) -> Result<Vec<Role>, Error> {
        let everything = !self.access.enforce || caller.platform_admin || caller.user == *user;
        let (roles, seq) = {
            let index = self.directory.roles_read();
            Self::listed(&index, index.by_user.get(user), |r| r.is_active)
        };
        let roles = if everything {
            roles
        } else {
            roles
                .into_iter()
                .filter(|r| {
                    self.access
                        .allows(&self.directory, caller, Action::ManageRoles, r.tenant_id)
                })
                .collect()
        };
        self.store.durable(seq).await?;
        Ok(roles)
    }

    /// The caller, their active roles, and what they may do in each tenant in reach.
    pub async fn me(&self, caller: &Caller) -> Result<Me, Error> {
        let roles = self.user_roles(caller, &caller.user).await?;
        let mut reach: Vec<TenantId> = Vec::new();
        for role in &roles {
            reach.push(role.tenant_id);
            if let Some(entry) = self.directory.tenants.get(&role.tenant_id) {
                reach.extend(entry.children.iter().copied());
            }
        }
        reach.sort_unstable();
        reach.dedup();
        let tenants = reach
            .into_iter()
            .filter_map(|id| {
                let (tenant, _) = self.directory.tenant(id)?;
                let district = self.directory.district_of(id)?;
                Some(Reach {
                    tenant_id: id,
                    name: tenant.name.as_str().to_owned(),
                    kind: tenant.kind,
                    role: access::effective_role(&self.directory, &caller.user, id, district),
                    actions: self.access.actions(&self.directory, caller, id),
                })
            })
            .collect();
        Ok(Me {
            user_id: caller.user.clone(),
            platform_admin: caller.platform_admin,
            enforce_roles: self.access.enforce,
            roles,
            tenants,
        })
    }

    fn listed(index: &Roles, ids: Option<&Vec<RoleId>>, keep: impl Fn(&Role) -> bool) -> (Vec<Role>, Seq) {
        index.collect(ids.into_iter().flatten(), keep)
    }

    // ---- plumbing -------------------------------------------------------

    fn new_id<I: Id>(&self, space: IdSpace) -> Result<I, Error> {
        let raw = self.store.ids(space, 1)?;
        I::new(raw).ok_or_else(|| Error::Internal(anyhow::anyhow!("store handed out id 0")))
    }

    /// Authorizes, once the facts the decision rests on are durable.
    async fn check(&self, caller: &Caller, action: Action, tenant: TenantId, hidden: Missing) -> Result<(), Error> {
        let (verdict, seq) = self.access.check(&self.directory, caller, action, tenant, hidden);
        self.store.durable(seq).await?;
        verdict
    }

    /// Refuses writes to inactive tenants (once that state is durable).
    async fn writable(&self, tenant: TenantId) -> Result<(), Error> {
        let scope = self.directory.scope(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        self.store.durable(scope.seq).await?;
        if scope.writable {
            Ok(())
        } else {
            Err(Error::TenantInactive)
        }
    }

    /// The tenant that owns a seat, and its actor.
    fn seat_owner(&self, seat: SeatId) -> Result<(TenantId, Mailbox), Error> {
        self.router
            .tenant_of(seat)
            .and_then(|tenant| Some((tenant, self.directory.actor(tenant)?)))
            .ok_or(Error::NotFound(Missing::Seat))
    }

    /// Sends a message to a tenant actor and waits until its reply is durable.
    async fn ask<M, T>(&self, actor: &Mailbox, msg: M) -> Result<T, Error>
    where
        M: actix::Message<Result = Pending<T>> + Send + 'static,
        T: Send + 'static,
        TenantActor: actix::Handler<mailbox::Slotted<M>, Result = Pending<T>>,
    {
        let reply = actor.ask(msg).await?;
        self.store.durable(reply.seq).await?;
        reply.value
    }
}
