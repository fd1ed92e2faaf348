//! Prometheus metrics (`GET /metrics`, text exposition format).
//!
//! Counters and gauges that change on the hot path are resolved to plain
//! atomic handles once, here, so a seat transition costs an atomic add, not a
//! label lookup. Values that are cheap to read when asked (store size on disk,
//! mailbox depth) are read at scrape time instead of being kept up to date.

use std::time::Duration;

use dashmap::DashMap;

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::domain::{Counts, Direction, SeatState, Transition};

/// Standard methods by name; anything else (hostile input) is one label.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn state_index(state: SeatState) -> usize {
    match state {
        SeatState::Free => 0,
        SeatState::Reserved => 1,
        SeatState::Assigned => 2,
    }
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    /// `requests` resolved by (route index, method, status) on first use, so
    /// a request costs one map read and an atomic add, not a label hash,
    /// a lock and a status string.
    request_counters: DashMap<(Option<usize>, &'static str, u16), IntCounter>,
    /// The route templates by route index (the HTTP layer's route table).
    routes: Vec<&'static str>,
    /// By route index, then "other" (unknown paths) last.
    latency: Vec<Histogram>,
    /// By `Transition`.
    transitions: [IntCounter; Transition::COUNT],
    /// By `state_index`.
    seats: [IntGauge; 3],
    flush_batch: Histogram,
    flush_seconds: Histogram,
    store_bytes: IntGauge,
    mailbox_depth: IntGauge,
    /// Up, down.
    alerts: [IntCounter; 2],
    /// The change feed and the standby (see `replication`).
    pub feed: FeedMetrics,
}

/// The change feed's and the standby's metrics (registered always; they
/// stay at zero without `[replication]`).
pub struct FeedMetrics {
    /// Committed changes not yet acknowledged by JetStream (read at scrape time).
    pub outbox_depth: IntGauge,
    /// From a change's commit to JetStream's acknowledgment of it.
    pub publish_lag: Histogram,
    /// Changes acknowledged by JetStream.
    pub published: IntCounter,
    /// Failed publish attempts (NATS unreachable, stream unavailable, ...).
    pub publish_errors: IntCounter,
    /// 1 on the instance that may acknowledge writes (no leadership: 1).
    pub primary: IntGauge,
    /// The lease's epoch this instance last saw.
    pub epoch: IntGauge,
    /// A standby: from a change's commit on the primary to its application here.
    pub apply_lag: Histogram,
    /// A standby: changes applied from the stream.
    pub applied: IntCounter,
    /// Changes refused because they carry an epoch older than the one in force.
    pub stale_refused: IntCounter,
}

impl FeedMetrics {
    fn new(registry: &Registry) -> Result<FeedMetrics, prometheus::Error> {
        let lag = |name: &str, help: &str| {
            Histogram::with_opts(
                HistogramOpts::new(name, help).buckets(exponential_buckets(0.0005, 2.0, 16).unwrap_or_default()),
            )
        };
        let m = FeedMetrics {
            outbox_depth: IntGauge::new(
                "tenant_feed_outbox_depth",
                "Committed changes waiting in the outbox for JetStream's acknowledgment",
            )?,
            publish_lag: lag(
                "tenant_feed_publish_lag_seconds",
                "Time from a change's commit to JetStream's acknowledgment of it",
            )?,
            published: IntCounter::new("tenant_feed_published_total", "Changes acknowledged by JetStream")?,
            publish_errors: IntCounter::new(
                "tenant_feed_publish_errors_total",
                "Publish attempts that failed (NATS or the stream unavailable)",
            )?,
            primary: IntGauge::new(
                "tenant_replication_primary",
                "1 if this instance may acknowledge writes, 0 if it is a standby or fenced",
            )?,
            epoch: IntGauge::new(
                "tenant_replication_epoch",
                "The leadership epoch this instance last saw",
            )?,
            apply_lag: lag(
                "tenant_standby_apply_lag_seconds",
                "A standby: time from a change's commit on the primary to its application here",
            )?,
            applied: IntCounter::new(
                "tenant_standby_applied_total",
                "A standby: changes applied from the stream",
            )?,
            stale_refused: IntCounter::new(
                "tenant_feed_stale_epoch_refused_total",
                "Changes refused because their epoch is older than the one in force",
            )?,
        };
        registry.register(Box::new(m.outbox_depth.clone()))?;
        registry.register(Box::new(m.publish_lag.clone()))?;
        registry.register(Box::new(m.published.clone()))?;
        registry.register(Box::new(m.publish_errors.clone()))?;
        registry.register(Box::new(m.primary.clone()))?;
        registry.register(Box::new(m.epoch.clone()))?;
        registry.register(Box::new(m.apply_lag.clone()))?;
        registry.register(Box::new(m.applied.clone()))?;
        registry.register(Box::new(m.stale_refused.clone()))?;
        m.primary.set(1);
        Ok(m)
    }
}

impl Metrics {
    /// `routes`: every route's template, by the index `request` is given
    /// (requests are counted by template, never by raw path, which would let
    /// any client mint label values).
    pub fn new(routes: &[&'static str]) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tenant_http_requests_total",
                "HTTP requests answered, by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "tenant_http_request_duration_seconds",
                "Time from request to response, by route template",
            )
            // From a tenth of a millisecond to seconds: most answers wait for
            // one group-commit flush.
            .buckets(exponential_buckets(0.0001, 2.0, 17)?),
            &["route"],
        )?;
        let transitions_vec = IntCounterVec::new(
            Opts::new(
                "tenant_seat_transitions_total",
                "Seat state changes made (each wrote one audit entry), by kind",
            ),
            &["kind"],
        )?;
        let seats_vec = IntGaugeVec::new(
            Opts::new("tenant_seats", "Seats in each state, all tenants"),
            &["state"],
        )?;
        let flush_batch = Histogram::with_opts(
            HistogramOpts::new(
                "tenant_group_commit_batch_size",
                "Writes made durable by one group-commit flush",
            )
            .buckets(exponential_buckets(1.0, 2.0, 12)?),
        )?;
        let flush_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "tenant_group_commit_flush_seconds",
                "Duration of one group-commit flush (fsync)",
            )
            .buckets(exponential_buckets(0.0001, 2.0, 16)?),
        )?;
        let store_bytes = IntGauge::new("tenant_store_size_bytes", "Size of the store on disk")?;
        let mailbox_depth = IntGauge::new(
            "tenant_mailbox_depth",
            "Messages waiting for or being handled by tenant actors, all tenants",
        )?;
        let alerts_vec = IntCounterVec::new(
            Opts::new(
                "tenant_utilization_alerts_total",
                "Times a tenant's utilization crossed its alert threshold, by direction",
            ),
            &["direction"],
        )?;
        registry.register(Box::new(alerts_vec.clone()))?;
        let alerts = ["up", "down"].map(|d| alerts_vec.with_label_values(&[d]));
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(transitions_vec.clone()))?;
        registry.register(Box::new(seats_vec.clone()))?;
        registry.register(Box::new(flush_batch.clone()))?;
        registry.register(Box::new(flush_seconds.clone()))?;
        registry.register(Box::new(store_bytes.clone()))?;
        registry.register(Box::new(mailbox_depth.clone()))?;
        let transitions = Transition::ALL.map(|k| transitions_vec.with_label_values(&[k.label()]));
        let seats = ["free", "reserved", "assigned"].map(|s| seats_vec.with_label_values(&[s]));
        let latency = routes
            .iter()
            .chain(std::iter::once(&"other"))
            .map(|route| latency.with_label_values(&[route]))
            .collect();
        let feed = FeedMetrics::new(&registry)?;
        Ok(Metrics {
            feed,
            registry,
            requests,
            request_counters: DashMap::new(),
            routes: routes.to_vec(),
            latency,
            transitions,
            seats,
            flush_batch,
            flush_seconds,
            store_bytes,
            mailbox_depth,
            alerts,
        })
    }

    /// One request answered, by the index of the route it matched (`None`:
    /// an unknown path).
    pub fn request(&self, route: Option<usize>, method: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        match self.request_counters.get(&(route, method, status)) {
            Some(counter) => counter.inc(),
            None => {
                let label = route.and_then(|i| self.routes.get(i)).copied().unwrap_or("other");
                let counter = self
                    .requests
                    .with_label_values(&[label, method, status.to_string().as_str()]);
                counter.inc();
                self.request_counters.insert((route, method, status), counter);
            }
        }
        let latency = route.map_or(self.routes.len(), |i| i.min(self.routes.len()));
        if let Some(h) = self.latency.get(latency) {
            h.observe(elapsed.as_secs_f64());
        }
    }

    /// Seats restored on start.
    pub fn recovered(&self, counts: Counts) {
        for (gauge, n) in self.seats.iter().zip([counts.free, counts.reserved, counts.assigned]) {
            gauge.add(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    pub fn purchased(&self, seats: u64) {
        self.transitions[Transition::Purchase as usize].inc_by(seats);
        self.seats[state_index(SeatState::Free)].add(i64::try_from(seats).unwrap_or(i64::MAX));
    }

    pub fn moved(&self, kind: Transition, from: SeatState, to: SeatState) {
        self.transitions[kind as usize].inc();
        self.seats[state_index(from)].dec();
        self.seats[state_index(to)].inc();
    }

    /// `n` seat changes of a kind that leaves the seats' states as they
    /// were (a transfer's side, counted in the tenants it moves between).
    pub fn counted(&self, kind: Transition, n: u64) {
        self.transitions[kind as usize].inc_by(n);
    }

    pub fn alert(&self, direction: Direction) {
        self.alerts[match direction {
            Direction::Up => 0,
            Direction::Down => 1,
        }]
        .inc();
    }

    /// One group-commit flush that made `batch` writes durable.
    pub fn flushed(&self, batch: u64, took: Duration) {
        self.flush_batch.observe(batch as f64);
        self.flush_seconds.observe(took.as_secs_f64());
    }

    /// The exposition, with the values read at scrape time filled in first.
    pub fn render(&self, store_bytes: u64, mailbox_depth: usize) -> String {
        self.store_bytes.set(i64::try_from(store_bytes).unwrap_or(i64::MAX));
        self.mailbox_depth.set(i64::try_from(mailbox_depth).unwrap_or(i64::MAX));
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# metrics could not be encoded: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_template_and_unknown_paths_as_other() {
        let m = Metrics::new(&["/health", "/api/v1/seats/{id}"]).unwrap_or_else(|e| panic!("{e}"));
        m.request(Some(1), "GET", 200, Duration::from_millis(1));
        m.request(Some(1), "GET", 200, Duration::from_millis(1));
        m.request(None, "BREW", 404, Duration::from_millis(1));
        m.request(Some(7), "GET", 404, Duration::from_millis(1));
        let text = m.render(0, 0);
        assert!(
            text.contains(r#"tenant_http_requests_total{method="GET",route="/api/v1/seats/{id}",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tenant_http_requests_total{method="other",route="other",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"tenant_http_requests_total{method="GET",route="other",status="404"} 1"#),
            "{text}"
        );
    }
}
