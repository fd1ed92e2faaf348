//! Seat purchase, allocation, reclaim, lookups and summaries: every change
//! goes through the owning tenant's actor.

use serde::Serialize;

use crate::domain::{
    Caller, Counts, LearnerId, Reason, Seat, SeatCount, SeatId, SeatSummary, TenantId, Timestamp, Ttl,
};
use crate::store::Seq;

use super::actor;
use super::answers::Keyed;
use super::durable::Durable;
use super::error::{Error, Missing};
use super::{Action, Engine};

/// `GET /district/{id}/summary`: the top level is a SeatSummary of the
/// district's own and its schools' seats together.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DistrictSummary {
    #[serde(flatten)]
    pub totals: SeatSummary,
    /// The seats bought by the district itself.
    pub own: SeatSummary,
    /// One per school, in creation order.
    pub schools: Vec<SeatSummary>,
}

impl Engine {
    /// `count` free seats, ending their license term at `expires_at` (in
    /// the future) if one is given.
    pub async fn purchase(
        &self,
        caller: &Caller,
        tenant: TenantId,
        count: SeatCount,
        expires_at: Option<Timestamp>,
        keyed: Option<Keyed<Vec<Seat>>>,
    ) -> Result<Durable<Vec<Seat>>, Error> {
        self.check(caller, Action::Purchase, tenant, Missing::Tenant).await?;
        self.writable(tenant).await?;
        let actor = self.actor(tenant)?;
        let by = caller.user.clone();
        let msg = actor::Purchase {
            count,
            expires_at,
            by,
            keyed,
        };
        self.ask(&actor, msg).await
    }

    /// A free seat of the tenant (the one named, or the lowest) reserved
    /// for `ttl`, for the learner if one is named.
    pub async fn reserve(
        &self,
        caller: &Caller,
        tenant: TenantId,
        seat: Option<SeatId>,
        learner: Option<LearnerId>,
        ttl: Ttl,
        keyed: Option<Keyed<Seat>>,
    ) -> Result<Durable<Seat>, Error> {
        let actor = self.tenant_writer(caller, tenant).await?;
        let by = caller.user.clone();
        let msg = actor::Reserve {
            seat,
            learner,
            ttl,
            by,
            keyed,
        };
        self.ask(&actor, msg).await
    }

    /// A reserved seat free again.
    pub async fn release(
        &self,
        caller: &Caller,
        seat: SeatId,
        keyed: Option<Keyed<Seat>>,
    ) -> Result<Durable<Seat>, Error> {
        let actor = self.seat_writer(caller, seat).await?;
        let by = caller.user.clone();
        self.ask(&actor, actor::Release { seat, by, keyed }).await
    }

    pub async fn allocate(
        &self,
        caller: &Caller,
        seat: SeatId,
        learner: LearnerId,
        keyed: Option<Keyed<Seat>>,
    ) -> Result<Durable<Seat>, Error> {
        let actor = self.seat_writer(caller, seat).await?;
        let by = caller.user.clone();
        self.ask(
            &actor,
            actor::Allocate {
                seat,
                learner,
                by,
                keyed,
            },
        )
        .await
    }

    /// A seat for the learner in the tenant: the one they hold (`false`,
    /// nothing written), or the lowest free one, assigned to them (`true`).
    pub async fn assign(
        &self,
        caller: &Caller,
        tenant: TenantId,
        learner: LearnerId,
        keyed: Option<Keyed<(Seat, bool)>>,
    ) -> Result<Durable<(Seat, bool)>, Error> {
        let actor = self.tenant_writer(caller, tenant).await?;
        let by = caller.user.clone();
        self.ask(&actor, actor::Assign { learner, by, keyed }).await
    }

    pub async fn reclaim(
        &self,
        caller: &Caller,
        seat: SeatId,
        reason: Reason,
        keyed: Option<Keyed<Seat>>,
    ) -> Result<Durable<Seat>, Error> {
        let actor = self.seat_writer(caller, seat).await?;
        let by = caller.user.clone();
        self.ask(
            &actor,
            actor::Reclaim {
                seat,
                reason,
                by,
                keyed,
            },
        )
        .await
    }

    /// A seat; learners (and anyone else with a role in the district) may
    /// read the seat they hold themselves.
    pub async fn seat(&self, caller: &Caller, seat: SeatId) -> Result<Durable<Seat>, Error> {
        let (tenant, actor) = self.seat_owner(seat)?;
        let refusal = match self.check(caller, Action::Read, tenant, Missing::Seat).await {
            Ok(()) => return self.ask(&actor, actor::GetSeat { seat }).await,
            Err(refusal @ Error::Forbidden(_)) => refusal,
            Err(other) => return Err(other),
        };
        let found = self.read(&actor, actor::GetSeat { seat }).await?;
        let holder = found.learner_id.as_ref().or(found.reserved_for.as_ref());
        if holder.map(LearnerId::as_str) == Some(caller.user.as_str()) {
            Ok(Durable::ready(found))
        } else {
            Err(refusal)
        }
    }

    pub async fn summary(&self, caller: &Caller, tenant: TenantId) -> Result<Durable<SeatSummary>, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let (summary, seq) = self.counted(tenant, Missing::Tenant)?;
        Ok(Durable::after(seq, Ok(summary)))
    }

    /// A district's seats: its own and its schools' together, its own alone,
    /// and each school's (no actor message, no seat scanned).
    pub async fn district_summary(
        &self,
        caller: &Caller,
        district: TenantId,
    ) -> Result<Durable<DistrictSummary>, Error> {
        let (_, children, _) = self
            .directory
            .district(district)
            .ok_or(Error::NotFound(Missing::District))?;
        self.check(caller, Action::Read, district, Missing::District).await?;
        let (own, mut seq) = self.counted(district, Missing::District)?;
        let mut schools = Vec::with_capacity(children.len());
        for school in children {
            let (summary, s) = self.counted(school, Missing::Tenant)?;
            seq = seq.max(s);
            schools.push(summary);
        }
        let expired = std::iter::once(&own).chain(&schools).map(|s| s.expired_seats).sum();
        let totals = std::iter::once(&own)
            .chain(&schools)
            .map(Counts::from)
            .sum::<Counts>()
            .summary(district, own.tenant_name.clone(), expired);
        Ok(Durable::after(seq, Ok(DistrictSummary { totals, own, schools })))
    }

    /// A tenant's counters as a summary, with the write they (and its name)
    /// depend on: as the actor last published them, read without a mailbox
    /// round trip (exact once that write is durable), reservations past
    /// their deadline counted free and terms past their end expired at
    /// this moment, whether or not the actor has got to them yet.
    fn counted(&self, tenant: TenantId, missing: Missing) -> Result<(SeatSummary, Seq), Error> {
        let (meta, snapshot) = self
            .directory
            .snapshot(tenant, Timestamp::now())
            .ok_or(Error::NotFound(missing))?;
        let summary = snapshot
            .counts
            .summary(tenant, meta.name.as_str().to_owned(), snapshot.expired);
        Ok((summary, snapshot.seq))
    }
}
