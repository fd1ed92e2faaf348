//! The engine: the API the HTTP layer calls, in domain types only, split by
//! feature (`tenants`, `seats`, `roles`, `audit`, `analytics`, `listings`),
//! each with the views it answers with, plus `recovery` (start-up and the
//! history pass).
//!
//! Seat operations go to the owning tenant's actor (`actor`, around the
//! pure `pool`); tenant metadata and roles are served from the `Directory`.
//! Every operation answers with a `Durable`: its outcome can only be read
//! once what it reveals is on disk.

mod access;
mod actor;
mod analytics;
mod answers;
mod arbiters;
mod audit;
mod bulk;
mod directory;
mod durable;
mod error;
mod learners;
mod listings;
mod mailbox;
pub mod pool;
mod published;
mod recovery;
mod replica;
mod roles;
mod roster;
mod router;
mod seats;
mod stats;
mod tenants;
mod terms;
mod transfers;

use std::sync::Arc;

use crate::domain::{Caller, Id, SeatId, Tenant, TenantId};
use crate::metrics::Metrics;
use crate::store::{IdSpace, Seq, Store};

use access::Access;
pub use access::Action;
use actor::{Restored, Slotted, TenantActor};
pub use analytics::{Alerts, DayUtilization, History, MinuteActivity, Rates, SeatStats};
pub use answers::{Kept, KeyGuard, KeyStamp, Keyed};
use arbiters::Arbiters;
pub use bulk::{BulkReport, BulkRow, Input, RowResult, Targets, MAX_ROWS};
use directory::{Directory, TenantEntry};
pub use durable::Durable;
pub use error::{Error, Missing, StartError};
pub use listings::{Listing, Page, Paging};
use mailbox::Mailbox;
pub use pool::{SeatFilter, SeatPool, MAX_SEATS};
use published::PublishedCounts;
use recovery::PastStats;
pub use recovery::{Options, RecoveryReport};
pub use roles::{Me, Reach};
pub use roster::{import_id, RosterReport};
use router::SeatRouter;
pub use seats::DistrictSummary;
pub use terms::RenewTargets;
pub use transfers::{TransferReport, TransferSeats};

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
    /// How long an `Idempotency-Key`'s answer is kept (`answers`).
    answers_kept: std::time::Duration,
    /// Keys whose first request is being answered (`answers::KeyGuard`).
    keys_in_flight: Arc<dashmap::DashSet<crate::domain::AnswerKey>>,
    /// One roster import per district at a time (a second one waits): two
    /// at once would both plan the same schools into being.
    imports: dashmap::DashMap<TenantId, Arc<tokio::sync::Mutex<()>>>,
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
    /// `arriving`: seats a transfer was moving to this tenant when the
    /// process stopped (see `TenantActor::resume`).
    fn register(
        &self,
        directory: &Directory,
        tenant: Tenant,
        pool: SeatPool,
        seq: Seq,
        restored: Restored,
        arriving: Vec<(SeatId, TenantId, crate::domain::UserId)>,
    ) {
        let counts = Arc::new(PublishedCounts::new(pool.counts(), &pool.deadlines(), pool.terms()));
        let mut actor = TenantActor::new(
            tenant.id,
            pool,
            Arc::clone(&self.store),
            Arc::clone(&self.router),
            Arc::clone(&counts),
            Arc::clone(&self.metrics),
            restored,
        );
        actor.resume(arriving);
        let actor = Mailbox::new(self.arbiters.spawn(actor), self.mailbox_bound);
        directory.register(TenantEntry {
            tenant,
            seq,
            children: Vec::new(),
            actor,
            counts,
        });
    }
}

impl Engine {
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

    /// The store, for a task that outlives a borrow (the feed's publisher).
    pub fn shared_store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    pub fn shared_metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The district of a tenant (itself for a district), for the feed's subjects.
    pub fn district_lookup(self: &Arc<Self>) -> Arc<dyn Fn(TenantId) -> Option<TenantId> + Send + Sync> {
        let engine = Arc::downgrade(self);
        Arc::new(move |tenant| engine.upgrade()?.directory.district_of(tenant))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus exposition: counters kept as things happen, plus the
    /// store's size and the mailboxes' depth read now (O(tenants)).
    pub fn metrics_text(&self) -> String {
        let depth = self.store.outbox_depth();
        self.metrics
            .feed
            .outbox_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.metrics
            .render(self.store.size_on_disk(), self.directory.mailbox_depth())
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

    /// For a change to a seat: its owner's actor, once the caller may
    /// allocate there and the owner is writable.
    async fn seat_writer(&self, caller: &Caller, seat: SeatId) -> Result<Mailbox, Error> {
        let (tenant, actor) = self.seat_owner(seat)?;
        self.check(caller, Action::Allocate, tenant, Missing::Seat).await?;
        self.writable(tenant).await?;
        Ok(actor)
    }

    /// For a change to a tenant's seats: its actor, once the caller may
    /// allocate there and the tenant is writable.
    async fn tenant_writer(&self, caller: &Caller, tenant: TenantId) -> Result<Mailbox, Error> {
        self.check(caller, Action::Allocate, tenant, Missing::Tenant).await?;
        self.writable(tenant).await?;
        self.actor(tenant)
    }

    /// The tenant that owns a seat, and its actor.
    fn seat_owner(&self, seat: SeatId) -> Result<(TenantId, Mailbox), Error> {
        self.router
            .tenant_of(seat)
            .and_then(|tenant| Some((tenant, self.directory.actor(tenant)?)))
            .ok_or(Error::NotFound(Missing::Seat))
    }

    /// A tenant's actor.
    fn actor(&self, tenant: TenantId) -> Result<Mailbox, Error> {
        self.directory.actor(tenant).ok_or(Error::NotFound(Missing::Tenant))
    }

    /// Sends a message to a tenant actor; its reply is revealed once durable.
    async fn ask<M, T>(&self, actor: &Mailbox, msg: M) -> Result<Durable<T>, Error>
    where
        M: actix::Message<Result = Durable<T>> + Send + 'static,
        T: Send + 'static,
        TenantActor: actix::Handler<Slotted<M>, Result = Durable<T>>,
    {
        actor.ask(msg).await
    }

    /// `ask`, for a reply the engine itself reads before answering: it
    /// waits for the reply's durability first.
    async fn read<M, T>(&self, actor: &Mailbox, msg: M) -> Result<T, Error>
    where
        M: actix::Message<Result = Durable<T>> + Send + 'static,
        T: Send + 'static,
        TenantActor: actix::Handler<Slotted<M>, Result = Durable<T>>,
    {
        actor.ask(msg).await?.wait(&self.store).await
    }

    /// A read that went straight to sled (audit, alerts, history), revealed
    /// once everything written so far is durable: it may have seen writes
    /// still in flight. Take it after the read, so it covers what was seen.
    fn scanned<T>(&self, value: T) -> Durable<T> {
        Durable::after(self.store.latest(), Ok(value))
    }
}
