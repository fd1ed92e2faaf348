//! What a purchase and a seat's current state are, as both the seat pool
//! and the store hold them, and the link of a tenant's audit hash chain.
//! The store writes these as they are (bincode): their field order is the
//! on-disk layout.

use serde::{Deserialize, Serialize};

use super::{Audit, AuditId, Id, LearnerId, SeatId, SeatState, TenantId, Timestamp, UserId};

/// One purchase: `count` seats with consecutive ids from `first_seat`, all free
/// at `created_at`, and their purchase audit entries with consecutive ids from
/// `first_audit`. One record instead of 2 × count keeps a 100,000-seat purchase
/// a single small write; the per-seat entries are derived from it on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub tenant_id: TenantId,
    pub first_seat: SeatId,
    pub count: u64,
    pub first_audit: AuditId,
    pub created_at: Timestamp,
    pub changed_by: UserId,
}

impl BlockRecord {
    pub fn contains(&self, seat: SeatId) -> bool {
        (self.first_seat.get()..self.first_seat.get() + self.count).contains(&seat.get())
    }

    /// The purchase audit entry of the seat `offset` places into the block.
    pub fn purchase_audit(&self, offset: u64) -> Audit {
        Audit {
            id: self.first_audit.offset(offset),
            seat_id: self.first_seat.offset(offset),
            previous_state: None,
            new_state: SeatState::Free,
            previous_learner_id: None,
            new_learner_id: None,
            changed_by: self.changed_by.clone(),
            reason: "Seat purchased".into(),
            created_at: self.created_at,
        }
    }
}

/// A seat's state after it first changed; absent means "free since purchase".
///
/// The fields marked `skip` came later: they are not in this encoding (its
/// layout is fixed), the store keeps them after the whole seat entry
/// (`store::records::SeatExt`), and a record written before them reads
/// back with none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRecord {
    /// The seat's owner: the tenant that bought it, or the one it was
    /// last transferred to.
    pub tenant_id: TenantId,
    pub state: SeatState,
    pub learner_id: Option<LearnerId>,
    pub reserved_at: Option<Timestamp>,
    pub assigned_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// A reserved seat's deadline.
    #[serde(skip)]
    pub reserved_until: Option<Timestamp>,
    /// The seat's license term, when it is not its purchase's (renewed).
    #[serde(skip)]
    pub expires_at: Option<Timestamp>,
}

/// A SHA-256 link of a tenant's audit hash chain.
pub type Hash = [u8; 32];

/// The next link of a tenant's chain: SHA-256 over the previous hash, the
/// tenant and the entry's stored encoding (bincode is deterministic for a
/// given value, and it is what `A` records hold after their version byte).
pub fn chain(prev: &Hash, tenant: TenantId, audit: &Audit) -> Hash {
    use sha2::{Digest, Sha256};
    /// Feeds bincode's output straight into the hasher: a 100,000-seat
    /// purchase hashes 100,000 entries, so no buffer per entry.
    struct Feed(Sha256);
    impl std::io::Write for Feed {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut feed = Feed(Sha256::new());
    feed.0.update(prev);
    feed.0.update(tenant.get().to_be_bytes());
    // As in `encode`: a derived record into an infallible writer cannot fail.
    if let Err(e) = bincode::serialize_into(&mut feed, audit) {
        unreachable!("bincode cannot encode a derived record: {e}");
    }
    feed.0.finalize().into()
}
