//! Whose a seat's audit entries are. A seat belongs to the tenant that
//! bought it (its block says so) until a transfer moves it; each move is an
//! `OWNER` key naming the source's last entry for the seat and the tenant it
//! went to. Entries up to that id are on the earlier owner's trail, later
//! ones on the next owner's. Moves are few beside seats: read whole.

use std::collections::HashMap;

use crate::domain::{Id, SeatId, TenantId};

use super::records::{self, decode};
use super::ScanError;

/// Every seat's moves, oldest first.
#[derive(Debug, Default)]
pub(super) struct Owners(HashMap<SeatId, Vec<Move>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Move {
    /// The id of the source's entry that moved the seat out.
    pub out: u64,
    pub to: TenantId,
}

impl Owners {
    pub fn read(db: &sled::Db) -> Result<Owners, ScanError> {
        let mut owners: HashMap<SeatId, Vec<Move>> = HashMap::new();
        for item in db.scan_prefix([records::OWNER]) {
            let (k, v) = item?;
            let (seat, out) = match (records::key_id(&k).and_then(SeatId::new), records::owner_key_audit(&k)) {
                (Some(seat), Some(out)) => (seat, out),
                _ => return Err(super::corrupt(&k, "bad key")),
            };
            let to: TenantId = decode(&k, &v).map_err(ScanError::Decode)?;
            // Keys sort by seat, then id: each seat's moves come in order.
            owners.entry(seat).or_default().push(Move { out, to });
        }
        Ok(Owners(owners))
    }

    /// `read`, leaving out what does not decode (for `verify`, which names
    /// what is wrong on a tenant's chain rather than stopping at it).
    pub fn read_lenient(db: &sled::Db) -> Result<Owners, sled::Error> {
        let mut owners: HashMap<SeatId, Vec<Move>> = HashMap::new();
        for item in db.scan_prefix([records::OWNER]) {
            let (k, v) = item?;
            let seat = records::key_id(&k).and_then(SeatId::new);
            let to = decode::<TenantId>(&k, &v).ok();
            if let (Some(seat), Some(out), Some(to)) = (seat, records::owner_key_audit(&k), to) {
                owners.entry(seat).or_default().push(Move { out, to });
            }
        }
        Ok(Owners(owners))
    }

    /// One seat's moves, oldest first.
    pub fn of_seat(db: &sled::Db, seat: SeatId) -> Result<Vec<Move>, ScanError> {
        let mut moves = Vec::new();
        for item in db.scan_prefix(records::key(records::OWNER, seat.get())) {
            let (k, v) = item?;
            let out = records::owner_key_audit(&k).ok_or_else(|| super::corrupt(&k, "bad key"))?;
            let to: TenantId = decode(&k, &v).map_err(ScanError::Decode)?;
            moves.push(Move { out, to });
        }
        Ok(moves)
    }

    /// The tenant whose trail holds the seat's entry `id`; `buyer` bought it.
    pub fn at(&self, seat: SeatId, id: u64, buyer: TenantId) -> TenantId {
        owner_at(self.0.get(&seat).map_or(&[], Vec::as_slice), id, buyer)
    }

    /// The seats that ever moved to `tenant`, in id order.
    pub fn received(&self, tenant: TenantId) -> Vec<SeatId> {
        let mut seats: Vec<SeatId> = self
            .0
            .iter()
            .filter(|(_, moves)| moves.iter().any(|m| m.to == tenant))
            .map(|(seat, _)| *seat)
            .collect();
        seats.sort_unstable();
        seats
    }

    /// One seat's moves, oldest first.
    pub fn moves(&self, seat: SeatId) -> &[Move] {
        self.0.get(&seat).map_or(&[], Vec::as_slice)
    }
}

/// The owner of a seat's entry `id`, given its moves (oldest first).
pub(super) fn owner_at(moves: &[Move], id: u64, buyer: TenantId) -> TenantId {
    moves.iter().take_while(|m| m.out < id).last().map_or(buyer, |m| m.to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_belongs_to_the_owner_after_the_last_move_before_it() {
        let t = |n| TenantId::new(n).unwrap_or_else(|| unreachable!());
        let moves = [Move { out: 10, to: t(2) }, Move { out: 20, to: t(3) }];
        assert_eq!(owner_at(&moves, 5, t(1)), t(1));
        assert_eq!(owner_at(&moves, 10, t(1)), t(1), "the move's own entry is the source's");
        assert_eq!(owner_at(&moves, 11, t(1)), t(2));
        assert_eq!(owner_at(&moves, 20, t(1)), t(2));
        assert_eq!(owner_at(&moves, 21, t(1)), t(3));
        assert_eq!(owner_at(&[], 21, t(1)), t(1));
    }
}
