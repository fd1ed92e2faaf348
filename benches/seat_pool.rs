//! The in-memory seat pool alone (no store, no actor, no HTTP): allocate,
//! reclaim and summary at 1,000 and 1,000,000 seats.
//!
//! `cargo bench --bench seat_pool`
//!
//! Seats are bought in blocks of at most 100,000 (the purchase limit), as the
//! service would hold them. Allocate and reclaim visit seats in a scattered
//! order (a stride coprime to the pool size) so the 1,000,000-seat figures
//! include the cache misses of a large pool. Each timed batch is undone
//! untimed, so the pool swings between empty and half allocated and the
//! learner index holds up to half a million entries at the large size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tenant_service::domain::{AuditId, BlockRecord, Id, LearnerId, SeatId, TenantId, Timestamp, UserId};
use tenant_service::engine::pool::SeatPool;

const SIZES: [u64; 2] = [1_000, 1_000_000];
const BLOCK: u64 = 100_000;

fn id<T: Id>(n: u64) -> T {
    T::new(n).unwrap_or_else(|| panic!("id {n} is not positive"))
}

struct Fixture {
    pool: SeatPool,
    size: u64,
    /// One learner per seat offset, so no two allocated seats share a learner.
    learners: Vec<LearnerId>,
    /// Scattered visiting order over seat offsets.
    stride: u64,
    cursor: u64,
}

impl Fixture {
    fn new(size: u64) -> Fixture {
        let tenant: TenantId = id(1);
        let by = UserId::parse("bench_admin").unwrap_or_else(|e| panic!("{e}"));
        let mut pool = SeatPool::new(tenant);
        let mut first = 1;
        while first <= size {
            let count = BLOCK.min(size - first + 1);
            pool.add_block(
                BlockRecord {
                    tenant_id: tenant,
                    first_seat: id(first),
                    count,
                    first_audit: id::<AuditId>(first),
                    created_at: Timestamp::now(),
                    changed_by: by.clone(),
                },
                None,
            );
            first += count;
        }
        let learners = (0..size)
            .map(|i| LearnerId::parse(&format!("learner-{i:07}")).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        // A prime larger than either size: coprime to both, and far enough
        // apart that consecutive visits land in different cache lines.
        let stride = 1_000_003 % size;
        Fixture {
            pool,
            size,
            learners,
            stride,
            cursor: 0,
        }
    }

    fn next_offset(&mut self) -> u64 {
        self.cursor = (self.cursor + self.stride) % self.size;
        self.cursor
    }

    fn allocate(&mut self, offset: u64, at: Timestamp) {
        let learner = self.learners[offset as usize].clone();
        let change = self
            .pool
            .allocate(id(offset + 1), learner, at)
            .unwrap_or_else(|e| panic!("allocate: {e}"));
        self.pool.apply(change);
    }

    fn reclaim(&mut self, offset: u64, at: Timestamp) {
        let change = self
            .pool
            .reclaim(id::<SeatId>(offset + 1), at)
            .unwrap_or_else(|e| panic!("reclaim: {e}"));
        self.pool.apply(change);
    }

    /// At most half the pool per batch: the rest stays free for the next one.
    fn batch(&self) -> u64 {
        (self.size / 2).max(1)
    }

    /// Times `iters` allocations; each batch is reclaimed again, untimed.
    fn time_allocations(&mut self, iters: u64) -> Duration {
        let at = Timestamp::now();
        let mut timed = Duration::ZERO;
        let mut left = iters;
        let mut done = Vec::with_capacity(self.batch().min(iters) as usize);
        while left > 0 {
            let k = left.min(self.batch());
            done.clear();
            done.extend((0..k).map(|_| self.next_offset()));
            let started = Instant::now();
            for &offset in &done {
                self.allocate(offset, at);
            }
            timed += started.elapsed();
            for &offset in &done {
                self.reclaim(offset, at);
            }
            left -= k;
        }
        timed
    }

    /// Times `iters` reclaims of seats allocated untimed just before.
    fn time_reclaims(&mut self, iters: u64) -> Duration {
        let at = Timestamp::now();
        let mut timed = Duration::ZERO;
        let mut left = iters;
        let mut done = Vec::with_capacity(self.batch().min(iters) as usize);
        while left > 0 {
            let k = left.min(self.batch());
            done.clear();
            done.extend((0..k).map(|_| self.next_offset()));
            for &offset in &done {
                self.allocate(offset, at);
            }
            let started = Instant::now();
            for &offset in &done {
                self.reclaim(offset, at);
            }
            timed += started.elapsed();
            left -= k;
        }
        timed
    }
}

fn seat_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("seat_pool");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    for size in SIZES {
        let mut fx = Fixture::new(size);
        group.bench_with_input(BenchmarkId::new("allocate", size), &size, |b, _| {
            b.iter_custom(|iters| fx.time_allocations(iters))
        });
        group.bench_with_input(BenchmarkId::new("reclaim", size), &size, |b, _| {
            b.iter_custom(|iters| fx.time_reclaims(iters))
        });
        // A summary as the engine builds it: the counters plus utilization.
        // Measured with a tenth of the seats assigned, so the counts are real.
        let at = Timestamp::now();
        for _ in 0..size / 10 {
            let offset = fx.next_offset();
            fx.allocate(offset, at);
        }
        group.bench_with_input(BenchmarkId::new("summary", size), &size, |b, _| {
            b.iter(|| {
                let counts = black_box(&fx.pool).counts();
                let total = counts.total();
                black_box((total, counts.utilization()))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, seat_pool);
criterion_main!(benches);
