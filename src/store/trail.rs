//! Reading a tenant's audit trail by key range: pages of entries in time
//! order, a district merged from its schools, and no more work per page than
//! the page (and a bounded scan past filtered-out entries) needs.

use std::ops::Bound;

use super::StoreError;
use crate::domain::{Audit, AuditPage, AuditQuery, Id, Order, TenantId, Timestamp, TrailPos};

use super::records::{self, decode, key, BlockRecord, TrailEntry};
use super::unavailable;

/// How many trail positions one page request may step over (matched or
/// not). Filters (`learnerId`, `changedBy`) have no index of their own: a
/// page stops here and hands out a cursor, so a sparse filter never turns one
/// request into a scan of the whole history.
pub const SCAN_BUDGET: usize = 10_000;

/// One position of the trail, and its entry if the query's filter keeps it.
pub struct Step {
    pub pos: TrailPos,
    pub audit: Option<Audit>,
}

/// The rest of a purchase block still to be stepped through: offsets `lo..hi`.
struct BlockRun {
    record: BlockRecord,
    lo: u64,
    hi: u64,
}

/// One tenant's trail from a position on, in the query's order.
pub struct TrailReader<'q> {
    db: sled::Db,
    query: &'q AuditQuery,
    iter: Option<sled::Iter>,
    block: Option<BlockRun>,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(anyhow::anyhow!("{e}"))
}

impl<'q> TrailReader<'q> {
    pub fn new(db: &sled::Db, tenant: TenantId, query: &'q AuditQuery) -> Result<Self, StoreError> {
        let at_or_min = |t: Option<Timestamp>| t.unwrap_or(Timestamp::from_micros(i64::MIN));
        let mut lower = Bound::Included(records::trail_bound(tenant, at_or_min(query.filter.since), 0));
        let mut upper = match query.filter.until {
            Some(until) => Bound::Excluded(records::trail_bound(tenant, until, 0)),
            None => Bound::Included(records::trail_bound(tenant, Timestamp::from_micros(i64::MAX), u64::MAX)),
        };
        let mut reader = TrailReader {
            db: db.clone(),
            query,
            iter: None,
            block: None,
        };
        // What retention purged is gone, even while (or after a crash cut
        // short) its keys are being removed.
        let purged = super::marks::purged_through(db, tenant)?;
        if let Some(through) = purged {
            if bound_key(&lower) <= &through {
                lower = Bound::Excluded(through);
            }
        }
        if let Some(after) = query.after {
            let at = records::trail_bound(tenant, after.at, after.id);
            match query.order {
                Order::Asc => {
                    if bound_key(&lower) <= &at {
                        lower = Bound::Excluded(at);
                    }
                    // A block is keyed by its first id: one the cursor points
                    // into starts before the range and is picked up here.
                    let from = records::trail_bound(tenant, after.at, 0);
                    if let Some(item) = db.range(from..=at).next_back() {
                        let (k, v) = item.map_err(unavailable)?;
                        let live = purged.is_none_or(|through| k.as_ref() > through.as_slice());
                        if let TrailEntry::Block { first_seat, .. } = decode(&k, &v).map_err(corrupt)? {
                            if live {
                                reader.block = Some(reader.run(first_seat)?);
                            }
                        }
                    }
                }
                Order::Desc => {
                    if &at <= bound_key(&upper) {
                        upper = Bound::Excluded(at);
                    }
                }
            }
        }
        let empty = match (&lower, &upper) {
            (Bound::Included(l), Bound::Included(u)) => l > u,
            (l, u) => bound_key(l) >= bound_key(u),
        };
        if !empty {
            reader.iter = Some(db.range((lower, upper)));
        }
        Ok(reader)
    }

    /// The part of a purchase block that lies after the cursor (in order)
    /// and inside the time window.
    fn run(&self, first_seat: crate::domain::SeatId) -> Result<BlockRun, StoreError> {
        let k = key(records::BLOCK, first_seat.get());
        let v = self
            .db
            .get(k)
            .map_err(unavailable)?
            .ok_or_else(|| corrupt(format!("trail entry names a missing block {}", records::show_key(&k))))?;
        let record: BlockRecord = decode(&k, &v).map_err(corrupt)?;
        let (mut lo, mut hi) = (0, record.count);
        if let Some(after) = self.query.after.filter(|a| a.at == record.created_at) {
            let first = record.first_audit.get();
            let cut = after.id.saturating_sub(first);
            match self.query.order {
                Order::Asc if after.id >= first => lo = cut.saturating_add(1).min(hi),
                Order::Desc if after.id >= first => hi = cut.min(hi),
                Order::Desc => hi = 0,
                Order::Asc => {}
            }
        }
        if !self.query.filter.in_window(record.created_at) {
            hi = lo;
        }
        Ok(BlockRun { record, lo, hi })
    }

    pub fn next_step(&mut self) -> Result<Option<Step>, StoreError> {
        loop {
            if let Some(run) = &mut self.block {
                if run.lo < run.hi {
                    let offset = match self.query.order {
                        Order::Asc => {
                            run.lo += 1;
                            run.lo - 1
                        }
                        Order::Desc => {
                            run.hi -= 1;
                            run.hi
                        }
                    };
                    let filter = &self.query.filter;
                    // Derived entries carry no learner: a learner filter, or
                    // another author, rules the rest of the block out at once.
                    if filter.learner.is_some()
                        || filter.changed_by.as_ref().is_some_and(|u| *u != run.record.changed_by)
                    {
                        let last = match self.query.order {
                            Order::Asc => run.hi - 1,
                            Order::Desc => run.lo,
                        };
                        let pos = TrailPos {
                            at: run.record.created_at,
                            id: run.record.first_audit.get() + last,
                        };
                        self.block = None;
                        return Ok(Some(Step { pos, audit: None }));
                    }
                    let audit = run.record.purchase_audit(offset);
                    return Ok(Some(Step {
                        pos: TrailPos::of(&audit),
                        audit: Some(audit),
                    }));
                }
                self.block = None;
            }
            let Some(iter) = &mut self.iter else {
                return Ok(None);
            };
            let item = match self.query.order {
                Order::Asc => iter.next(),
                Order::Desc => iter.next_back(),
            };
            let Some(item) = item else {
                self.iter = None;
                return Ok(None);
            };
            let (k, v) = item.map_err(unavailable)?;
            let (at, id) = records::trail_key_parts(&k).ok_or_else(|| corrupt("bad trail key"))?;
            match decode::<TrailEntry>(&k, &v).map_err(corrupt)? {
                TrailEntry::Seat { seat, .. } => {
                    let Some(audit) = self.audit(seat, id)? else {
                        // Purged since the iterator read the key (a purge
                        // removes the record, then the trail key, after
                        // writing the checkpoint): as if never seen.
                        let tenant = records::key_id(&k).and_then(TenantId::new);
                        let purged = match tenant {
                            Some(t) => super::marks::covers(&self.db, t, at, id)?,
                            None => false,
                        };
                        if !purged && self.db.contains_key(&k).map_err(unavailable)? {
                            return Err(corrupt(format!(
                                "trail entry {} names a missing audit record",
                                records::show_key(&k)
                            )));
                        }
                        continue;
                    };
                    let keep = self.query.filter.matches(&audit);
                    return Ok(Some(Step {
                        pos: TrailPos { at, id },
                        audit: keep.then_some(audit),
                    }));
                }
                TrailEntry::Block { first_seat, .. } => self.block = Some(self.run(first_seat)?),
            }
        }
    }

    fn audit(&self, seat: crate::domain::SeatId, id: u64) -> Result<Option<Audit>, StoreError> {
        let k = records::audit_key(
            seat,
            crate::domain::AuditId::new(id).ok_or_else(|| corrupt("audit id 0"))?,
        );
        match self.db.get(k).map_err(unavailable)? {
            None => Ok(None),
            Some(v) => decode(&k, &v).map(Some).map_err(corrupt),
        }
    }
}

fn bound_key(b: &Bound<[u8; 25]>) -> &[u8; 25] {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => k,
        Bound::Unbounded => unreachable!("trail ranges are always bounded"),
    }
}

/// A page over several tenants' trails (a district and its schools), merged
/// by position: each step takes the smallest (asc) or largest (desc) of the
/// readers' next positions. The cursor is the last position stepped over, so
/// every position before it (in order) has been seen, in every tenant.
pub fn page(db: &sled::Db, tenants: &[TenantId], query: &AuditQuery, budget: usize) -> Result<AuditPage, StoreError> {
    let mut readers = Vec::with_capacity(tenants.len());
    for &tenant in tenants {
        let mut reader = TrailReader::new(db, tenant, query)?;
        let head = reader.next_step()?;
        readers.push((reader, head));
    }
    let mut items = Vec::new();
    let mut last = None;
    let mut steps = 0;
    while items.len() < query.limit && steps < budget {
        let next = readers
            .iter()
            .enumerate()
            .filter_map(|(i, (_, head))| head.as_ref().map(|s| (i, s.pos)))
            .reduce(|a, b| match query.order {
                Order::Asc if b.1 < a.1 => b,
                Order::Desc if b.1 > a.1 => b,
                _ => a,
            });
        let Some((i, _)) = next else { break };
        let (reader, head) = &mut readers[i];
        let step = std::mem::replace(head, reader.next_step()?);
        if let Some(step) = step {
            last = Some(step.pos);
            items.extend(step.audit);
        }
        steps += 1;
    }
    let more = readers.iter().any(|(_, head)| head.is_some());
    Ok(AuditPage {
        items,
        next_cursor: last.filter(|_| more).map(TrailPos::cursor),
    })
}

/// A page over one seat's entries (all read: a seat's history is short).
pub fn seat_page(mut entries: Vec<Audit>, query: &AuditQuery) -> AuditPage {
    entries.retain(|a| query.filter.matches(a));
    entries.sort_by_key(TrailPos::of);
    if query.order == Order::Desc {
        entries.reverse();
    }
    if let Some(after) = query.after {
        entries.retain(|a| match query.order {
            Order::Asc => TrailPos::of(a) > after,
            Order::Desc => TrailPos::of(a) < after,
        });
    }
    let more = entries.len() > query.limit;
    entries.truncate(query.limit);
    let next_cursor = entries.last().filter(|_| more).map(|a| TrailPos::of(a).cursor());
    AuditPage {
        items: entries,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuditFilter, AuditId, LearnerId, SeatId, SeatState, UserId};
    use crate::store::records::SeatRecord;
    use crate::store::Store;

    fn id<T: Id>(n: u64) -> T {
        T::new(n).unwrap_or_else(|| unreachable!())
    }

    /// Two tenants' trails, interleaved: purchase blocks and single changes,
    /// with times that tie, learners and authors drawn from small sets.
    fn build(store: &Store) -> Vec<(TenantId, Audit)> {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut all = Vec::new();
        let (mut seat, mut audit) = (1u64, 1u64);
        let mut clock = [100i64, 100];
        let mut owned: [Vec<SeatId>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..60 {
            let t = next(2) as usize;
            let tenant: TenantId = id(t as u64 + 1);
            clock[t] += next(3) as i64; // 0 makes ties
            let at = Timestamp::from_micros(clock[t]);
            let by = UserId::parse(if next(2) == 0 { "a" } else { "b" }).unwrap_or_else(|_| unreachable!());
            if owned[t].is_empty() || next(3) == 0 {
                let count = 1 + next(5);
                let block = BlockRecord {
                    tenant_id: tenant,
                    first_seat: id(seat),
                    count,
                    first_audit: id(audit),
                    created_at: at,
                    changed_by: by,
                };
                store
                    .put_block(&block, None, [0; 32], None, None)
                    .unwrap_or_else(|e| panic!("{e}"));
                for i in 0..count {
                    all.push((tenant, block.purchase_audit(i)));
                    owned[t].push(id(seat + i));
                }
                seat += count;
                audit += count;
            } else {
                let s = owned[t][next(owned[t].len() as u64) as usize];
                let learner = LearnerId::parse(["x", "y", "z"][next(3) as usize]).ok();
                let entry = Audit {
                    id: id::<AuditId>(audit),
                    seat_id: s,
                    previous_state: Some(SeatState::Free),
                    new_state: SeatState::Assigned,
                    previous_learner_id: None,
                    new_learner_id: learner.clone(),
                    changed_by: by,
                    reason: "r".into(),
                    created_at: at,
                };
                let record = SeatRecord {
                    tenant_id: tenant,
                    state: SeatState::Assigned,
                    learner_id: learner,
                    reserved_at: None,
                    assigned_at: Some(at),
                    updated_at: at,
                    reserved_until: None,
                    expires_at: None,
                };
                store
                    .put_seat_change(tenant, s, &record, &entry, [0; 32])
                    .unwrap_or_else(|e| panic!("{e}"));
                all.push((tenant, entry));
                audit += 1;
            }
        }
        all
    }

    #[test]
    fn every_walk_sees_each_matching_entry_once_in_order_whatever_the_page_and_budget() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (store, _) = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let all = build(&store);
        let filters = [
            AuditFilter::default(),
            AuditFilter {
                learner: LearnerId::parse("y").ok(),
                ..AuditFilter::default()
            },
            AuditFilter {
                changed_by: UserId::parse("b").ok(),
                ..AuditFilter::default()
            },
            AuditFilter {
                since: Some(Timestamp::from_micros(110)),
                until: Some(Timestamp::from_micros(130)),
                ..AuditFilter::default()
            },
        ];
        for scope in [vec![id::<TenantId>(1)], vec![id(2)], vec![id(1), id(2)]] {
            for filter in &filters {
                for order in [Order::Asc, Order::Desc] {
                    let mut want: Vec<&Audit> = all
                        .iter()
                        .filter(|(t, a)| scope.contains(t) && filter.matches(a))
                        .map(|(_, a)| a)
                        .collect();
                    want.sort_by_key(|a| TrailPos::of(a));
                    if order == Order::Desc {
                        want.reverse();
                    }
                    for (limit, budget) in [(1, 1), (1, 1000), (3, 2), (7, 5), (1000, 1000)] {
                        let mut query = AuditQuery {
                            tenant: None,
                            seat: None,
                            filter: filter.clone(),
                            order,
                            limit,
                            after: None,
                        };
                        let mut got = Vec::new();
                        for _ in 0..10_000 {
                            let p = page(&store.db, &scope, &query, budget).unwrap_or_else(|e| panic!("{e}"));
                            assert!(p.items.len() <= limit);
                            got.extend(p.items);
                            match p.next_cursor {
                                Some(c) => {
                                    query.after = Some(TrailPos::parse_cursor(&c).unwrap_or_else(|e| panic!("{e}")))
                                }
                                None => break,
                            }
                        }
                        let got: Vec<&Audit> = got.iter().collect();
                        assert_eq!(
                            got, want,
                            "{scope:?} {filter:?} {order:?} limit {limit} budget {budget}"
                        );
                    }
                }
            }
        }
    }
}
