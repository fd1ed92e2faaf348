//! Listings, lookups and the export: pages of a tenant's seats (a
//! district's include its schools'), a learner's seats in every tenant the
//! caller may read, the districts in the caller's reach, pages of a tenant's
//! roles and role trail, and the pages the seat export streams.
//!
//! Every listing pages the same way: `limit` items in id order after a
//! cursor, and a `next_cursor` (the last item's id, tagged by listing) that
//! is null once nothing follows. Ids never change and are never reused, so
//! following the cursors visits every item that exists throughout exactly
//! once, whatever changes meanwhile.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{future, stream, Stream, StreamExt};
use serde::Serialize;

use crate::domain::{
    AuditQuery, Caller, EventId, Id, Invalid, LearnerId, Role, RoleEvent, RoleId, Seat, SeatId, Tenant, TenantId,
};

use super::actor;
use super::durable::Durable;
use super::error::{Error, Missing};
use super::pool::{SeatFilter, SeatRun};
use super::{Action, Engine};

/// Tenants whose actors a learner lookup asks at once.
const LOOKUP_FAN_OUT: usize = 16;

/// How often an export page is tried again while its tenant's mailbox is
/// full (a failure mid-stream cuts the client's file short), and how long
/// it waits in between.
const EXPORT_TRIES: u32 = 50;
const EXPORT_BACKOFF: Duration = Duration::from_millis(20);

/// Which listing a cursor continues: a cursor handed out by one listing is
/// refused by the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Seats,
    Districts,
    Roles,
    RoleEvents,
}

impl Listing {
    fn tag(self) -> char {
        match self {
            Listing::Seats => 's',
            Listing::Districts => 'd',
            Listing::Roles => 'r',
            Listing::RoleEvents => 'e',
        }
    }

    /// The opaque `next_cursor` after the item with this id: the listing's
    /// tag and the id in hex. Clients pass it back unchanged; its shape is
    /// not part of the contract.
    fn cursor(self, id: u64) -> String {
        format!("{}{id:x}", self.tag())
    }

    fn parse_cursor(self, raw: &str) -> Result<u64, Invalid> {
        let bad = || Invalid::new("cursor", "is not a cursor this service handed out");
        let hex = raw.strip_prefix(self.tag()).ok_or_else(bad)?;
        Some(hex)
            .filter(|h| (1..=16).contains(&h.len()) && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .filter(|id| *id > 0)
            .ok_or_else(bad)
    }
}

/// Which page of a listing: at most `limit` items after the item `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// 1 to 1000 (default 100), as for audit pages.
    pub limit: usize,
    /// The id of the previous page's last item (`None`: the first page).
    pub after: Option<u64>,
}

impl Paging {
    /// From the query's raw `limit` and `cursor`.
    pub fn parse(listing: Listing, limit: Option<&str>, cursor: Option<&str>) -> Result<Paging, Invalid> {
        Ok(Paging {
            limit: AuditQuery::parse_limit(limit)?,
            after: cursor.map(|c| listing.parse_cursor(c)).transpose()?,
        })
    }

    /// As `parse`, or `None` when neither is given: the listings that
    /// answered one whole array before paging existed keep doing so then.
    pub fn parse_optional(
        listing: Listing,
        limit: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<Option<Paging>, Invalid> {
        if limit.is_none() && cursor.is_none() {
            return Ok(None);
        }
        Self::parse(listing, limit, cursor).map(Some)
    }
}

/// One page of a listing: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Null when nothing follows; otherwise pass it back as `cursor`.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    fn new(items: Vec<T>, more: bool, listing: Listing, id: impl Fn(&T) -> u64) -> Page<T> {
        let next_cursor = items.last().filter(|_| more).map(|last| listing.cursor(id(last)));
        Page { items, next_cursor }
    }
}

impl Engine {
    /// A page of a tenant's seats in id order; a district's include its
    /// schools'. Each of the family's actors hands over at most `limit`
    /// seats after the cursor, and the page is the first `limit` of them all.
    pub async fn seats(
        &self,
        caller: &Caller,
        tenant: TenantId,
        filter: SeatFilter,
        paging: Paging,
    ) -> Result<Durable<Page<Seat>>, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let after = paging.after.and_then(SeatId::new);
        let run = self
            .seat_run(&self.directory.family(tenant), after, &filter, paging.limit)
            .await?;
        // Every run was read once durable.
        Ok(Durable::ready(Page::new(run.seats, run.more, Listing::Seats, |s| {
            s.id.get()
        })))
    }

    /// The first `limit` seats of a family of tenants after `after`, merged
    /// in id order, each actor's reply once durable.
    async fn seat_run(
        &self,
        family: &[TenantId],
        after: Option<SeatId>,
        filter: &SeatFilter,
        limit: usize,
    ) -> Result<SeatRun, Error> {
        let runs = future::join_all(family.iter().map(|tenant| async move {
            let actor = self.actor(*tenant)?;
            let filter = filter.clone();
            self.read(&actor, actor::ListSeats { after, filter, limit }).await
        }))
        .await;
        let mut merged = SeatRun::default();
        for run in runs {
            let run = run?;
            merged.more |= run.more;
            merged.seats.extend(run.seats);
        }
        if family.len() > 1 {
            merged.seats.sort_unstable_by_key(|s| s.id);
        }
        if merged.seats.len() > limit {
            merged.seats.truncate(limit);
            merged.more = true;
        }
        Ok(merged)
    }

    /// The seat export of a tenant (a district's includes its schools'):
    /// pages of `page_size` seats in id order, each read from the actors
    /// when the stream is polled for it, and yielded only once durable. The
    /// caller is authorized once, before the first page; memory holds one
    /// page at a time, however many seats there are. Not one snapshot: each
    /// page is read at its own moment (every seat appears exactly once, in
    /// the state it had when its page was read).
    pub async fn seat_export(
        self: Arc<Self>,
        caller: &Caller,
        tenant: TenantId,
        page_size: usize,
    ) -> Result<Durable<impl Stream<Item = Result<Vec<Seat>, Error>> + Send + 'static>, Error> {
        self.check(caller, Action::Read, tenant, Missing::Tenant).await?;
        let family = self.directory.family(tenant);
        struct Cursor {
            engine: Arc<Engine>,
            family: Vec<TenantId>,
            after: Option<SeatId>,
            done: bool,
        }
        let start = Cursor {
            engine: self,
            family,
            after: None,
            done: false,
        };
        let pages = stream::unfold(start, move |mut at| async move {
            if at.done {
                return None;
            }
            let run = match at.engine.export_page(&at.family, at.after, page_size).await {
                Ok(run) => run,
                Err(e) => {
                    at.done = true;
                    return Some((Err(e), at));
                }
            };
            at.done = !run.more;
            at.after = run.seats.last().map(|s| s.id).or(at.after);
            (!run.seats.is_empty()).then_some((Ok(run.seats), at))
        });
        Ok(Durable::ready(pages))
    }

    /// One export page; a full mailbox is waited out for a while (the
    /// export cannot be resumed by the client).
    async fn export_page(&self, family: &[TenantId], after: Option<SeatId>, size: usize) -> Result<SeatRun, Error> {
        let mut tries = 1;
        loop {
            match self.seat_run(family, after, &SeatFilter::default(), size).await {
                Err(Error::Overloaded) if tries < EXPORT_TRIES => {
                    tries += 1;
                    tokio::time::sleep(EXPORT_BACKOFF).await;
                }
                other => return other,
            }
        }
    }

    /// The seats a learner holds, in every tenant the caller may read seats
    /// in (and, for the learner themself, in every tenant of the districts
    /// where they hold a role, as `GET /seats/{id}` shows them their own
    /// seat), in id order. One message to each such tenant's actor:
    /// O(tenants), at most `LOOKUP_FAN_OUT` at a time.
    pub async fn learner_seats(&self, caller: &Caller, learner: LearnerId) -> Result<Durable<Vec<Seat>>, Error> {
        let tenants = self.readable_for(caller, &learner).await?;
        let filter = SeatFilter {
            state: None,
            learner: Some(learner),
            expiring_before: None,
        };
        let runs: Vec<Result<SeatRun, Error>> = stream::iter(tenants)
            .map(|tenant| {
                let filter = filter.clone();
                async move {
                    match self.directory.actor(tenant) {
                        Some(actor) => {
                            self.read(
                                &actor,
                                actor::ListSeats {
                                    after: None,
                                    filter,
                                    limit: 1,
                                },
                            )
                            .await
                        }
                        None => Ok(SeatRun::default()),
                    }
                }
            })
            .buffer_unordered(LOOKUP_FAN_OUT)
            .collect()
            .await;
        let mut seats = Vec::new();
        for run in runs {
            seats.extend(run?.seats);
        }
        seats.sort_unstable_by_key(|s| s.id);
        // Every run was read once durable.
        Ok(Durable::ready(seats))
    }

    /// The tenants whose seats of `learner` the caller may see, once the
    /// roles that decide it are durable.
    async fn readable_for(&self, caller: &Caller, learner: &LearnerId) -> Result<Vec<TenantId>, Error> {
        if !self.access.enforce || caller.platform_admin {
            return Ok(self.directory.tenant_ids());
        }
        let (held, seq) = {
            let roles = self.directory.roles_read();
            (roles.active_tenants(&caller.user), roles.latest_for(&caller.user))
        };
        self.store.durable(seq).await?;
        let own = caller.user.as_str() == learner.as_str();
        let districts: BTreeSet<TenantId> = held.into_iter().filter_map(|t| self.directory.district_of(t)).collect();
        Ok(districts
            .into_iter()
            .flat_map(|d| self.directory.family(d))
            .filter(|t| own || self.access.allows(&self.directory, caller, Action::Read, *t))
            .collect())
    }

    /// A page of districts in id order: every district for platform admins
    /// (and when roles are not enforced), otherwise those where the caller
    /// holds an active role in the district or one of its schools.
    pub async fn districts(&self, caller: &Caller, paging: Paging) -> Result<Durable<Page<Tenant>>, Error> {
        let after = paging.after.and_then(TenantId::new);
        let (mut ids, mut seq) = if !self.access.enforce || caller.platform_admin {
            (self.directory.districts_after(after, paging.limit + 1), 0)
        } else {
            let (held, seq) = {
                let roles = self.directory.roles_read();
                (roles.active_tenants(&caller.user), roles.latest_for(&caller.user))
            };
            let districts: BTreeSet<TenantId> = held
                .into_iter()
                .filter_map(|t| self.directory.district_of(t))
                .filter(|d| after.is_none_or(|a| *d > a))
                .collect();
            (districts.into_iter().take(paging.limit + 1).collect(), seq)
        };
        let more = ids.len() > paging.limit;
        ids.truncate(paging.limit);
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((district, s)) = self.directory.tenant(id) {
                seq = seq.max(s);
                items.push(district);
            }
        }
        Ok(Durable::after(
            seq,
            Ok(Page::new(items, more, Listing::Districts, |t| t.id.get())),
        ))
    }

    /// A page of a tenant's roles, active or not, in id order (the order
    /// the whole list has).
    pub async fn tenant_roles_page(
        &self,
        caller: &Caller,
        tenant: TenantId,
        paging: Paging,
    ) -> Result<Durable<Page<Role>>, Error> {
        self.may_list_roles(caller, tenant).await?;
        let after = paging.after.and_then(RoleId::new);
        let (roles, more, seq) = self.directory.roles_read().page_of_tenant(tenant, after, paging.limit);
        Ok(Durable::after(
            seq,
            Ok(Page::new(roles, more, Listing::Roles, |r| r.id.get())),
        ))
    }

    /// A page of a tenant's role grants and deactivations, oldest first.
    pub async fn role_events_page(
        &self,
        caller: &Caller,
        tenant: TenantId,
        paging: Paging,
    ) -> Result<Durable<Page<RoleEvent>>, Error> {
        self.check(caller, Action::ManageRoles, tenant, Missing::Tenant).await?;
        let after = paging.after.and_then(EventId::new);
        let (events, more) = self.store.role_events_page(tenant, after, paging.limit)?;
        Ok(self.scanned(Page::new(events, more, Listing::RoleEvents, |e| e.id.get())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_listing() {
        for listing in [Listing::Seats, Listing::Districts, Listing::Roles, Listing::RoleEvents] {
            for id in [1, 42, 1 << 40, u64::MAX] {
                assert_eq!(listing.parse_cursor(&listing.cursor(id)).ok(), Some(id));
            }
        }
        let seats = Listing::Seats.cursor(7);
        assert!(Listing::Districts.parse_cursor(&seats).is_err());
        for raw in [
            "",
            "s",
            "7",
            "s0",
            "s-1",
            "sG",
            "sA",
            "s 1",
            "s1 ",
            "s11111111111111111",
            "d7",
            "s7.1",
            "s%20",
        ] {
            assert_eq!(
                Listing::Seats.parse_cursor(raw).err().map(|e| e.to_string()).as_deref(),
                Some("cursor is not a cursor this service handed out"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn paging_defaults_and_is_optional_only_when_nothing_is_given() {
        assert_eq!(
            Paging::parse(Listing::Seats, None, None).ok(),
            Some(Paging {
                limit: 100,
                after: None
            })
        );
        assert_eq!(Paging::parse_optional(Listing::Roles, None, None).ok(), Some(None));
        assert_eq!(
            Paging::parse_optional(Listing::Roles, None, Some("r2")).ok(),
            Some(Some(Paging {
                limit: 100,
                after: Some(2)
            }))
        );
        assert!(Paging::parse(Listing::Seats, Some("0"), None).is_err());
        assert!(Paging::parse(Listing::Seats, Some("1001"), None).is_err());
        assert!(Paging::parse_optional(Listing::Roles, Some("x"), None).is_err());
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_follow() {
        let page = Page::new(vec![3u64, 9], true, Listing::Seats, |n| *n);
        assert_eq!(page.next_cursor.as_deref(), Some("s9"));
        assert_eq!(
            Page::new(vec![3u64, 9], false, Listing::Seats, |n| *n).next_cursor,
            None
        );
        assert_eq!(Page::<u64>::new(vec![], true, Listing::Seats, |n| *n).next_cursor, None);
    }
}
