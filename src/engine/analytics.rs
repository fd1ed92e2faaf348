//! Utilization over time: per-minute transition stats, the daily history,
//! alert thresholds and the alerts they raised.

use serde::Serialize;

use crate::domain::{Alert, Caller, Counts, Percent, TenantId, Threshold, Timestamp, Transition};

use super::actor;
use super::answers::Keyed;
use super::durable::Durable;
use super::error::{Error, Missing};
use super::stats;
use super::{Action, Engine};

/// `GET /seats/history`: one entry per day, oldest first, today last.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub tenant_id: TenantId,
    pub days: Vec<DayUtilization>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Alerts {
    pub tenant_id: TenantId,
    /// This tenant's threshold (its schools' may differ).
    pub threshold_percent: Option<Percent>,
    pub alerts: Vec<Alert>,
}

/// `GET /seats/stats`: seat transitions over a window of whole minutes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    /// Reservations made, given back and ended by their deadline.
    pub reservations: u64,
    pub releases: u64,
    pub expirations: u64,
    /// Seats moved in from and out to other tenants of the district.
    pub transfers_in: u64,
    pub transfers_out: u64,
    /// Seats whose license term was extended.
    pub renewals: u64,
    /// The same, averaged per minute of the window (2 decimals).
    pub per_minute: Rates,
    /// The minute with the most transitions (null when there were none).
    pub peak_minute: Option<MinuteActivity>,
    /// Every minute with activity, oldest first (idle minutes are left out).
    pub minutes: Vec<MinuteActivity>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rates {
    pub purchases: f64,
    pub allocations: f64,
    pub reclaims: f64,
    pub reservations: f64,
    pub releases: f64,
    pub expirations: f64,
    pub transfers_in: f64,
    pub transfers_out: f64,
    pub renewals: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MinuteActivity {
    /// The minute's start.
    pub minute: Timestamp,
    pub purchases: u64,
    pub allocations: u64,
    pub reclaims: u64,
    pub reservations: u64,
    pub releases: u64,
    pub expirations: u64,
    pub transfers_in: u64,
    pub transfers_out: u64,
    pub renewals: u64,
}

impl MinuteActivity {
    fn from_counts(minute: Timestamp, c: &stats::MinuteCounts) -> Self {
        let n = |kind: Transition| c[kind as usize];
        MinuteActivity {
            minute,
            purchases: n(Transition::Purchase),
            allocations: n(Transition::Allocate),
            reclaims: n(Transition::Reclaim),
            reservations: n(Transition::Reserve),
            releases: n(Transition::Release),
            expirations: n(Transition::Expire),
            transfers_in: n(Transition::TransferIn),
            transfers_out: n(Transition::TransferOut),
            renewals: n(Transition::Renew),
        }
    }

    fn transitions(&self) -> u64 {
        self.purchases
            + self.allocations
            + self.reclaims
            + self.reservations
            + self.releases
            + self.expirations
            + self.transfers_in
            + self.transfers_out
            + self.renewals
    }
}

impl Engine {
    /// Transitions per minute over the last `minutes` (1 to 1,440) minutes,
    /// in a tenant (a district's include its schools').
    pub async fn seat_stats(
        &self,
        caller: &Caller,
        tenant: TenantId,
        minutes: i64,
    ) -> Result<Durable<SeatStats>, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let past = self.past_stats().await?;
        let now = Timestamp::now();
        let to = stats::minute_of(now);
        let from = to - minutes + 1;
        let mut merged: std::collections::BTreeMap<i64, stats::MinuteCounts> = Default::default();
        for t in self.directory.family(tenant) {
            let Some(actor) = self.directory.actor(t) else { continue };
            let before = past.get(&t).map(|h| h.between(from, to)).unwrap_or_default();
            for (minute, counts) in self
                .read(&actor, actor::Stats { from, to })
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
        let minute_view = |(minute, c): (i64, stats::MinuteCounts)| {
            MinuteActivity::from_counts(Timestamp::from_micros(minute.saturating_mul(60_000_000)), &c)
        };
        let mut sums = [0u64; Transition::COUNT];
        for c in merged.values() {
            for (s, n) in sums.iter_mut().zip(c) {
                *s += n;
            }
        }
        let all = MinuteActivity::from_counts(Timestamp::from_micros(0), &sums);
        let active: Vec<MinuteActivity> = merged.into_iter().map(minute_view).collect();
        let rate = |n: u64| (n as f64 / minutes as f64 * 100.0).round() / 100.0;
        // The busiest minute by transitions; the earliest wins a tie.
        let peak_minute = active
            .iter()
            .fold(None::<&MinuteActivity>, |best, m| match best {
                Some(b) if b.transitions() >= m.transitions() => Some(b),
                _ => Some(m),
            })
            .cloned();
        Ok(Durable::ready(SeatStats {
            tenant_id: tenant,
            window_minutes: minutes,
            from: Timestamp::from_micros(from.saturating_mul(60_000_000)),
            until: now,
            purchases: all.purchases,
            allocations: all.allocations,
            reclaims: all.reclaims,
            reservations: all.reservations,
            releases: all.releases,
            expirations: all.expirations,
            transfers_in: all.transfers_in,
            transfers_out: all.transfers_out,
            renewals: all.renewals,
            per_minute: Rates {
                purchases: rate(all.purchases),
                allocations: rate(all.allocations),
                reclaims: rate(all.reclaims),
                reservations: rate(all.reservations),
                releases: rate(all.releases),
                expirations: rate(all.expirations),
                transfers_in: rate(all.transfers_in),
                transfers_out: rate(all.transfers_out),
                renewals: rate(all.renewals),
            },
            peak_minute,
            minutes: active,
        }))
    }

    /// Sets (or, with `None`, clears) a tenant's utilization alert threshold
    /// (409 in an inactive tenant, like every write but reactivation and
    /// taking access away). Setting it raises no alert by itself: alerts
    /// come from changes.
    pub async fn set_threshold(
        &self,
        caller: &Caller,
        tenant: TenantId,
        percent: Option<Percent>,
        keyed: Option<Keyed<Threshold>>,
    ) -> Result<Durable<Threshold>, Error> {
        self.check(caller, Action::ManageTenant, tenant, Missing::Tenant)
            .await?;
        // A write like any other: refused in an inactive tenant.
        self.writable(tenant).await?;
        let actor = self.actor(tenant)?;
        let threshold = Threshold {
            tenant_id: tenant,
            percent,
            updated_by: caller.user.clone(),
            updated_at: Timestamp::now(),
        };
        self.ask(&actor, actor::SetThreshold { threshold, keyed }).await
    }

    /// A tenant's threshold and its alerts, with its schools' for a district
    /// (ordered by the audit id of the change that raised them).
    pub async fn alerts(&self, caller: &Caller, tenant: TenantId) -> Result<Durable<Alerts>, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let actor = self.actor(tenant)?;
        let threshold_percent = self.read(&actor, actor::GetThreshold {}).await?;
        let mut alerts = Vec::new();
        for t in self.directory.family(tenant) {
            alerts.extend(self.store.alerts(t)?);
        }
        alerts.sort_by_key(|a| a.audit_id);
        Ok(self.scanned(Alerts {
            tenant_id: tenant,
            threshold_percent,
            alerts,
        }))
    }

    /// A tenant's seat counts at the end of each of the last `days` days
    /// (today: now), summed over its schools for a district.
    pub async fn history(&self, caller: &Caller, tenant: TenantId, days: i64) -> Result<Durable<History>, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let today = stats::day_of(Timestamp::now());
        let from = today - days + 1;
        let mut sums = vec![Counts::default(); days as usize];
        for t in self.directory.family(tenant) {
            let Some(actor) = self.directory.actor(t) else { continue };
            let (day, current) = self.read(&actor, actor::Today {}).await?;
            let snapshots = self.store.days(t, from, today)?;
            for (sum, (_, c)) in sums
                .iter_mut()
                .zip(stats::day_series(from, today, &snapshots, day, current))
            {
                *sum += c;
            }
        }
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
        Ok(self.scanned(History {
            tenant_id: tenant,
            days,
        }))
    }
}
