//! Where a tenant actor publishes its counters for summaries to read
//! without a mailbox round trip.

use std::sync::{Mutex, PoisonError};

use crate::domain::Counts;
use crate::store::Seq;

/// A tenant's seat counters as its actor last published them, with the write
/// they reflect. Counts and sequence change together under one small lock,
/// so a reader never sees counters from one transition and a sequence from
/// another. A std mutex: held for a copy, never across an await.
pub struct PublishedCounts(Mutex<(Counts, Seq)>);

impl PublishedCounts {
    pub fn new(counts: Counts) -> Self {
        PublishedCounts(Mutex::new((counts, 0)))
    }

    pub fn set(&self, counts: Counts, seq: Seq) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = (counts, seq);
    }

    pub fn get(&self) -> (Counts, Seq) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
