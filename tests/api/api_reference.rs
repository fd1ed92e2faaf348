//! docs/API.md, the repository's API reference, is the OpenAPI document
//! (`GET /openapi.json`) written out as Markdown. This test fails when the
//! file is not what the document gives now; regenerate it with
//!
//! ```sh
//! UPDATE_API_DOCS=1 cargo test --test api api_reference
//! ```

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

const FILE: &str = "docs/API.md";

#[test]
fn api_reference_is_the_document_written_out() {
    let doc: Value =
        serde_json::from_str(tenant_service::http::openapi::json()).unwrap_or_else(|e| panic!("document: {e}"));
    let written = markdown(&doc);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    if std::env::var_os("UPDATE_API_DOCS").is_some() {
        std::fs::write(&path, &written).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != written {
        let line = current
            .lines()
            .zip(written.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| current.lines().count().min(written.lines().count()));
        panic!(
            "{FILE} is stale (first difference at line {}): regenerate it with \
             `UPDATE_API_DOCS=1 cargo test --test api api_reference`",
            line + 1
        );
    }
}

/// The reference: the introduction, a route index, each route by tag, then
/// each schema.
fn markdown(doc: &Value) -> String {
    let mut out = String::new();
    let info = &doc["info"];
    let _ = writeln!(
        out,
        "# {} API reference (version {})\n",
        text(&info["title"]),
        text(&info["version"])
    );
    out.push_str(
        "Generated from the service's OpenAPI 3.1 document, which the service serves at \
         `GET /openapi.json` (and as an interactive page at `GET /docs`). Do not edit by hand: \
         regenerate with `UPDATE_API_DOCS=1 cargo test --test api api_reference`.\n\n",
    );
    out.push_str(&text(&info["description"]));
    out.push_str("\n\n## Routes\n\n| method | path | summary | identity |\n|---|---|---|---|\n");
    let ops = operations(doc);
    for (method, path, op) in &ops {
        let _ = writeln!(
            out,
            "| {method} | [`{path}`](#{}) | {} | {} |",
            anchor(&format!("{method} {path}")),
            text(&op["summary"]),
            if op["security"].is_array() { "needed" } else { "none" }
        );
    }
    for tag in doc["tags"].as_array().into_iter().flatten() {
        let name = text(&tag["name"]);
        let _ = writeln!(out, "\n## {name}\n\n{}", text(&tag["description"]));
        for (method, path, op) in ops.iter().filter(|(_, _, op)| op["tags"][0] == tag["name"]) {
            operation(&mut out, doc, method, path, op);
        }
    }
    out.push_str("\n## Schemas\n");
    for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let _ = writeln!(out, "\n### {name}\n");
        if let Some(d) = schema["description"].as_str() {
            let _ = writeln!(out, "{}\n", one_line(d));
        }
        let mut fields = Vec::new();
        collect_fields(doc, schema, &mut fields);
        if fields.is_empty() {
            let _ = writeln!(out, "{}", type_of(schema));
        } else {
            out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
            for (field, s, required) in fields {
                let _ = writeln!(
                    out,
                    "| `{field}` | {} | {} | {} |",
                    type_of(s),
                    if required { "yes" } else { "no" },
                    one_line(s["description"].as_str().unwrap_or_default())
                );
            }
        }
    }
    out
}

fn operation(out: &mut String, doc: &Value, method: &str, path: &str, op: &Value) {
    let _ = writeln!(out, "\n### {method} {path}\n\n{}\n", text(&op["summary"]));
    if let Some(d) = op["description"].as_str() {
        let _ = writeln!(out, "{}\n", one_line(d));
    }
    if op["security"].is_array() {
        out.push_str("Identity: `X-User-ID` (header mode) or `Authorization: Bearer` (jwt mode).\n\n");
    } else {
        out.push_str("Identity: none needed.\n\n");
    }
    // The headers every route (or every write) shares are described once,
    // in the introduction; here they are only named.
    let (shared, params): (Vec<&Value>, Vec<&Value>) = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .partition(|p| p["$ref"].is_string());
    let shared: Vec<String> = shared
        .iter()
        .map(|p| format!("`{}`", text(&resolve(doc, p)["name"])))
        .collect();
    let _ = writeln!(out, "Optional headers: {}.\n", shared.join(", "));
    if !params.is_empty() {
        out.push_str("| parameter | in | required | type | description |\n|---|---|---|---|---|\n");
        for p in params {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                text(&p["name"]),
                text(&p["in"]),
                if p["required"] == true { "yes" } else { "no" },
                type_of(&p["schema"]),
                one_line(p["description"].as_str().unwrap_or_default())
            );
        }
        out.push('\n');
    }
    if let Some((_, media)) = op["requestBody"]["content"].as_object().and_then(|c| c.iter().next()) {
        let _ = writeln!(out, "Body: {}\n", type_of(&media["schema"]));
    }
    out.push_str("| status | body | meaning |\n|---|---|---|\n");
    for (status, answer) in op["responses"].as_object().into_iter().flatten() {
        let body = answer["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .map(|(kind, media)| {
                if kind == "application/json" {
                    type_of(&media["schema"])
                } else {
                    format!("`{kind}`")
                }
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {status} | {body} | {} |",
            one_line(answer["description"].as_str().unwrap_or_default())
        );
    }
}

/// Every operation, in path order then GET, PUT, POST.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            ops.push((method.to_ascii_uppercase(), path.clone(), op));
        }
    }
    ops
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap_or(v),
        None => v,
    }
}

/// An object schema's fields (through `allOf`), with whether each is required.
fn collect_fields<'a>(doc: &'a Value, schema: &'a Value, out: &mut Vec<(&'a str, &'a Value, bool)>) {
    let required = |name: &str| {
        schema["required"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n == name))
    };
    for (name, s) in schema["properties"].as_object().into_iter().flatten() {
        out.push((name, s, required(name)));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        collect_fields(doc, resolve(doc, part), out);
    }
}

/// A schema in a few words, references as links.
fn type_of(s: &Value) -> String {
    if let Some(target) = s["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap_or_default();
        let codes = &s["properties"]["error_code"]["enum"];
        if let Some(codes) = codes.as_array() {
            let codes: Vec<String> = codes.iter().map(|c| format!("`{}`", text(c))).collect();
            return format!("[{name}](#{}) ({})", anchor(name), codes.join(", "));
        }
        return format!("[{name}](#{})", anchor(name));
    }
    if let Some(branches) = s["oneOf"].as_array().or_else(|| s["anyOf"].as_array()) {
        let parts: Vec<String> = branches.iter().map(type_of).collect();
        return parts.join(" or ");
    }
    if let Some(values) = s["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", text(v))).collect();
        return values.join(" \\| ");
    }
    let kind = match &s["type"] {
        Value::Array(kinds) => kinds.iter().map(text).collect::<Vec<_>>().join(" or "),
        Value::String(kind) => kind.clone(),
        _ => String::from("any"),
    };
    let mut words = match kind.as_str() {
        "array" => format!("array of {}", type_of(&s["items"])),
        "object" if s["additionalProperties"].is_object() => {
            format!("map of {}", type_of(&s["additionalProperties"]))
        }
        _ => kind,
    };
    let bounds: Vec<String> = [
        ("format", ""),
        ("minimum", "≥ "),
        ("exclusiveMinimum", "> "),
        ("maximum", "≤ "),
        ("minItems", "items ≥ "),
        ("maxItems", "items ≤ "),
        ("maxLength", "length ≤ "),
    ]
    .iter()
    .filter_map(|(key, prefix)| s.get(*key).map(|v| format!("{prefix}{}", text(v))))
    .collect();
    if !bounds.is_empty() {
        let _ = write!(words, " ({})", bounds.join(", "));
    }
    words
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A description in a table cell or paragraph: one line, pipes escaped.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|")
}

/// GitHub's heading anchor: lowercase, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}
