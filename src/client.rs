//! `tenant-service roster import`: sends a OneRoster package (a ZIP, or a
//! directory of CSV files, zipped here) to a running service, with a
//! progress bar while it uploads, and prints the report as a table (or the
//! refusal's problems, one per line).
//!
//! The client is hyper's (already built for the server): plain HTTP to the
//! service or a gateway in front of it that speaks HTTP.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;

/// What `roster import` is told.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    pub url: String,
    pub district: u64,
    pub user: Option<String>,
    pub token: Option<String>,
    pub dry_run: bool,
    pub json: bool,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The service refused the import; what it said is printed already.
    #[error("the service refused the import ({status}): {detail}")]
    Refused { status: u16, detail: String },
}

/// How many bytes go per body chunk (and per progress step).
const CHUNK: usize = 64 * 1024;

pub async fn roster_import(args: &ImportArgs) -> Result<(), ClientError> {
    let package = package(&args.path)?;
    let base = args.url.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(ClientError::Usage(format!(
            "--url must be an http:// address of the service (got {base:?})"
        )));
    }
    let query = if args.dry_run { "?dry_run=true" } else { "" };
    let url = format!("{base}/api/v1/district/{}/roster{query}", args.district);
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| ClientError::Usage(format!("--url {base:?} is not a URL: {e}")))?;
    let mut request = hyper::Request::post(uri)
        .header("content-type", "application/zip")
        .header("content-length", package.len());
    match (&args.user, &args.token) {
        (_, Some(token)) => request = request.header("authorization", format!("Bearer {token}")),
        (Some(user), None) => request = request.header("x-user-id", user.as_str()),
        (None, None) => {
            return Err(ClientError::Usage(
                "say who is importing: --user USER (X-User-ID) or --token TOKEN (a bearer token)".into(),
            ))
        }
    }
    let total = package.len();
    let mut progress = Progress::new(total);
    let chunks: Vec<Vec<u8>> = package.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        progress.advance(chunk.len());
        Ok::<_, std::io::Error>(chunk)
    }));
    let request = request
        .body(hyper::Body::wrap_stream(stream))
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    let started = Instant::now();
    let client = hyper::Client::new();
    let unreachable = |reason: String| ClientError::Unreachable {
        url: base.to_owned(),
        reason,
    };
    let response = client.request(request).await.map_err(|e| unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let body = hyper::body::to_bytes(response.into_body())
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let answer: Value =
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    if status != 200 {
        let detail = answer["detail"].as_str().unwrap_or("no detail").to_owned();
        for line in answer["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            eprintln!("{line}");
        }
        if let Some(n) = answer["error_count"].as_u64() {
            let shown = answer["errors"].as_array().map_or(0, Vec::len) as u64;
            if n > shown {
                eprintln!("... and {} more", n - shown);
            }
        }
        return Err(ClientError::Refused { status, detail });
    }
    if args.json {
        println!("{answer}");
    } else {
        print!("{}", table(&answer, started.elapsed().as_secs_f64()));
    }
    Ok(())
}

/// The package's bytes: the file as it is, or the directory's files zipped.
fn package(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    let read = |source| ClientError::Read {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        let files = crate::roster::read_dir(path).map_err(read)?;
        crate::roster::write_zip(files.iter().map(|(n, c)| (n.as_str(), c.as_slice()))).map_err(read)
    } else {
        std::fs::read(path).map_err(read)
    }
}

/// An upload progress bar on stderr (only when stderr is a terminal).
struct Progress {
    total: usize,
    sent: usize,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            sent: 0,
            shown: std::io::stderr().is_terminal(),
        }
    }

    fn advance(&mut self, n: usize) {
        self.sent += n;
        if !self.shown {
            return;
        }
        const WIDTH: usize = 30;
        let done = (self.sent * WIDTH).checked_div(self.total).unwrap_or(WIDTH);
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\ruploading [{}{}] {:5.1} / {:.1} MiB",
            "#".repeat(done),
            "-".repeat(WIDTH - done),
            mib(self.sent),
            mib(self.total)
        );
        if self.sent >= self.total {
            let _ = writeln!(err, " - waiting for the import");
        }
        let _ = err.flush();
    }
}

/// The report as people read it.
pub fn table(report: &Value, seconds: f64) -> String {
    let mut out = String::new();
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let dry = report["dry_run"] == true;
    out.push_str(&format!(
        "roster import {} into district {} ({}, org {}){} in {seconds:.1} s\n",
        s(&report["import_id"]),
        s(&report["district_id"]),
        s(&report["district"]["name"]),
        s(&report["district"]["sourced_id"]),
        if dry { ": DRY RUN, nothing changed" } else { "" },
    ));
    let files = &report["files"];
    out.push_str(&format!(
        "files: orgs {}, users {}, roles {}\n\n",
        s(&files["orgs"]),
        s(&files["users"]),
        s(&files["roles"])
    ));
    let header = [
        "school",
        "org",
        "tenant",
        "change",
        "seated",
        "already",
        "reclaimed",
        "unseated",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    for school in report["schools"].as_array().into_iter().flatten() {
        let count = |k: &str| school[k].as_array().map_or(0, Vec::len).to_string();
        rows.push([
            s(&school["name"]),
            s(&school["sourced_id"]),
            s(&school["tenant_id"]),
            s(&school["change"]),
            s(&school["seated"]),
            s(&school["already_seated"]),
            count("reclaimed"),
            count("unseated"),
        ]);
    }
    let t = &report["totals"];
    rows.push([
        "total".into(),
        String::new(),
        String::new(),
        String::new(),
        s(&t["seated"]),
        s(&t["already_seated"]),
        s(&t["reclaimed"]),
        s(&t["unseated"]),
    ]);
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count()).min(40);
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let cell: String = cell.chars().take(40).collect();
            if i >= 4 {
                l.push_str(&format!("{cell:>w$}  "));
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        l.trim_end().to_owned() + "\n"
    };
    out.push_str(&line(&header.map(str::to_owned)));
    for row in &rows {
        out.push_str(&line(row));
    }
    out.push_str(&format!(
        "\nroles: {} granted, {} deactivated, {} kept as granted by hand\n",
        s(&t["roles_granted"]),
        s(&t["roles_deactivated"]),
        s(&t["roles_kept_hand_granted"])
    ));
    for (what, list) in [("granted", "granted"), ("deactivated", "deactivated")] {
        for role in report["roles"][list].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {what:<12} {:<8} {} at {} (tenant {})\n",
                s(&role["role"]),
                s(&role["user_id"]),
                s(&role["org_sourced_id"]),
                s(&role["tenant_id"])
            ));
        }
    }
    for kept in report["roles"]["kept_hand_granted"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  kept         {:<8} {} in tenant {} (the roster says {})\n",
            s(&kept["held"]),
            s(&kept["user_id"]),
            s(&kept["tenant_id"]),
            s(&kept["roster_role"])
        ));
    }
    let short: Vec<&Value> = report["schools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|sc| sc["unseated"].as_array().is_some_and(|u| !u.is_empty()))
        .collect();
    if !short.is_empty() {
        out.push_str("\nno free seat for (buy seats and import again):\n");
        for school in short {
            let ids: Vec<String> = school["unseated"].as_array().into_iter().flatten().map(s).collect();
            let shown = ids.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
            let more = ids.len().saturating_sub(10);
            out.push_str(&format!(
                "  {}: {shown}{}\n",
                s(&school["sourced_id"]),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
    }
    out
}
