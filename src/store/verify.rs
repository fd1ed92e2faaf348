//! Walking a tenant's audit hash chain: every trail entry, in key order
//! (which is write order), recomputing each link from the stored records.
//! The first entry whose link does not match is named; nothing is written.

use std::ops::Bound;

use serde::Serialize;

use crate::domain::{Id, SeatId, TenantId, Timestamp};

use crate::domain::Audit;

use super::records::{self, chain, decode, key, BlockRecord, Hash, TrailEntry};

/// What a walk found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    pub tenant_id: TenantId,
    /// Entries checked and found intact (before the first bad one, if any).
    pub entries: u64,
    /// Entries purged by retention before them (the chain starts from the
    /// checkpoint they left).
    pub purged_entries: u64,
    pub intact: bool,
    /// The first entry that does not match, when `intact` is false.
    pub first_bad_entry: Option<BadEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadEntry {
    pub audit_id: u64,
    pub seat_id: Option<u64>,
    pub created_at: Option<Timestamp>,
    pub reason: String,
}

/// Walks a tenant's chain. `head`, when known (the tenant actor's latest
/// link, read before the walk started), must be one of the links walked: a
/// trail cut short at its end leaves every remaining link intact, and only
/// this shows it.
pub fn walk(db: &sled::Db, tenant: TenantId, head: Option<Hash>) -> Result<ChainReport, sled::Error> {
    let ck = key(records::CHECKPOINT, tenant.get());
    let checkpoint: Option<records::Checkpoint> = match db.get(ck)? {
        None => None,
        Some(v) => match decode(&ck, &v) {
            Ok(cp) => Some(cp),
            Err(e) => {
                return Ok(ChainReport {
                    tenant_id: tenant,
                    entries: 0,
                    purged_entries: 0,
                    intact: false,
                    first_bad_entry: Some(BadEntry {
                        audit_id: 0,
                        seat_id: None,
                        created_at: None,
                        reason: format!("retention checkpoint unreadable: {e}"),
                    }),
                })
            }
        },
    };
    let purged_entries = checkpoint.map_or(0, |cp| cp.purged);
    let mut prev: Hash = checkpoint.map_or([0; 32], |cp| cp.hash);
    let mut entries = 0u64;
    let mut last_id = 0;
    let mut head_seen = head.is_none_or(|h| h == prev);
    let bad = |entries, audit_id, seat_id: Option<SeatId>, created_at, reason: String| ChainReport {
        tenant_id: tenant,
        entries,
        purged_entries,
        intact: false,
        first_bad_entry: Some(BadEntry {
            audit_id,
            seat_id: seat_id.map(Id::get),
            created_at,
            reason,
        }),
    };
    // Keys the checkpoint covers may remain while a purge runs or after a
    // crash cut one short: the chain goes on from the checkpoint.
    let start = match checkpoint {
        Some(cp) => Bound::Excluded(records::trail_bound(tenant, cp.at, cp.audit_id)),
        None => Bound::Included(records::trail_bound(tenant, Timestamp::from_micros(i64::MIN), 0)),
    };
    let end = Bound::Included(records::trail_bound(tenant, Timestamp::from_micros(i64::MAX), u64::MAX));
    for item in db.range((start, end)) {
        let (k, v) = item?;
        let Some((at, id)) = records::trail_key_parts(&k) else {
            return Ok(bad(
                entries,
                0,
                None,
                None,
                format!("trail key {} is malformed", records::show_key(&k)),
            ));
        };
        let entry: TrailEntry = match decode(&k, &v) {
            Ok(e) => e,
            Err(e) => return Ok(bad(entries, id, None, Some(at), format!("trail entry unreadable: {e}"))),
        };
        match entry {
            TrailEntry::Seat { seat, hash } => {
                let Some(audit_id) = crate::domain::AuditId::new(id) else {
                    return Ok(bad(entries, id, Some(seat), Some(at), "audit id 0".into()));
                };
                let ak = records::audit_key(seat, audit_id);
                let audit: Audit = match db.get(ak)? {
                    None => return Ok(bad(entries, id, Some(seat), Some(at), "audit record missing".into())),
                    Some(v) => match decode(&ak, &v) {
                        Ok(a) => a,
                        Err(e) => {
                            return Ok(bad(
                                entries,
                                id,
                                Some(seat),
                                Some(at),
                                format!("audit record unreadable: {e}"),
                            ))
                        }
                    },
                };
                if audit.id != audit_id || audit.seat_id != seat || audit.created_at != at {
                    return Ok(bad(
                        entries,
                        id,
                        Some(seat),
                        Some(at),
                        "audit record does not match its trail entry".into(),
                    ));
                }
                let link = chain(&prev, tenant, &audit);
                if link != hash {
                    return Ok(bad(
                        entries,
                        id,
                        Some(seat),
                        Some(at),
                        "hash does not match: this entry (or the trail just before it) was altered or removed".into(),
                    ));
                }
                prev = link;
                entries += 1;
            }
            TrailEntry::Block { first_seat, hash } => {
                let bk = key(records::BLOCK, first_seat.get());
                let block: BlockRecord = match db.get(bk)? {
                    None => {
                        return Ok(bad(
                            entries,
                            id,
                            Some(first_seat),
                            Some(at),
                            "purchase block missing".into(),
                        ))
                    }
                    Some(v) => match decode(&bk, &v) {
                        Ok(b) => b,
                        Err(e) => {
                            return Ok(bad(
                                entries,
                                id,
                                Some(first_seat),
                                Some(at),
                                format!("purchase block unreadable: {e}"),
                            ))
                        }
                    },
                };
                if block.first_audit.get() != id || block.created_at != at || block.tenant_id != tenant {
                    return Ok(bad(
                        entries,
                        id,
                        Some(first_seat),
                        Some(at),
                        "purchase block does not match its trail entry".into(),
                    ));
                }
                let link = (0..block.count).fold(prev, |h, i| chain(&h, tenant, &block.purchase_audit(i)));
                if link != hash {
                    // One hash covers the block: its first entry is named.
                    return Ok(bad(
                        entries,
                        id,
                        Some(first_seat),
                        Some(at),
                        format!(
                            "hash does not match: the purchase of {} seats starting here (or the trail just before it) was altered",
                            block.count
                        ),
                    ));
                }
                prev = link;
                entries += block.count;
            }
        }
        head_seen |= head == Some(prev);
        last_id = id;
    }
    if !head_seen {
        return Ok(bad(
            entries,
            last_id,
            None,
            None,
            "the trail ends before the latest entry this service wrote: entries are missing after this one".into(),
        ));
    }
    Ok(ChainReport {
        tenant_id: tenant,
        entries,
        purged_entries,
        intact: true,
        first_bad_entry: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuditId, SeatState, UserId};
    use crate::store::records::SeatRecord;
    use crate::store::Store;

    fn id<T: Id>(n: u64) -> T {
        T::new(n).unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn a_head_that_is_not_on_the_chain_means_entries_are_missing_at_its_end() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, _) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let tenant: TenantId = id(1);
        let mut head = [0; 32];
        let mut heads = Vec::new();
        for n in 1..=3u64 {
            let at = Timestamp::from_micros(n as i64);
            let audit = Audit {
                id: id::<AuditId>(n),
                seat_id: id(7),
                previous_state: Some(SeatState::Free),
                new_state: SeatState::Free,
                previous_learner_id: None,
                new_learner_id: None,
                changed_by: UserId::parse("u").unwrap_or_else(|_| unreachable!()),
                reason: "r".into(),
                created_at: at,
            };
            let record = SeatRecord {
                tenant_id: tenant,
                state: SeatState::Free,
                learner_id: None,
                reserved_at: None,
                assigned_at: None,
                updated_at: at,
            };
            head = chain(&head, tenant, &audit);
            heads.push(head);
            store
                .put_seat_change(tenant, id(7), &record, &audit, head)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let walked = |h| walk(&store.db, tenant, h).unwrap_or_else(|e| panic!("{e}"));
        assert!(walked(None).intact);
        assert!(walked(Some(heads[1])).intact, "an older head is on the chain");
        assert_eq!(walked(Some(head)).entries, 3);
        let cut = walked(Some([9; 32]));
        assert!(!cut.intact);
        assert_eq!(cut.first_bad_entry.map(|b| b.audit_id), Some(3));
    }
}
