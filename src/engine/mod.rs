//! The engine: the API the HTTP layer calls, in domain types only.
//!
//! Seat operations go to the owning tenant's actor; tenant metadata and roles
//! are served from the `Directory`. Every method waits until what it is about
//! to reveal is durable before returning it.

mod actor;
mod arbiters;
mod directory;
mod mailbox;
pub mod pool;
mod router;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::{
    Audit, Id, LearnerId, Reason, Role, RoleId, RoleKind, Seat, SeatCount, SeatId, SeatSummary, Tenant, TenantId,
    TenantKind, TenantName, TenantPatch, Timestamp, UserId,
};
use crate::error::{Error, Missing};
use crate::store::{IdSpace, Recovered, Seq, Store};

use actor::{Pending, TenantActor};
use arbiters::Arbiters;
use directory::{Directory, Roles, TenantEntry};
use mailbox::Mailbox;
pub use pool::SeatPool;
use router::SeatRouter;

/// What recovery found, for the start-up log.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryReport {
    pub tenants: usize,
    pub seats: u64,
    pub roles: usize,
    pub millis: u128,
}

pub struct Engine {
    store: Arc<Store>,
    directory: Directory,
    router: Arc<SeatRouter>,
    arbiters: Arbiters,
    /// How many messages may wait for one tenant actor (`Settings::mailbox_bound`).
    mailbox_bound: usize,
}

impl Engine {
    /// Rebuilds every tenant actor, the seat router and the role index from
    /// what the store read back, and starts the actors.
    pub fn start(
        store: Arc<Store>,
        recovered: Recovered,
        started: Instant,
        mailbox_bound: usize,
    ) -> std::io::Result<(Engine, RecoveryReport)> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arbiters = Arbiters::start(cores)?;
        let router = Arc::new(SeatRouter::default());
        let Recovered {
            tenants,
            roles,
            blocks,
            seats,
        } = recovered;

        let mut pools: HashMap<TenantId, SeatPool> = tenants.iter().map(|t| (t.id, SeatPool::new(t.id))).collect();
        let mut seat_total = 0;
        for block in blocks {
            seat_total += block.count;
            router.insert(block.first_seat, block.count, block.tenant_id);
            if let Some(pool) = pools.get_mut(&block.tenant_id) {
                pool.add_block(block);
            }
        }
        for (seat, record) in seats {
            if let Some(pool) = pools.get_mut(&record.tenant_id) {
                pool.restore(seat, record);
            }
        }

        let directory = Directory::default();
        let tenant_count = tenants.len();
        for tenant in tenants {
            let pool = pools.remove(&tenant.id).unwrap_or_else(|| SeatPool::new(tenant.id));
            let actor = Mailbox::new(
                arbiters.spawn(TenantActor::new(
                    tenant.id,
                    pool,
                    Arc::clone(&store),
                    Arc::clone(&router),
                )),
                mailbox_bound,
            );
            let parent = tenant.parent_id;
            let id = tenant.id;
            directory.tenants.insert(
                id,
                TenantEntry {
                    tenant,
                    seq: 0,
                    children: Vec::new(),
                    actor,
                },
            );
            if let Some(mut district) = parent.and_then(|p| directory.tenants.get_mut(&p)) {
                district.children.push(id);
            }
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
                store,
                directory,
                router,
                arbiters,
                mailbox_bound,
            },
            report,
        ))
    }

    /// Stops every actor. In-flight requests must have finished first.
    pub fn stop(&self) {
        self.arbiters.stop();
        self.store.close();
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---- tenants -------------------------------------------------------

    pub async fn create_district(&self, name: TenantName) -> Result<Tenant, Error> {
        self.create_tenant(name, TenantKind::District, None).await
    }

    pub async fn create_school(&self, district: TenantId, name: TenantName) -> Result<Tenant, Error> {
        match self.directory.tenant(district) {
            Some((parent, _)) if parent.kind == TenantKind::District => {}
            _ => return Err(Error::NotFound(Missing::District)),
        }
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
        let pool = SeatPool::new(tenant.id);
        let actor = Mailbox::new(
            self.arbiters.spawn(TenantActor::new(
                tenant.id,
                pool,
                Arc::clone(&self.store),
                Arc::clone(&self.router),
            )),
            self.mailbox_bound,
        );
        self.directory.tenants.insert(
            tenant.id,
            TenantEntry {
                tenant: tenant.clone(),
                seq,
                children: Vec::new(),
                actor,
            },
        );
        if let Some(mut district) = parent_id.and_then(|p| self.directory.tenants.get_mut(&p)) {
            district.children.push(tenant.id);
        }
        self.store.durable(seq).await?;
        Ok(tenant)
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Tenant, Error> {
        let (tenant, seq) = self.directory.tenant(id).ok_or(Error::NotFound(Missing::Tenant))?;
        self.store.durable(seq).await?;
        Ok(tenant)
    }

    /// A district and its schools.
    pub async fn district(&self, id: TenantId) -> Result<(Tenant, Vec<Tenant>), Error> {
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

    pub async fn update_tenant(&self, id: TenantId, patch: TenantPatch) -> Result<Tenant, Error> {
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

    pub async fn purchase(&self, tenant: TenantId, count: SeatCount, by: UserId) -> Result<Vec<Seat>, Error> {
        let actor = self.directory.actor(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        self.ask(&actor, actor::Purchase { count, by }).await
    }

    pub async fn allocate(&self, seat: SeatId, learner: LearnerId, by: UserId) -> Result<Seat, Error> {
        let actor = self.seat_actor(seat)?;
        self.ask(&actor, actor::Allocate { seat, learner, by }).await
    }

    pub async fn reclaim(&self, seat: SeatId, reason: Reason, by: UserId) -> Result<Seat, Error> {
        let actor = self.seat_actor(seat)?;
        self.ask(&actor, actor::Reclaim { seat, reason, by }).await
    }

    pub async fn seat(&self, seat: SeatId) -> Result<Seat, Error> {
        let actor = self.seat_actor(seat)?;
        self.ask(&actor, actor::GetSeat { seat }).await
    }

    pub async fn summary(&self, tenant: TenantId) -> Result<SeatSummary, Error> {
        let (meta, seq) = self.directory.tenant(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        let actor = self.directory.actor(tenant).ok_or(Error::NotFound(Missing::Tenant))?;
        let counts = self.ask(&actor, actor::Summary {}).await?;
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
    pub async fn seat_audit(&self, seat: SeatId) -> Result<Vec<Audit>, Error> {
        let actor = self.seat_actor(seat)?;
        let block = self.ask(&actor, actor::GetBlock { seat }).await?;
        let entries = self.store.seat_audit(seat, &block)?;
        // The scan read sled directly and may have seen writes still in
        // flight; wait for everything written so far.
        self.store.durable(self.store.latest()).await?;
        Ok(entries)
    }

    // ---- roles ----------------------------------------------------------

    pub async fn assign_role(&self, user: UserId, tenant: TenantId, kind: RoleKind) -> Result<Role, Error> {
        if !self.directory.tenants.contains_key(&tenant) {
            return Err(Error::NotFound(Missing::Tenant));
        }
        // The write lock makes check-then-insert atomic (rule 6); it is held
        // for one small sled insert, never across the flush.
        let granted = {
            let mut roles = self.directory.roles_write();
            let existing = roles
                .active
                .get(&(user.clone(), tenant))
                .and_then(|id| roles.by_id.get(id));
            match existing {
                Some((_, seq)) => Err(*seq),
                None => {
                    let role = Role {
                        id: self.new_id(IdSpace::Role)?,
                        user_id: user,
                        tenant_id: tenant,
                        role: kind,
                        created_at: Timestamp::now(),
                        is_active: true,
                    };
                    let seq = self.store.put_role(&role)?;
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

    pub async fn tenant_roles(&self, tenant: TenantId) -> Result<Vec<Role>, Error> {
        let (roles, seq) = {
            let index = self.directory.roles_read();
            Self::listed(&index, index.by_tenant.get(&tenant), |_| true)
        };
        self.store.durable(seq).await?;
        Ok(roles)
    }

    pub async fn user_roles(&self, user: &UserId) -> Result<Vec<Role>, Error> {
        let (roles, seq) = {
            let index = self.directory.roles_read();
            Self::listed(&index, index.by_user.get(user), |r| r.is_active)
        };
        self.store.durable(seq).await?;
        Ok(roles)
    }

    fn listed(index: &Roles, ids: Option<&Vec<RoleId>>, keep: impl Fn(&Role) -> bool) -> (Vec<Role>, Seq) {
        index.collect(ids.into_iter().flatten(), keep)
    }

    // ---- plumbing -------------------------------------------------------

    fn new_id<I: Id>(&self, space: IdSpace) -> Result<I, Error> {
        let raw = self.store.ids(space, 1)?;
        I::new(raw).ok_or_else(|| Error::Internal(anyhow::anyhow!("store handed out id 0")))
    }

    fn seat_actor(&self, seat: SeatId) -> Result<Mailbox, Error> {
        self.router
            .tenant_of(seat)
            .and_then(|tenant| self.directory.actor(tenant))
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
