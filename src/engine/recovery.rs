//! Start-up (every actor rebuilt from what the store read back) and the
//! history pass that runs once the service answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::domain::{BlockRecord, Counts, Id, Percent, SeatId, TenantId, Timestamp};
use crate::metrics::Metrics;
use crate::store::{OpenError, Recovered, Store};

use super::access::Access;
use super::actor::Restored;
use super::arbiters::Arbiters;
use super::directory::Directory;
use super::error::{Error, StartError};
use super::pool::{Run, SeatPool, MAX_SEATS};
use super::router::SeatRouter;
use super::stats::MinuteStats;
use super::{Engine, Spawner};

/// What recovery found, for the start-up log.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryReport {
    pub tenants: usize,
    pub seats: u64,
    pub roles: usize,
    pub millis: u128,
}

/// Where the history pass is: stats wait for it, and answer 503 if it failed
/// (the service is stopping then).
#[derive(Debug, Clone)]
pub(super) enum PastStats {
    Counting,
    Counted(Arc<HashMap<TenantId, MinuteStats>>),
    Failed,
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

/// How the engine runs, from the settings.
pub struct Options {
    pub enforce_roles: bool,
    /// How many messages may wait for one tenant actor.
    pub mailbox_bound: usize,
    /// How long an `Idempotency-Key`'s answer is kept.
    pub answers_kept: std::time::Duration,
}

impl Engine {
    /// Rebuilds every tenant actor, the seat router and the role index from
    /// what the store read back, and starts the actors.
    pub fn start(
        store: Arc<Store>,
        recovered: Recovered,
        options: Options,
        metrics: Arc<Metrics>,
        started: Instant,
    ) -> Result<(Engine, RecoveryReport), StartError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arbiters = Arbiters::start(cores).map_err(StartError::Actors)?;
        let router = Arc::new(SeatRouter::default());
        let Recovered {
            tenants,
            roles,
            blocks,
            terms,
            seats,
            arriving,
            heads,
            thresholds,
        } = recovered;
        let thresholds: HashMap<TenantId, Percent> = thresholds
            .into_iter()
            .filter_map(|t| Some((t.tenant_id, t.percent?)))
            .collect();

        // Who holds each seat: its buyer, unless its record names another
        // owner (a transfer moved it).
        let mut seat_total = 0;
        for block in &blocks {
            seat_total += block.count;
            router.insert(block.first_seat, block.count, block.tenant_id);
        }
        let moved: BTreeMap<SeatId, TenantId> = seats
            .iter()
            .filter(|(seat, record)| router.tenant_of(*seat).is_some_and(|buyer| buyer != record.tenant_id))
            .map(|(seat, record)| (*seat, record.tenant_id))
            .collect();
        let mut runs: HashMap<TenantId, Vec<Run>> = HashMap::new();
        for block in blocks {
            let term = terms.get(&block.first_seat).copied();
            for (owner, run) in runs_of(block, term, &moved) {
                runs.entry(owner).or_default().push(run);
            }
        }
        for (seat, owner) in &moved {
            router.set(*seat, *owner);
        }
        let mut pools: HashMap<TenantId, SeatPool> = HashMap::with_capacity(tenants.len());
        for t in &tenants {
            let mut theirs = runs.remove(&t.id).unwrap_or_default();
            theirs.sort_unstable_by_key(|r| r.first);
            // Purchases are refused past it, so only a store this build
            // did not write could hold more; the learner index could not
            // tell its seats apart.
            if theirs.iter().map(|r| r.count).sum::<u64>() > MAX_SEATS {
                return Err(StartError::TooManySeats(t.id));
            }
            pools.insert(t.id, SeatPool::from_runs(t.id, theirs));
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
        // Seats renewed past their purchase's term, by tenant and term.
        let mut renewed: HashMap<(TenantId, Timestamp), Vec<SeatId>> = HashMap::new();
        for (seat, record) in seats {
            if let Some(pool) = pools.get_mut(&record.tenant_id) {
                if let Some(term) = record.expires_at.filter(|t| pool.term_of(seat) != Some(*t)) {
                    renewed.entry((record.tenant_id, term)).or_default().push(seat);
                }
                pool.restore(seat, record);
            }
        }
        for ((tenant, term), mut seats) in renewed {
            if let Some(pool) = pools.get_mut(&tenant) {
                seats.sort_unstable();
                pool.renew(&seats, term);
            }
        }
        let mut arriving_at: HashMap<TenantId, Vec<(SeatId, TenantId, crate::domain::UserId)>> = HashMap::new();
        for a in arriving {
            arriving_at.entry(a.to).or_default().push((a.seat, a.from, a.by));
        }

        {
            let m = Arc::clone(&metrics);
            store.on_flush(Box::new(move |batch, took| m.flushed(batch, took)));
        }
        metrics.recovered(pools.values().map(SeatPool::counts).sum::<Counts>());
        let spawner = Spawner {
            arbiters,
            store: Arc::clone(&store),
            router: Arc::clone(&router),
            mailbox_bound: options.mailbox_bound,
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
            let arriving = arriving_at.remove(&tenant.id).unwrap_or_default();
            spawner.register(&directory, tenant, pool, 0, restored, arriving);
        }
        let role_count = roles.len();
        directory.restore_roles(roles);
        let report = RecoveryReport {
            tenants: tenant_count,
            seats: seat_total,
            roles: role_count,
            millis: started.elapsed().as_millis(),
        };
        Ok((
            Engine {
                access: Access {
                    enforce: options.enforce_roles,
                },
                store,
                directory,
                router,
                spawner,
                metrics,
                retention: Arc::default(),
                past_stats: tokio::sync::watch::Sender::new(PastStats::Counting),
                stopping: Arc::default(),
                answers_kept: options.answers_kept,
                keys_in_flight: Arc::default(),
                imports: dashmap::DashMap::new(),
            },
            report,
        ))
    }

    /// The history pass (`Store::check_history`), on a blocking thread: every
    /// audit and trail record decoded, and the per-minute stats of the last
    /// day rebuilt from them. Called once the service answers; stats wait
    /// for it. An error means a corrupt record: the caller stops the service.
    pub async fn check_history(&self) -> Result<(), OpenError> {
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
                crate::alloc::release_startup_memory();
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
    pub(super) async fn past_stats(&self) -> Result<Arc<HashMap<TenantId, MinuteStats>>, Error> {
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
}

/// A block's seats as runs by owner: the buyer's, split around the seats
/// `moved` names another owner for (consecutive seats of one owner make
/// one run).
fn runs_of(block: BlockRecord, term: Option<Timestamp>, moved: &BTreeMap<SeatId, TenantId>) -> Vec<(TenantId, Run)> {
    let (first, end) = (block.first_seat.get(), block.first_seat.get() + block.count);
    let buyer = block.tenant_id;
    let mut out: Vec<(TenantId, Run)> = Vec::new();
    let mut push = |owner: TenantId, from: u64, to: u64| {
        if from >= to {
            return;
        }
        if let Some((o, run)) = out.last_mut() {
            if *o == owner && run.first.get() + run.count == from {
                run.count += to - from;
                return;
            }
        }
        if let Some(first) = SeatId::new(from) {
            out.push((
                owner,
                Run {
                    block: block.clone(),
                    first,
                    count: to - from,
                    expires_at: term,
                },
            ));
        }
    };
    let mut at = first;
    let lo = SeatId::new(first).unwrap_or(SeatId::MAX);
    for (seat, owner) in moved.range(lo..) {
        let s = seat.get();
        if s >= end {
            break;
        }
        push(buyer, at, s);
        push(*owner, s, s + 1);
        at = s + 1;
    }
    push(buyer, at, end);
    out
}
