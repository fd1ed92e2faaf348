//! Stored answers (`Idempotency-Key`): written with the change they answer,
//! read back for a retry, restored at start, purged after their retention.
//!
//! sled recovers a prefix of its log, so what is written before a change's
//! commit point survives whenever the change does. A change asked for with
//! a key writes, in order, the answer body's parts (only when it is too
//! large to keep inline), then either
//! - (seat changes, bulk changes, purchases, roles: the hot and the many)
//!   the answer's key, naming its `Witness`, then the change: an answer
//!   whose witness is missing answered a change a crash took back, and is
//!   none; or
//! - (tenants and thresholds, whose records name no change of their own)
//!   the change's commit point with the answer's head as its tail
//!   (`records::AnswerTail`), then the answer's key, which start restores
//!   from the tail if a crash came between.

use sled::Db;

use crate::domain::{Answer, AnswerKey, Id, SeatId, Tenant, TenantId, Threshold, Timestamp};

use super::records::{
    self, answer_key, answer_part_key, decode, decode_tailed, encode, key, AnswerHead, AnswerPart, AnswerTail, Witness,
    BULK_PART_BYTES,
};
use super::{marks, unavailable, ScanError, Seq, Store, StoreError};

/// An answer laid out for writing.
pub(super) struct Planned {
    pub tail: AnswerTail,
    /// `(key, value)` of each part, empty when the body is inline.
    parts: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Planned {
    pub fn new(answer: &Answer, witness: Option<Witness>) -> Planned {
        let (inline, parts) = if answer.body.len() <= BULK_PART_BYTES {
            (answer.body.clone(), Vec::new())
        } else {
            let parts = answer
                .body
                .chunks(BULK_PART_BYTES)
                .enumerate()
                .map(|(n, bytes)| {
                    let part = AnswerPart {
                        at: answer.at,
                        bytes: bytes.to_vec(),
                    };
                    (answer_part_key(&answer.key, n as u32).to_vec(), encode(&part))
                })
                .collect();
            (Vec::new(), parts)
        };
        let head = AnswerHead {
            fingerprint: answer.fingerprint,
            at: answer.at,
            status: answer.status,
            parts: parts.len() as u32,
            inline,
            witness,
        };
        Planned {
            tail: AnswerTail { key: answer.key, head },
            parts,
        }
    }
}

impl Store {
    /// Before a change's commit point: the answer's parts and key, its
    /// `witness` the change's own key.
    pub(super) fn answer_before(&self, answer: Option<&Answer>, witness: Witness) -> Result<(), StoreError> {
        if let Some(answer) = answer {
            let planned = Planned::new(answer, Some(witness));
            self.answer_parts(Some(&planned))?;
            self.answer_index(Some(&planned))?;
        }
        Ok(())
    }

    /// Before a change's commit point: the answer's parts, if any.
    pub(super) fn answer_parts(&self, planned: Option<&Planned>) -> Result<(), StoreError> {
        for (k, v) in planned.into_iter().flat_map(|p| &p.parts) {
            self.db.insert(k.as_slice(), v.as_slice()).map_err(unavailable)?;
        }
        Ok(())
    }

    /// After a change's followers: the answer's key.
    pub(super) fn answer_index(&self, planned: Option<&Planned>) -> Result<(), StoreError> {
        if let Some(p) = planned {
            self.db
                .insert(answer_key(&p.tail.key), encode(&p.tail.head))
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// The answer to a request that changed nothing (it has no commit point
    /// to ride on): its parts, then its key.
    pub fn put_answer(&self, answer: &Answer) -> Result<Seq, StoreError> {
        self.writable()?;
        let planned = Planned::new(answer, None);
        self.answer_parts(Some(&planned))?;
        self.answer_index(Some(&planned))?;
        Ok(self.commit.wrote())
    }

    /// The answer stored under `key`, if any (however old: the caller
    /// decides what has expired), and if its change is there.
    pub fn answer(&self, key: &AnswerKey) -> Result<Option<Answer>, StoreError> {
        let k = answer_key(key);
        let Some(v) = self.db.get(k).map_err(unavailable)? else {
            return Ok(None);
        };
        let head: AnswerHead = decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
        if let Some(witness) = head.witness {
            if !self.witnessed(witness)? {
                return Ok(None);
            }
        }
        let mut body = head.inline;
        for n in 0..head.parts {
            let pk = answer_part_key(key, n);
            let part = self
                .db
                .get(pk)
                .map_err(unavailable)?
                .ok_or_else(|| StoreError::Internal(anyhow::anyhow!("answer part {n} is missing")))?;
            let part: AnswerPart = decode(&pk, &part).map_err(|e| StoreError::Internal(e.into()))?;
            body.extend_from_slice(&part.bytes);
        }
        Ok(Some(Answer {
            key: *key,
            fingerprint: head.fingerprint,
            at: head.at,
            status: head.status,
            body,
        }))
    }

    /// Removes the answers given before `before`, and parts whose answer
    /// was never written (a crash between them) from before then. The mark
    /// goes first, so start never restores what a purge took. Returns how
    /// many answers went; writes nothing when there is nothing to purge.
    pub fn purge_answers(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut old = Vec::new();
        for item in self.db.scan_prefix([records::ANSWER]) {
            let (k, v) = item.map_err(unavailable)?;
            let head: AnswerHead = decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
            if head.at < before {
                old.push(k);
            }
        }
        let parts = self.db.scan_prefix([records::ANSWER_PART]).next().is_some();
        if old.is_empty() && !parts {
            return Ok(0);
        }
        self.writable()?;
        self.db
            .insert(key(records::ANSWER_PURGE, 0), encode(&before))
            .map_err(unavailable)?;
        for k in &old {
            self.db.remove(k).map_err(unavailable)?;
        }
        for item in self.db.scan_prefix([records::ANSWER_PART]) {
            let (k, v) = item.map_err(unavailable)?;
            let part: AnswerPart = decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
            let head = k.get(..33).map(|h| {
                let mut head = h.to_vec();
                head[0] = records::ANSWER;
                head
            });
            let orphan = match head {
                Some(head) => !self.db.contains_key(head).map_err(unavailable)?,
                None => true,
            };
            if part.at < before && orphan {
                self.db.remove(&k).map_err(unavailable)?;
            }
        }
        Ok(old.len())
    }
}

impl Store {
    /// Whether the change a witness names is there (or was, before a
    /// retention purge took its key).
    fn witnessed(&self, witness: Witness) -> Result<bool, StoreError> {
        witnessed(&self.db, witness)
    }
}

/// Whether the change a witness names is there (or was, before a
/// retention purge took its key).
pub(super) fn witnessed(db: &Db, witness: Witness) -> Result<bool, StoreError> {
    let there = |k: &[u8]| db.contains_key(k).map_err(unavailable);
    match witness {
        Witness::Audit { seat, audit, at } => {
            if there(&records::audit_key(seat, audit))? {
                return Ok(true);
            }
            // Purged: its tenant's checkpoint covers it. The seat's
            // buyer is in its block, which is never removed, and its
            // later owners in its moves.
            let moves = super::owners::Owners::of_seat(db, seat).map_err(super::ScanError::into_store)?;
            let tenant = block_tenant(db, seat)?.map(|buyer| super::owners::owner_at(&moves, audit.get(), buyer));
            Ok(match tenant {
                Some(t) => marks::checkpoint(db, t)?.is_some_and(|cp| cp.covers(at, audit.get())),
                None => false,
            })
        }
        Witness::Block { first_seat } => there(&key(records::BLOCK, first_seat.get())),
        Witness::RoleEvent { tenant, event, at } => Ok(there(&records::role_event_key(tenant, event))?
            || marks::role_purge(db, tenant)?.is_some_and(|before| at < before)),
    }
}

/// The tenant whose purchase block holds `seat`.
fn block_tenant(db: &Db, seat: SeatId) -> Result<Option<TenantId>, StoreError> {
    let Some((k, v)) = db.get_lt(key(records::BLOCK, seat.get() + 1)).map_err(unavailable)? else {
        return Ok(None);
    };
    if k.first() != Some(&records::BLOCK) {
        return Ok(None);
    }
    let block: records::BlockRecord = decode(&k, &v).map_err(|e| StoreError::Internal(e.into()))?;
    Ok(Some(block.tenant_id).filter(|_| block.first_seat.get() + block.count > seat.get()))
}

/// At start: the answer key of every tail found, where a crash kept it from
/// being written (and no purge has taken it since). `seat_tails` are those
/// found on seat and bulk commit points by the rest of start (none are
/// written now: those answers go before their change, with a witness); the
/// commit points that carry tails, tenants and thresholds, are few and read
/// here.
pub(super) fn restore(db: &Db, seat_tails: Vec<AnswerTail>) -> Result<usize, ScanError> {
    let purged_before: Option<Timestamp> = match db.get(key(records::ANSWER_PURGE, 0))? {
        Some(v) => Some(decode(&key(records::ANSWER_PURGE, 0), &v).map_err(ScanError::Decode)?),
        None => None,
    };
    let mut tails = seat_tails;
    // A tenant is stored with its roster `sourcedId` after it; a record
    // from before that extension can carry no tail.
    for item in db.scan_prefix([records::TENANT]) {
        let (k, v) = item?;
        let base: Tenant = decode(&k, &v).map_err(ScanError::Decode)?;
        let unextended = bincode::serialized_size(&base).is_ok_and(|n| n + 1 == v.len() as u64);
        if !unextended {
            let (_, tail) = decode_tailed::<(Tenant, Option<String>)>(&k, &v).map_err(ScanError::Decode)?;
            tails.extend(tail);
        }
    }
    tails.extend(tails_of::<Threshold>(db, records::THRESHOLD)?);
    let mut restored = 0;
    for tail in tails {
        if purged_before.is_some_and(|before| tail.head.at < before) {
            continue;
        }
        let k = answer_key(&tail.key);
        if !db.contains_key(k)? {
            db.insert(k, encode(&tail.head))?;
            restored += 1;
        }
    }
    Ok(restored)
}

fn tails_of<T: serde::de::DeserializeOwned>(db: &Db, kind: u8) -> Result<Vec<AnswerTail>, ScanError> {
    let mut out = Vec::new();
    for item in db.scan_prefix([kind]) {
        let (k, v) = item?;
        if let (_, Some(tail)) = decode_tailed::<T>(&k, &v).map_err(ScanError::Decode)? {
            out.push(tail);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::records::{answer_key, answer_part_key};
    use super::super::{OpenError, Store};
    use crate::domain::{Answer, AnswerKey, Id, Tenant, TenantId, TenantKind, TenantName, Timestamp};

    fn reopen(dir: &std::path::Path) -> std::sync::Arc<Store> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Store::open(dir) {
                Ok((store, _)) => return store,
                Err(OpenError::Locked(_)) if std::time::Instant::now() < deadline => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn answer(key: &str, body_len: usize, at: Timestamp) -> Answer {
        Answer {
            key: AnswerKey::new("caller", key),
            fingerprint: [7; 32],
            at,
            status: 201,
            body: (0..body_len).map(|i| (i % 251) as u8).collect(),
        }
    }

    fn tenant(n: u64, at: Timestamp) -> Tenant {
        Tenant {
            id: TenantId::new(n).expect("id"),
            name: TenantName::parse(format!("T{n}")).expect("name"),
            kind: TenantKind::District,
            parent_id: None,
            created_at: at,
            updated_at: at,
            is_active: true,
            sourced_id: None,
        }
    }

    /// A crash after a change's commit point and before its answer key:
    /// start restores the answer from the commit point's tail (its parts,
    /// written before the commit point, are there); a purge is never undone.
    #[test]
    fn an_answer_lost_after_its_change_is_restored_and_a_purged_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let at = Timestamp::now();
        let (small, large) = (answer("small", 300, at), answer("large", 10_000, at));
        {
            let (store, _) = Store::open(dir.path()).expect("open");
            store.put_tenant(&tenant(1, at), Some(&small)).expect("put");
            store.put_tenant(&tenant(2, at), Some(&large)).expect("put");
            assert_eq!(store.answer(&large.key).expect("read").as_ref(), Some(&large));
            assert!(store.db.contains_key(answer_part_key(&large.key, 2)).expect("read"));
            for a in [&small, &large] {
                store.db.remove(answer_key(&a.key)).expect("remove");
            }
            assert_eq!(store.answer(&small.key).expect("read"), None);
            store.close();
        }
        let store = reopen(dir.path());
        assert_eq!(store.answer(&small.key).expect("read").as_ref(), Some(&small));
        assert_eq!(store.answer(&large.key).expect("read").as_ref(), Some(&large));

        let later = Timestamp::from_micros(at.micros() + 1);
        assert_eq!(store.purge_answers(later).expect("purge"), 2);
        assert_eq!(store.answer(&large.key).expect("read"), None);
        assert!(
            !store.db.contains_key(answer_part_key(&large.key, 0)).expect("read"),
            "parts go with their answer"
        );
        store.close();
        drop(store);
        let store = reopen(dir.path());
        assert_eq!(
            store.answer(&small.key).expect("read"),
            None,
            "a purge is not undone at start"
        );
        assert_eq!(store.answer(&large.key).expect("read"), None);
        store.close();
    }

    /// An answer written before its change, then a crash before the change:
    /// its witness never appears, so it is no answer (the retry runs again).
    #[test]
    fn an_answer_whose_change_never_came_is_none() {
        use super::super::records::{audit_key, encode, Witness};
        use crate::domain::{AuditId, SeatId};
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let at = Timestamp::now();
        let (seat, audit) = (SeatId::new(5).expect("id"), AuditId::new(9).expect("id"));
        for (key, len) in [("small", 200), ("large", 9_000)] {
            let a = answer(key, len, at);
            store
                .answer_before(Some(&a), Witness::Audit { seat, audit, at })
                .expect("put");
            assert_eq!(store.answer(&a.key).expect("read"), None, "{key}: no change, no answer");
            store.db.insert(audit_key(seat, audit), encode(&0u8)).expect("insert");
            assert_eq!(store.answer(&a.key).expect("read").as_ref(), Some(&a), "{key}");
            store.db.remove(audit_key(seat, audit)).expect("remove");
        }
        store.close();
    }

    /// Parts whose answer key was never written (a crash before the commit
    /// point) are dropped by a purge once past the retention, not before.
    #[test]
    fn orphan_parts_are_purged_once_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = Store::open(dir.path()).expect("open");
        let at = Timestamp::now();
        let orphan = answer("orphan", 9_000, at);
        store.put_answer(&orphan).expect("put");
        store.db.remove(answer_key(&orphan.key)).expect("remove");
        let part = answer_part_key(&orphan.key, 0);
        store.purge_answers(at).expect("purge");
        assert!(store.db.contains_key(part).expect("read"), "not yet past its retention");
        store
            .purge_answers(Timestamp::from_micros(at.micros() + 1))
            .expect("purge");
        assert!(!store.db.contains_key(part).expect("read"));
        store.close();
    }
}
