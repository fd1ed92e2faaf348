//! Where a tenant actor publishes its counters for summaries to read
//! without a mailbox round trip.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::domain::{Counts, Timestamp};
use crate::store::Seq;

/// A tenant's seat counters as its actor last published them, with the write
/// they reflect, its reservations' deadlines and its seats' term ends. All
/// change together under one small lock, so a reader never sees counters
/// from one transition and deadlines or a sequence from another. A std
/// mutex: held for a copy or a short range read, never across an await.
pub struct PublishedCounts(Mutex<Published>);

#[derive(Default)]
struct Published {
    counts: Counts,
    seq: Seq,
    /// How many reservations end at each deadline: a summary read between
    /// a deadline and the actor's timer counts those seats free already.
    deadlines: BTreeMap<Timestamp, u32>,
    /// How many seats end their license term at each time.
    terms: Vec<(Timestamp, u64)>,
}

/// What a summary shows of a tenant at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Reservations past their deadline counted as free.
    pub counts: Counts,
    /// Seats whose term has ended.
    pub expired: u64,
    pub seq: Seq,
}

impl PublishedCounts {
    pub fn new(counts: Counts, deadlines: &[Timestamp], terms: Vec<(Timestamp, u64)>) -> Self {
        let mut published = Published {
            counts,
            terms,
            ..Published::default()
        };
        for d in deadlines {
            *published.deadlines.entry(*d).or_default() += 1;
        }
        PublishedCounts(Mutex::new(published))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// New counters after a change that ended the reservations with the
    /// deadlines `ended` and made those with `began`.
    pub fn set(&self, counts: Counts, seq: Seq, ended: &[Timestamp], began: &[Timestamp]) {
        let mut p = self.lock();
        p.counts = counts;
        p.seq = seq;
        for d in ended {
            if let Some(n) = p.deadlines.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    p.deadlines.remove(d);
                }
            }
        }
        for d in began {
            *p.deadlines.entry(*d).or_default() += 1;
        }
    }

    pub fn set_terms(&self, terms: Vec<(Timestamp, u64)>) {
        self.lock().terms = terms;
    }

    /// The counters as last published, and the write they reflect.
    pub fn get(&self) -> (Counts, Seq) {
        let p = self.lock();
        (p.counts, p.seq)
    }

    /// The counters as they stand at `now`.
    pub fn at(&self, now: Timestamp) -> Snapshot {
        let p = self.lock();
        let overdue: u64 = p.deadlines.range(..=now).map(|(_, n)| u64::from(*n)).sum();
        let overdue = overdue.min(p.counts.reserved);
        let counts = Counts {
            free: p.counts.free + overdue,
            reserved: p.counts.reserved - overdue,
            assigned: p.counts.assigned,
        };
        let expired = p.terms.iter().filter(|(end, _)| *end <= now).map(|(_, n)| n).sum();
        Snapshot {
            counts,
            expired,
            seq: p.seq,
        }
    }
}
