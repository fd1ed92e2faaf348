//! `GET /openapi.json`: the OpenAPI 3.1 document of this service, built from
//! the code. Each route's shape is in `operations` (beside nothing else); the
//! schemas are derived from the types the handlers serialize and parse
//! (`utoipa::ToSchema`, which follows their serde attributes); whether a
//! route needs an identity, its body limit and which routes write come from
//! the route table; every refusal's status, `error_code` and sentence come
//! from `http::error`. The tests check the document against the table and
//! real answers against the document's schemas.

mod idempotency;
mod operations;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde_json::{json, Map, Value};
use utoipa::{PartialSchema, ToSchema};
use warp::http::Method;

use super::error::{every_kind, ApiError};
use super::route::{Route, Table};
use crate::config::Settings;
use crate::engine::{Error, Page};
use operations::Op;

/// Routes of the table that are not the API (the docs page, the document
/// itself); so are the console's, everything under `/ui`.
pub const NOT_API: [&str; 3] = ["/docs", "/docs/{file}", "/openapi.json"];

/// Whether a route template belongs in the document.
pub fn is_api(path: &str) -> bool {
    !NOT_API.contains(&path) && path != "/ui" && !path.starts_with("/ui/")
}

/// The document as served (built once).
pub fn json() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| document(&super::TABLE).to_string());
    &DOC
}

/// Schemas by name, each once, for `components.schemas`.
#[derive(Default)]
pub struct Schemas(BTreeMap<String, Value>);

impl Schemas {
    /// Registers `T` (and every schema it refers to); a reference to it.
    pub fn add<T: ToSchema>(&mut self) -> Value {
        let name = T::name().into_owned();
        let mut found = vec![(name.clone(), T::schema())];
        T::schemas(&mut found);
        for (n, schema) in found {
            self.0
                .entry(n)
                .or_insert_with(|| serde_json::to_value(schema).unwrap_or_default());
        }
        reference(&name)
    }

    /// Registers a page of `T` as `<T>Page`; a reference to it.
    pub fn page<T: ToSchema>(&mut self) -> Value {
        self.add::<T>();
        let name = format!("{}Page", T::name());
        let schema = serde_json::to_value(<Page<T> as PartialSchema>::schema()).unwrap_or_default();
        self.0.entry(name.clone()).or_insert(schema);
        reference(&name)
    }
}

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

/// The OpenAPI document for the routes of `table`.
pub fn document(table: &Table) -> Value {
    let mut schemas = Schemas::default();
    let ops = operations::all(&mut schemas);
    let mut paths = Map::new();
    for op in &ops {
        let route = table
            .routes()
            .iter()
            .find(|r| r.method == op.method && r.path == op.path);
        let item = paths.entry(op.path).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(op.method.as_str().to_ascii_lowercase(), operation(op, route));
        }
    }
    schemas.0.insert("Error".into(), error_schema(&all_codes()));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tenant Service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": introduction(),
        },
        "tags": operations::TAGS.iter().map(|(name, what)| json!({"name": name, "description": what})).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": schemas.0,
            "securitySchemes": {
                "userId": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-User-ID",
                    "description": "`[auth] mode = \"header\"` (the default): the caller's user id, set by \
                        the gateway in front of the service. 1 to 255 printable ASCII characters, taken \
                        exactly as sent; sent more than once, the request is unidentified (401)."
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "`[auth] mode = \"jwt\"`: `Authorization: Bearer <token>`, HS256 or RS256 \
                        as configured; `sub` is the user id, `exp` is required, `iss` and `aud` are \
                        checked when configured. `X-User-ID` is then ignored."
                }
            },
            "parameters": {
                "RequestId": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": false,
                    "description": "Taken as the request's id when it is 1 to 128 of `A-Z a-z 0-9 - _ . :`; \
                        otherwise a new uuid is. Echoed on the answer and on every log line of the request.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9._:-]+$"}
                },
                "IdempotencyKey": idempotency::parameter()
            },
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id (the caller's, or a new uuid).",
                    "schema": {"type": "string"}
                },
                "Retry-After": {
                    "description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer"}
                },
                "WWW-Authenticate": {
                    "description": "The identity scheme this service is configured for.",
                    "schema": {"type": "string"}
                },
                idempotency::REPLAYED: idempotency::replayed_header()
            }
        }
    })
}

/// One route's operation: its own description, plus what the table says
/// about it (identity, body limit, whether it writes) and the refusals every
/// route of its kind can get.
fn operation(op: &Op, route: Option<&Route>) -> Value {
    let identified = route.is_none_or(|r| !r.open);
    let writes = idempotency::applies(&op.method);
    let mut refusals: Vec<Refusal> = op.refusals.iter().map(Refusal::of).collect();
    let mut shared = Vec::new();
    if identified {
        shared.extend([ApiError::Unauthenticated, ApiError::InvalidCredentials]);
    }
    if writes {
        let limit = route
            .and_then(Route::own_body_limit)
            .unwrap_or(Settings::default().max_body_bytes);
        shared.extend([
            ApiError::MalformedJson("expected a JSON object".into()),
            ApiError::PayloadTooLarge(limit),
        ]);
    }
    if writes || !op.params.is_empty() {
        shared.push(ApiError::invalid("a value breaks its rule"));
    }
    if identified {
        shared.extend([
            Error::StoreUnavailable(anyhow::anyhow!("")).into(),
            Error::ShuttingDown.into(),
            Error::Internal(anyhow::anyhow!("")).into(),
        ]);
    }
    shared.push(Error::Overloaded.into());
    refusals.extend(shared.iter().map(Refusal::of));
    if writes {
        refusals.extend(idempotency::refusals().iter().map(Refusal::of));
    }

    let mut responses = Map::new();
    for (status, what, content_type, schema) in &op.answers {
        let mut headers = json!({"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}});
        if writes {
            headers[idempotency::REPLAYED] = json!({"$ref": format!("#/components/headers/{}", idempotency::REPLAYED)});
        }
        responses.insert(
            status.to_string(),
            json!({"description": what, "headers": headers, "content": {*content_type: {"schema": schema}}}),
        );
    }
    let mut by_status: BTreeMap<u16, Vec<&Refusal>> = BTreeMap::new();
    for refusal in &refusals {
        by_status.entry(refusal.status).or_default().push(refusal);
    }
    for (status, refusals) in by_status {
        let codes: BTreeSet<&str> = refusals.iter().map(|r| r.code).collect();
        // One entry per code, its sentences (e.g. one per identity scheme) together.
        let mut what: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for code in refusals.iter().map(|r| r.code) {
            if seen.insert(code) {
                let sentences: Vec<&str> = refusals
                    .iter()
                    .filter(|r| r.code == code)
                    .map(|r| r.sentence.as_str())
                    .collect();
                what.push(format!("`{code}`: {}", sentences.join(" / ")));
            }
        }
        let mut headers = json!({"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}});
        if status == 401 {
            headers["WWW-Authenticate"] = json!({"$ref": "#/components/headers/WWW-Authenticate"});
        }
        if codes.contains(ApiError::from(Error::Overloaded).code()) {
            headers["Retry-After"] = json!({"$ref": "#/components/headers/Retry-After"});
        }
        responses.insert(
            status.to_string(),
            json!({
                "description": what.join("; "),
                "headers": headers,
                "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Error",
                    "properties": {"error_code": {"enum": codes}}
                }}}
            }),
        );
    }

    let mut parameters = op.params.clone();
    parameters.push(json!({"$ref": "#/components/parameters/RequestId"}));
    if writes {
        parameters.push(json!({"$ref": "#/components/parameters/IdempotencyKey"}));
    }
    let mut operation = json!({
        "tags": [op.tag],
        "summary": op.summary,
        "operationId": operation_id(&op.method, op.path),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(text) = op.description {
        operation["description"] = json!(text);
    }
    if let Some(body) = &op.body {
        operation["requestBody"] = json!({"required": true, "content": {op.body_type: {"schema": body}}});
    }
    if identified {
        operation["security"] = json!([{"userId": []}, {"bearer": []}]);
    }
    operation
}

/// `post_api_v1_seats_allocate`, `get_api_v1_seats_id_audit`.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(part.chars().filter(|c| !matches!(c, '{' | '}')).map(|c| {
            if c.is_ascii_alphanumeric() {
                c
            } else {
                '_'
            }
        }));
    }
    if id == "get" {
        id.push_str("_root");
    }
    id
}

/// A refusal as the document lists it.
struct Refusal {
    status: u16,
    code: &'static str,
    sentence: String,
}

impl Refusal {
    fn of(e: &ApiError) -> Refusal {
        let sentence = match e {
            ApiError::Engine(Error::Invalid(_)) => {
                "a value in the path, query or body breaks its rule; `detail` names the field and the rule".into()
            }
            ApiError::MalformedJson(_) => "the body is not JSON (`detail` says where it stops being JSON)".into(),
            other => other.to_string(),
        };
        Refusal {
            status: e.status().as_u16(),
            code: e.code(),
            sentence,
        }
    }
}

/// Every `error_code` this service answers with.
fn all_codes() -> BTreeSet<&'static str> {
    every_kind().iter().map(ApiError::code).collect()
}

/// The contract's error body, its `error_code` one of `codes`.
fn error_schema(codes: &BTreeSet<&str>) -> Value {
    json!({
        "type": "object",
        "required": ["detail", "error_code"],
        "properties": {
            "detail": {"type": "string", "description": "A sentence for a person."},
            "error_code": {"type": "string", "enum": codes},
            "errors": {
                "type": "array",
                "items": {"type": "string"},
                "description": "`ROSTER_INVALID` only: the package's problems, each `file:line: column: message` (at most 100)."
            },
            "error_count": {
                "type": "integer",
                "description": "`ROSTER_INVALID` only: how many problems the package has in all."
            }
        }
    })
}

/// The document's opening text: how to call, and every refusal.
fn introduction() -> String {
    let mut text = String::from(
        "Tenants (districts and their schools), their seat pools, who holds which seat, roles per \
         tenant and the audit trail of every seat change. Every write is on disk before it is \
         acknowledged.\n\n\
         **Identity.** Every route except the service routes (`/`, `/health`, `/api/v1/health`, \
         `/metrics`) and the documentation (`/openapi.json`, `/docs`) needs the caller's identity, by the one scheme the service is configured for: \
         `X-User-ID` (header mode, the default) or a JWT bearer token (jwt mode). Roles are \
         enforced by default: a caller with no role in the tenant's district is told the tenant \
         does not exist (404); a role that is not enough is 403 `FORBIDDEN`.\n\n\
         **Request ids.** Every answer carries `X-Request-ID`: the caller's (the request header \
         `X-Request-ID`, when it is 1 to 128 of `A-Z a-z 0-9 - _ . :`), else a new uuid; every log \
         line of the request carries it too.\n\n",
    );
    text.push_str("**Retries.** ");
    text.push_str(idempotency::SUMMARY);
    text.push_str(
        "\n\n**Errors** are `{\"detail\": \"<sentence>\", \"error_code\": \"<CODE>\"}`; never a 5xx for bad \
         input. Each operation lists the codes it can answer. Every code:\n\n\
         | status | error_code | detail (example) |\n|---|---|---|\n",
    );
    let rows: BTreeSet<(u16, &str, String)> = every_kind()
        .iter()
        .map(|e| (e.status().as_u16(), e.code(), e.to_string()))
        .collect();
    for (status, code, sentence) in rows {
        text.push_str(&format!("| {status} | `{code}` | {sentence} |\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                item.as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(method, _)| (method.to_ascii_uppercase(), path.clone()))
            })
            .collect()
    }

    /// The document and the route table name the same routes: a route
    /// added without a description, or a description left behind by a
    /// route that is gone (or moved), fails here.
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let table = &super::super::TABLE;
        let doc = document(table);
        let documented = operations(&doc);
        let routes: BTreeSet<(String, String)> = table
            .routes()
            .iter()
            .filter(|r| is_api(r.path))
            .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
            .collect();
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routes).collect();
        assert!(undocumented.is_empty(), "routes the document lacks: {undocumented:?}");
        assert!(unrouted.is_empty(), "documented routes the table lacks: {unrouted:?}");
        // The exclusions are routes that exist: a stale one would hide nothing.
        for path in NOT_API {
            assert!(table.routes().iter().any(|r| r.path == path), "{path} is not a route");
        }
    }

    #[test]
    fn routes_needing_identity_name_both_schemes_and_open_ones_none() {
        let table = &super::super::TABLE;
        let doc = document(table);
        for route in table.routes().iter().filter(|r| is_api(r.path)) {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            let security = &op["security"];
            if route.open {
                assert!(security.is_null(), "{} {}", route.method, route.path);
                assert!(op["responses"]["401"].is_null(), "{} {}", route.method, route.path);
            } else {
                assert_eq!(security, &json!([{"userId": []}, {"bearer": []}]));
                assert!(op["responses"]["401"].is_object(), "{} {}", route.method, route.path);
            }
            let keyed = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["$ref"] == "#/components/parameters/IdempotencyKey");
            assert_eq!(keyed, route.method == Method::POST || route.method == Method::PUT);
        }
    }

    #[test]
    fn every_error_code_of_http_error_is_documented() {
        let doc = document(&super::super::TABLE);
        let listed = &doc["components"]["schemas"]["Error"]["properties"]["error_code"]["enum"];
        for kind in every_kind() {
            assert!(
                listed.as_array().into_iter().flatten().any(|c| c == kind.code()),
                "{}",
                kind.code()
            );
            let row = format!("| {} | `{}` |", kind.status().as_u16(), kind.code());
            assert!(
                doc["info"]["description"].as_str().unwrap_or_default().contains(&row),
                "{row}"
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document(&super::super::TABLE);
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"").skip(1) {
            let target = piece.split('"').next().unwrap_or_default();
            let pointer = target.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
        // And the whole reads as OpenAPI to utoipa's own model.
        let parsed: Result<utoipa::openapi::OpenApi, _> = serde_json::from_value(doc);
        assert!(parsed.is_ok(), "{:?}", parsed.err());
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document(&super::super::TABLE);
        let mut seen = BTreeSet::new();
        for (method, path) in operations(&doc) {
            let id = operation_id(&Method::from_bytes(method.as_bytes()).unwrap_or_default(), &path);
            assert!(seen.insert(id.clone()), "{id}");
        }
    }
}
