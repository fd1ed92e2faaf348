//! What each route takes and answers, for the API document: its summary,
//! parameters, body, success answers (the schemas of the very types the
//! handlers serialize) and the refusals particular to it. What every route
//! of a kind shares (identity, body refusals, overload, idempotency) is
//! added from the route table by `super::operation`, and every refusal's
//! status and `error_code` come from `http::error`.
//!
//! A route added to the table needs an entry here: the test
//! `every_route_is_documented_and_nothing_else` fails until it has one.

use serde_json::{json, Value};
use warp::http::Method;

use super::super::error::ApiError;
use super::super::{bulk, reservations, roles, seats, tenants, transfers};
use super::Schemas;
use crate::domain::{Alert, Audit, AuditPage, Role, RoleEvent, Seat, SeatState, SeatSummary, Tenant, Threshold};
use crate::engine::{
    Alerts, BulkReport, DistrictSummary, Error, History, Me, Missing, RosterReport, SeatStats, TransferReport,
};
use crate::store::ChainReport;

/// One route's description.
pub struct Op {
    pub method: Method,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: Option<&'static str>,
    pub params: Vec<Value>,
    pub body: Option<Value>,
    /// The body's media type (JSON unless said otherwise).
    pub body_type: &'static str,
    /// Status, description, content type and schema of each success.
    pub answers: Vec<(u16, &'static str, &'static str, Value)>,
    pub refusals: Vec<ApiError>,
}

fn op(method: Method, path: &'static str, tag: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        description: None,
        params: Vec::new(),
        body: None,
        body_type: JSON,
        answers: Vec::new(),
        refusals: Vec::new(),
    }
}

fn get(path: &'static str, tag: &'static str, summary: &'static str) -> Op {
    op(Method::GET, path, tag, summary)
}

fn post(path: &'static str, tag: &'static str, summary: &'static str) -> Op {
    op(Method::POST, path, tag, summary)
}

fn put(path: &'static str, tag: &'static str, summary: &'static str) -> Op {
    op(Method::PUT, path, tag, summary)
}

const JSON: &str = "application/json";

impl Op {
    fn describe(mut self, text: &'static str) -> Op {
        self.description = Some(text);
        self
    }

    /// A `{name}` path segment holding a positive integer id.
    fn path_id(mut self, name: &str, what: &str) -> Op {
        self.params.push(param(
            name,
            "path",
            true,
            what,
            json!({"type": "integer", "minimum": 1}),
        ));
        self
    }

    /// A `{name}` path segment holding text (percent-encoded).
    fn path_text(mut self, name: &str, what: &str) -> Op {
        self.params
            .push(param(name, "path", true, what, json!({"type": "string"})));
        self
    }

    fn query(mut self, name: &str, required: bool, what: &str, schema: Value) -> Op {
        self.params.push(param(name, "query", required, what, schema));
        self
    }

    fn tenant_query(self) -> Op {
        self.query(
            "tenantId",
            true,
            "The tenant (a district's answer includes its schools where the route says so).",
            json!({"type": "integer", "minimum": 1}),
        )
    }

    /// `limit` and `cursor`.
    fn paged(self) -> Op {
        self.query(
            "limit",
            false,
            "Items per page, 1 to 1000 (default 100).",
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        )
        .query(
            "cursor",
            false,
            "The previous page's `next_cursor`, passed back unchanged.",
            json!({"type": "string"}),
        )
    }

    fn body(mut self, schema: Value) -> Op {
        self.body = Some(schema);
        self
    }

    fn body_as(mut self, content_type: &'static str, schema: Value) -> Op {
        self.body = Some(schema);
        self.body_type = content_type;
        self
    }

    fn answers(mut self, status: u16, what: &'static str, schema: Value) -> Op {
        self.answers.push((status, what, JSON, schema));
        self
    }

    fn answers_as(mut self, status: u16, what: &'static str, content_type: &'static str, schema: Value) -> Op {
        self.answers.push((status, what, content_type, schema));
        self
    }

    fn refuses(mut self, refusals: impl IntoIterator<Item = ApiError>) -> Op {
        self.refusals.extend(refusals);
        self
    }
}

fn param(name: &str, at: &str, required: bool, what: &str, schema: Value) -> Value {
    json!({"name": name, "in": at, "required": required, "description": what, "schema": schema})
}

fn missing(what: Missing) -> ApiError {
    Error::NotFound(what).into()
}

/// A caller whose role in the tenant is below the one needed.
fn needs(role: &'static str) -> ApiError {
    Error::Forbidden(role).into()
}

fn inactive() -> ApiError {
    Error::TenantInactive.into()
}

fn list(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

// Tags, in the order the document lists them.
pub const SEATS: &str = "seats";
pub const BULK: &str = "bulk";
pub const LIFECYCLE: &str = "lifecycle";
pub const LISTINGS: &str = "listings";
pub const TENANTS: &str = "tenants";
pub const ROLES: &str = "roles";
pub const AUDIT: &str = "audit";
pub const ROSTER: &str = "roster";
pub const SERVICE: &str = "service";

pub const TAGS: [(&str, &str); 9] = [
    (
        SEATS,
        "Seat purchase, allocation, reclaim, lookups, counts and analytics",
    ),
    (
        BULK,
        "Many seats assigned or reclaimed in one request, one result row per input",
    ),
    (
        LIFECYCLE,
        "Reservations that expire, seats moved between a district's tenants, license terms",
    ),
    (
        LISTINGS,
        "Pages of seats and districts, a learner's seats, the CSV export",
    ),
    (TENANTS, "Districts, schools, tenant metadata and utilization alerts"),
    (ROLES, "Roles per tenant, their trail, and the caller's own view"),
    (AUDIT, "The audit trail and its hash chain"),
    (
        ROSTER,
        "OneRoster 1.2 CSV packages driving a district's schools, seats and staff roles",
    ),
    (SERVICE, "Liveness and metrics: no identity needed"),
];

/// Every route's description.
pub fn all(s: &mut Schemas) -> Vec<Op> {
    let seat = s.add::<Seat>();
    let seat_list = list(seat.clone());
    let tenant = s.add::<Tenant>();
    let role = s.add::<Role>();
    let role_event = s.add::<RoleEvent>();
    let seat_state = s.add::<SeatState>();
    let _ = s.add::<Alert>();
    vec![
        // Seats
        post("/api/v1/seats/allocate", SEATS, "Assign a named seat to a learner")
            .describe(
                "A free seat, or a reserved one: to the learner it is reserved for (an unnamed \
                 reservation to anyone). Not once its license term has ended.",
            )
            .body(s.add::<seats::AllocateBody>())
            .answers(200, "The seat, now assigned.", seat.clone())
            .refuses([
                missing(Missing::Seat),
                Error::SeatUnavailable(SeatState::Assigned).into(),
                Error::LearnerHasSeat.into(),
                Error::SeatExpired.into(),
                inactive(),
                needs("manager"),
            ]),
        get("/api/v1/seats/summary", SEATS, "A tenant's seat counts and utilization")
            .describe("O(1): kept as counters, no seat is scanned.")
            .tenant_query()
            .answers(200, "The tenant's counts.", s.add::<SeatSummary>())
            .refuses([missing(Missing::Tenant), needs("teacher")]),
        post("/api/v1/seats/reclaim", SEATS, "Free a seat")
            .body(s.add::<seats::ReclaimBody>())
            .answers(200, "The seat, now free.", seat.clone())
            .refuses([
                missing(Missing::Seat),
                Error::SeatAlreadyFree.into(),
                inactive(),
                needs("manager"),
            ]),
        post(
            "/api/v1/seats/assign",
            SEATS,
            "A seat for a learner, without naming one",
        )
        .describe(
            "The seat reserved for the learner, else the lowest free seat whose term has not \
                 ended, is assigned (201). If the learner already holds an assigned seat in the \
                 tenant, that seat is answered (200) and nothing is written, so a retry is safe.",
        )
        .body(s.add::<seats::AssignBody>())
        .answers(201, "The seat assigned now.", seat.clone())
        .answers(200, "The seat the learner already held; nothing written.", seat.clone())
        .refuses([
            missing(Missing::Tenant),
            Error::NoFreeSeat.into(),
            inactive(),
            needs("manager"),
        ]),
        post("/api/v1/seats/purchase", SEATS, "Buy seats")
            .describe(
                "1 to 100,000 seats in one request, all or nothing; a tenant holds at most 2^32 seats. \
                 With `expires_at` (in the future) the seats' license term ends then.",
            )
            .body(s.add::<seats::PurchaseBody>())
            .answers(201, "The new seats, all free, in id order.", seat_list.clone())
            .refuses([missing(Missing::Tenant), inactive(), needs("admin")]),
        get("/api/v1/seats/stats", SEATS, "Seat transitions per minute")
            .describe("Over the last `window`; a district's include its schools'.")
            .tenant_query()
            .query(
                "window",
                false,
                "Minutes or hours, 1 minute to 24 hours: `15m`, `1h` (default), `24h`.",
                json!({"type": "string", "pattern": "^[0-9]+[mh]$", "default": "1h"}),
            )
            .answers(200, "Counts, rates and the busiest minute.", s.add::<SeatStats>())
            .refuses([missing(Missing::Tenant), needs("teacher")]),
        get("/api/v1/seats/history", SEATS, "Seat counts at the end of each day")
            .describe("The last `days` days, today last (as of now); a district's summed with its schools'.")
            .tenant_query()
            .query(
                "days",
                false,
                "1 to 366 (default 30).",
                json!({"type": "integer", "minimum": 1, "maximum": 366, "default": 30}),
            )
            .answers(200, "One entry per day, oldest first.", s.add::<History>())
            .refuses([missing(Missing::Tenant), needs("teacher")]),
        get("/api/v1/seats/{id}", SEATS, "A seat")
            .path_id("id", "The seat.")
            .answers(200, "The seat.", seat.clone())
            .refuses([missing(Missing::Seat), needs("teacher")]),
        get(
            "/api/v1/seats/{id}/audit",
            SEATS,
            "A seat's audit entries, oldest first",
        )
        .path_id("id", "The seat.")
        .answers(200, "Every entry of the seat.", list(s.add::<Audit>()))
        .refuses([missing(Missing::Seat), needs("manager")]),
        // Bulk
        post("/api/v1/seats/assign/bulk", BULK, "A seat for each of many learners")
            .describe(
                "Learners take the lowest free seats in input order. One write for the whole \
                 request: every row's change is durable before the answer, and if the disk refuses \
                 it nothing is applied (503). Bodies up to 4 MiB.",
            )
            .body(s.add::<bulk::AssignBody>())
            .answers(
                200,
                "One row per input, in input order, and totals.",
                s.add::<BulkReport>(),
            )
            .refuses([missing(Missing::Tenant), inactive(), needs("manager")]),
        post(
            "/api/v1/seats/reclaim/bulk",
            BULK,
            "Reclaim many seats, by seat or by learner",
        )
        .describe("One write for the whole request, as bulk assign. Bodies up to 4 MiB.")
        .body(s.add::<bulk::ReclaimBody>())
        .answers(
            200,
            "One row per input, in input order, and totals.",
            s.add::<BulkReport>(),
        )
        .refuses([missing(Missing::Tenant), inactive(), needs("manager")]),
        // Lifecycle
        post("/api/v1/seats/reserve", LIFECYCLE, "Hold a seat for a while")
            .describe(
                "A free seat (the one named, or the lowest free) becomes reserved until \
                 `ttl_seconds` from now (1 second to 30 days), for the learner if one is named \
                 (they then hold it: one seat per learner). When the deadline passes the seat is \
                 free again by itself (audit entry by `system`, \"Reservation expired\"); no read \
                 shows it reserved after its deadline.",
            )
            .body(s.add::<reservations::ReserveBody>())
            .answers(201, "The seat, now reserved.", seat.clone())
            .refuses([
                missing(Missing::Tenant),
                missing(Missing::Seat),
                Error::SeatUnavailable(SeatState::Assigned).into(),
                Error::LearnerHasSeat.into(),
                Error::NoFreeSeat.into(),
                Error::SeatExpired.into(),
                inactive(),
                needs("manager"),
            ]),
        post("/api/v1/seats/release", LIFECYCLE, "Give a reservation back")
            .body(s.add::<reservations::ReleaseBody>())
            .answers(200, "The seat, now free.", seat.clone())
            .refuses([
                missing(Missing::Seat),
                Error::NotReserved(SeatState::Assigned).into(),
                inactive(),
                needs("manager"),
            ]),
        post(
            "/api/v1/seats/transfer",
            LIFECYCLE,
            "Move free seats to another tenant of the district",
        )
        .describe(
            "Between the district and a school, or two schools. A seat keeps its id and changes \
             tenant; each side records an audit entry per seat. All of it or none survives a \
             crash. `count` moves that many of the lowest free seats (all or none); `seat_ids` \
             moves each free one and answers a row for each other saying why not. Admins of both \
             tenants (or of the district). Bodies up to 4 MiB.",
        )
        .body(s.add::<transfers::TransferBody>())
        .answers(200, "One row per seat, and totals.", s.add::<TransferReport>())
        .refuses([
            missing(Missing::Tenant),
            Error::AcrossDistricts.into(),
            Error::NotEnoughFreeSeats { free: 3, asked: 10 }.into(),
            inactive(),
            needs("admin"),
        ]),
        post("/api/v1/seats/renew", LIFECYCLE, "Extend seats' license term")
            .describe(
                "The seats named, or every seat whose term ends before `all_expiring_before`, get \
                 the term ending `expires_at` (in the future, later than their current one), one \
                 audit entry each, one write for the request. Admins only. Bodies up to 4 MiB.",
            )
            .body(s.add::<transfers::RenewBody>())
            .answers(
                200,
                "One row per seat, in input order (in id order for all_expiring_before), and totals.",
                s.add::<BulkReport>(),
            )
            .refuses([missing(Missing::Tenant), inactive(), needs("admin")]),
        // Listings
        get("/api/v1/seats", LISTINGS, "Pages of a tenant's seats, in id order")
            .describe("A district's page includes its schools' seats.")
            .tenant_query()
            .query("state", false, "Only seats in this state.", seat_state.clone())
            .query(
                "learnerId",
                false,
                "Only the seat this learner holds.",
                json!({"type": "string"}),
            )
            .query(
                "expiring_before",
                false,
                "Only seats whose license term ends before this time (RFC 3339).",
                json!({"type": "string", "format": "date-time"}),
            )
            .paged()
            .answers(200, "A page of seats.", s.page::<Seat>())
            .refuses([missing(Missing::Tenant), needs("teacher")]),
        get(
            "/api/v1/seats/export",
            LISTINGS,
            "Every seat of a tenant as CSV, streamed",
        )
        .describe(
            "Columns `seat_id,tenant_id,state,learner_id,assigned_at`; a district's export \
                 includes its schools'. A failure after the first bytes cuts the transfer short \
                 (no final chunk).",
        )
        .tenant_query()
        .answers_as(200, "The CSV file.", "text/csv", json!({"type": "string"}))
        .refuses([missing(Missing::Tenant), needs("teacher")]),
        get(
            "/api/v1/learners/{learner_id}/seats",
            LISTINGS,
            "The seats a learner holds",
        )
        .describe("In every tenant the caller may read seats in, in id order.")
        .path_text("learner_id", "The learner id, percent-encoded.")
        .answers(200, "The learner's seats.", seat_list.clone()),
        get("/api/v1/districts", LISTINGS, "Pages of districts")
            .describe(
                "All of them for platform admins; otherwise those where the caller holds a role in \
                 the district or one of its schools.",
            )
            .paged()
            .answers(200, "A page of districts.", s.page::<Tenant>()),
        // Tenants
        post("/api/v1/district", TENANTS, "Create a district")
            .body(s.add::<tenants::NameBody>())
            .answers(201, "The new district.", tenant.clone())
            .refuses([Error::PlatformAdminOnly.into()]),
        get("/api/v1/district/{id}", TENANTS, "A district and its schools")
            .path_id("id", "The district.")
            .answers(200, "The district, with `children`.", s.add::<tenants::DistrictView>())
            .refuses([missing(Missing::District), needs("teacher")]),
        get(
            "/api/v1/district/{id}/summary",
            TENANTS,
            "Seat counts of a district and each school",
        )
        .describe("O(schools): no seat is scanned.")
        .path_id("id", "The district.")
        .answers(
            200,
            "Totals, the district's own and each school's.",
            s.add::<DistrictSummary>(),
        )
        .refuses([missing(Missing::District), needs("teacher")]),
        post(
            "/api/v1/district/{id}/schools",
            TENANTS,
            "Create a school in a district",
        )
        .path_id("id", "The district.")
        .body(s.add::<tenants::NameBody>())
        .answers(201, "The new school.", tenant.clone())
        .refuses([missing(Missing::District), inactive(), needs("admin")]),
        post(
            "/api/v1/district/{id}/roster",
            ROSTER,
            "Import a OneRoster 1.2 CSV package into a district",
        )
        .describe(
            "The body is the package: a ZIP of manifest.csv, orgs.csv, users.csv and roles.csv \
             (bulk or delta), up to `[roster] max_bytes` (default 64 MiB). Schools are created, \
             renamed or deactivated; students are seated in their school and unseated when they \
             leave the roster; staff get teacher or admin roles. Importing the same package again \
             changes nothing. A package that breaks the binding is refused whole (422 \
             `ROSTER_INVALID`, its `errors` listing every problem as `file:line: column: message`) \
             and nothing changes. District admins and platform admins only. A retry with the same \
             `Idempotency-Key` runs the import again (which then changes nothing) rather than \
             replaying the first report.",
        )
        .path_id("id", "The district.")
        .query(
            "dry_run",
            false,
            "`true`: answer the report of what the import would do, changing nothing.",
            json!({"type": "boolean"}),
        )
        .body_as("application/zip", json!({"type": "string", "format": "binary"}))
        .answers(200, "What the import did (or would do).", s.add::<RosterReport>())
        .refuses([
            missing(Missing::District),
            needs("admin"),
            Error::RosterInvalid(crate::roster::Problems::default()).into(),
            ApiError::UnsupportedMediaType("a ZIP archive (application/zip)"),
        ]),
        get("/api/v1/tenant/{id}", TENANTS, "A tenant")
            .path_id("id", "The tenant.")
            .answers(200, "The tenant.", tenant.clone())
            .refuses([missing(Missing::Tenant), needs("teacher")]),
        put(
            "/api/v1/tenant/{id}",
            TENANTS,
            "Rename, deactivate or reactivate a tenant",
        )
        .path_id("id", "The tenant.")
        .body(s.add::<tenants::UpdateBody>())
        .answers(200, "The tenant as it now is.", tenant.clone())
        .refuses([missing(Missing::Tenant), needs("admin")]),
        put(
            "/api/v1/tenant/{id}/alert-threshold",
            TENANTS,
            "Set or clear a utilization alert threshold",
        )
        .path_id("id", "The tenant.")
        .body(s.add::<tenants::ThresholdBody>())
        .answers(200, "The threshold as it now is.", s.add::<Threshold>())
        .refuses([missing(Missing::Tenant), inactive(), needs("admin")]),
        get("/api/v1/alerts", TENANTS, "A tenant's threshold and the alerts raised")
            .describe("A district's list includes its schools'.")
            .tenant_query()
            .answers(200, "The threshold and the alerts.", s.add::<Alerts>())
            .refuses([missing(Missing::Tenant), needs("teacher")]),
        // Roles
        post("/api/v1/roles", ROLES, "Grant a role")
            .body(s.add::<roles::AssignBody>())
            .answers(201, "The new role.", role.clone())
            .refuses([
                missing(Missing::Tenant),
                Error::RoleExists.into(),
                inactive(),
                needs("admin"),
            ]),
        get("/api/v1/roles", ROLES, "A tenant's roles")
            .describe("Without `limit` and `cursor`: the whole list as an array; with either, a page.")
            .tenant_query()
            .paged()
            .answers(
                200,
                "Every role (an array), or a page of them.",
                json!({"oneOf": [list(role.clone()), s.page::<Role>()]}),
            )
            .refuses([missing(Missing::Tenant), needs("teacher")]),
        get(
            "/api/v1/roles/events",
            ROLES,
            "A tenant's role grants and deactivations, oldest first",
        )
        .describe("Without `limit` and `cursor`: the whole list as an array; with either, a page.")
        .tenant_query()
        .paged()
        .answers(
            200,
            "Every event (an array), or a page of them.",
            json!({"oneOf": [list(role_event.clone()), s.page::<RoleEvent>()]}),
        )
        .refuses([missing(Missing::Tenant), needs("admin")]),
        post("/api/v1/roles/{id}/deactivate", ROLES, "Deactivate a role, keeping it")
            .path_id("id", "The role.")
            .answers(200, "The role, now inactive.", role.clone())
            .refuses([missing(Missing::Role), Error::RoleInactive.into(), needs("admin")]),
        get("/api/v1/users/{id}/tenants", ROLES, "A user's active roles")
            .describe("Callers other than the user see only the roles in tenants they administer.")
            .path_text("id", "The user id, percent-encoded.")
            .answers(200, "The user's active roles.", list(role.clone())),
        get(
            "/api/v1/me",
            ROLES,
            "The caller, their roles and what they may do where",
        )
        .answers(200, "The caller's view.", s.add::<Me>()),
        // Audit
        get("/api/v1/audit", AUDIT, "Pages of the audit trail")
            .describe(
                "Of a tenant (`tenantId`, a district's with its schools') or a seat (`seatId`). A \
                 filtered page may hold fewer than `limit` entries (even none) and still have a \
                 `next_cursor`: keep following it.",
            )
            .query(
                "tenantId",
                false,
                "The tenant.",
                json!({"type": "integer", "minimum": 1}),
            )
            .query("seatId", false, "The seat.", json!({"type": "integer", "minimum": 1}))
            .query(
                "learnerId",
                false,
                "Entries naming this learner.",
                json!({"type": "string"}),
            )
            .query(
                "changedBy",
                false,
                "Entries made by this user.",
                json!({"type": "string"}),
            )
            .query(
                "since",
                false,
                "Entries at or after this RFC 3339 time.",
                json!({"type": "string", "format": "date-time"}),
            )
            .query(
                "until",
                false,
                "Entries before this RFC 3339 time.",
                json!({"type": "string", "format": "date-time"}),
            )
            .query(
                "order",
                false,
                "`asc` (default) or `desc`.",
                json!({"type": "string", "enum": ["asc", "desc"], "default": "asc"}),
            )
            .paged()
            .answers(200, "A page of entries.", s.add::<AuditPage>())
            .refuses([missing(Missing::Tenant), missing(Missing::Seat), needs("manager")]),
        get("/api/v1/audit/verify", AUDIT, "Verify a tenant's audit hash chain")
            .describe("Walks the chain and checks the tenant's seat and audit records against it.")
            .tenant_query()
            .answers(200, "What the walk found.", s.add::<ChainReport>())
            .refuses([missing(Missing::Tenant), needs("manager")]),
        // Service
        get("/", SERVICE, "The service's name and version").answers(
            200,
            "Running.",
            object(&[
                ("service", json!({"type": "string"})),
                ("status", json!({"type": "string"})),
                ("version", json!({"type": "string"})),
            ]),
        ),
        get("/health", SERVICE, "Liveness").answers(
            200,
            "Healthy.",
            object(&[("status", json!({"type": "string", "enum": ["healthy"]}))]),
        ),
        get("/api/v1/health", SERVICE, "Liveness (the old contract's path)").answers(
            200,
            "Healthy.",
            object(&[("message", json!({"type": "string"}))]),
        ),
        get("/metrics", SERVICE, "Prometheus text exposition")
            .describe("Counts and timings, never a tenant, seat or user. Keep it off the public gateway.")
            .answers_as(
                200,
                "The metrics.",
                "text/plain; version=0.0.4",
                json!({"type": "string"}),
            ),
    ]
}

/// An object whose fields are all required.
fn object(fields: &[(&str, Value)]) -> Value {
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let properties: serde_json::Map<String, Value> = fields.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
    json!({"type": "object", "required": names, "properties": properties})
}
