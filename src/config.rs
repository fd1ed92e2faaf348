//! Settings: built-in defaults, overridden by `config.toml`, then environment
//! variables, then command-line flags.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "tenant-service",
    version,
    about = "Tenants, seat pools, roles and the seat audit trail",
    after_help = "Exit codes: 0 success; 1 the service or command failed (one line on stderr says why); \
                  2 usage error (a flag or value this program does not take); \
                  3 `audit verify` found a chain or record that is not intact."
)]
pub struct Cli {
    /// Configuration file (default: ./config.toml if it exists).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on: host:port, e.g. 127.0.0.1:8001 or localhost:8001.
    #[arg(long, env = "TENANT_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<ListenAddr>,
    /// Directory holding the store.
    #[arg(long, env = "TENANT_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Without a command: run the service.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work on the audit trail offline (no service may be running on the data dir).
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Roster imports: send a district's OneRoster 1.2 CSV package to a running service.
    Roster {
        #[command(subcommand)]
        action: RosterCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Import a package (a ZIP, or a directory of its CSV files) into a
    /// district, and print the report as a table. Exit 0 when it was
    /// applied (or planned, with --dry-run), 1 when it was refused (every
    /// problem is printed, one per line) or the service could not be reached.
    Import {
        /// The service, e.g. http://127.0.0.1:8001.
        #[arg(long, value_name = "URL")]
        url: String,
        /// The district's tenant id.
        #[arg(long, value_name = "ID")]
        district: u64,
        /// Who imports (sent as X-User-ID).
        #[arg(long, env = "TENANT_USER", value_name = "USER")]
        user: Option<String>,
        /// Who imports, as a bearer token (for a service in jwt mode).
        #[arg(long, env = "TENANT_TOKEN", value_name = "TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Answer what the import would do, changing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// FILE.zip or DIR.
        #[arg(value_name = "FILE.zip|DIR")]
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit hash chains; print one JSON report per tenant. Exit 0 if
    /// every chain is intact, 3 if one is not, 1 if the store cannot be read
    /// (2 is a usage error, as for every command).
    Verify {
        /// Only this tenant (default: every tenant).
        #[arg(long, value_name = "ID")]
        tenant: Option<u64>,
    },
    /// Write every audit entry older than a time, of every tenant, to a new
    /// JSON Lines file (fsynced). Exit 0 on success, 1 otherwise.
    Export {
        /// Entries created before this: an RFC 3339 time or a date (UTC midnight).
        #[arg(long, value_name = "DATE")]
        before: String,
        /// The file to create (an existing file is never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Where to listen: `host:port`, with a host name (`localhost:8001`), an
/// IPv4 address or a bracketed IPv6 one (`[::1]:8001`). Resolved when the
/// listener is bound.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddr(String);

impl ListenAddr {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let bad = || format!("{raw:?} is not host:port (e.g. 127.0.0.1:8001 or localhost:8001)");
        let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && (host.parse::<std::net::IpAddr>().is_ok()
                || (host.starts_with('[') && host.ends_with(']'))
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
        if host_ok && port.parse::<u16>().is_ok() {
            Ok(ListenAddr(raw.to_owned()))
        } else {
            Err(bad())
        }
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        raw.parse()
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: ListenAddr,
    pub data_dir: PathBuf,
    pub log_level: String,
    /// `text` (the default) or `json`: one JSON object per log line.
    pub log_format: String,
    pub max_body_bytes: u64,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// A request's head must arrive within this once its first byte has (a
    /// new connection: once it is accepted). Slow clients are cut.
    pub header_timeout_ms: u64,
    /// A kept-alive connection with no request for this long after its last
    /// answer is closed, so that silent clients give their slot back.
    pub idle_timeout_ms: u64,
    /// A request's body must have arrived within this of its head; a slower
    /// one is answered 400 and its connection closed.
    pub body_timeout_ms: u64,
    /// Messages that may wait for one tenant's actor; more are answered 503.
    pub mailbox_bound: usize,
    pub auth: AuthSettings,
    pub audit: AuditSettings,
    pub idempotency: IdempotencySettings,
    pub http: HttpSettings,
    /// The configuration file these settings were read from (none: the
    /// built-in defaults, flags and environment only). Set by `load`.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    pub roster: RosterSettings,
    /// `[replication]`: the change feed on NATS JetStream and the warm
    /// standby. Absent (the default): sled alone, nothing else to run.
    pub replication: Option<ReplicationSettings>,
}

/// Whether a reply waits for JetStream (`[replication] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    /// Replies once the change is on this disk; the outbox publishes it
    /// after (a NATS outage never blocks a write).
    Async,
    /// Replies once JetStream has also acknowledged it (on a quorum of
    /// NATS servers); 503 REPLICATION_UNAVAILABLE when it cannot.
    Sync,
}

/// `[replication]` (see docs/FEED.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationSettings {
    /// NATS servers, e.g. `["nats://10.0.0.5:4222", ...]`.
    pub nats_urls: Vec<String>,
    pub mode: FeedMode,
    /// The JetStream stream of changes (created if missing).
    pub stream: String,
    /// Subjects are `<subject_prefix>.<district>.<tenant>`.
    pub subject_prefix: String,
    /// Copies JetStream keeps of the stream (and of the lease bucket).
    pub replicas: usize,
    /// This instance's name on the feed and in the lease (unique per instance).
    pub node_id: String,
    /// The URL a standby names as where writes go (default: `http://<listen>`).
    pub advertise_url: Option<String>,
    /// `true`: a primary and warm standbys share the stream; who may write
    /// is decided by the lease in `lease_bucket` (see docs/FEED.md).
    pub leadership: bool,
    pub lease_bucket: String,
    /// How long a lease lasts unless renewed (renewed every fifth of it).
    /// Longer than twice a NATS election, so that losing one NATS server
    /// is not a failover (docs/FEED.md).
    pub lease_ttl_ms: u64,
    /// Sync mode: how long a reply waits for JetStream before 503, and how
    /// long NATS may be out of reach before writes are refused at once.
    pub sync_timeout_ms: u64,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        ReplicationSettings {
            nats_urls: Vec::new(),
            mode: FeedMode::Async,
            stream: "TENANT_CHANGES".into(),
            subject_prefix: "tenant.changes".into(),
            replicas: 1,
            node_id: "tenant-service".into(),
            advertise_url: None,
            leadership: false,
            lease_bucket: "TENANT_LEADER".into(),
            lease_ttl_ms: 20_000,
            sync_timeout_ms: 12_000,
        }
    }
}

/// `[idempotency]`: how long the answer to a write sent with an
/// `Idempotency-Key` is kept for its retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// At least 24: a client retrying for a day must get its first answer.
    pub retention_hours: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings { retention_hours: 24 }
    }
}

/// `[http]`: what browsers may do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Origins whose pages may call the API from a browser (CORS), e.g.
    /// `https://admin.example.org`. None (the default): no CORS headers.
    pub cors_origins: Vec<String>,
}

/// `[roster]`: roster imports (`POST /api/v1/district/{id}/roster`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RosterSettings {
    /// The largest package (ZIP) taken, in bytes; larger ones get 413. What
    /// its files may unpack to is bounded at 8 times this.
    pub max_bytes: u64,
}

impl Default for RosterSettings {
    fn default() -> Self {
        RosterSettings {
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[audit]`: retention of the audit trail.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Entries older than this many days are exported, then purged (checked
    /// at start and every hour). None: keep forever.
    pub retention_days: Option<u64>,
    /// Where retention writes its exports (default: `<data_dir>/audit-exports`).
    pub export_dir: Option<PathBuf>,
}

/// How callers are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Trust `X-User-ID`, set by a gateway in front of the service.
    Header,
    /// `Authorization: Bearer <JWT>`; `sub` is the user id.
    Jwt,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// `false` restores the old service's anything-goes behaviour.
    pub enforce_roles: bool,
    /// Users who may do everything, including create districts.
    pub platform_admins: Vec<String>,
    /// HS256 shared secret (prefer the env var TENANT_JWT_SECRET over the file).
    pub jwt_secret: Option<String>,
    /// RS256: PEM file holding the public key.
    pub jwt_public_key_file: Option<PathBuf>,
    /// Checked against `iss` when set.
    pub jwt_issuer: Option<String>,
    /// Checked against `aud` when set.
    pub jwt_audience: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::Header,
            enforce_roles: true,
            platform_admins: Vec::new(),
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_issuer: None,
            jwt_audience: None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: ListenAddr("127.0.0.1:8001".into()),
            data_dir: PathBuf::from("./data"),
            log_level: "info".into(),
            log_format: "text".into(),
            max_body_bytes: 64 * 1024,
            max_connections: 4096,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 5_000,
            body_timeout_ms: 5_000,
            mailbox_bound: 1024,
            auth: AuthSettings::default(),
            audit: AuditSettings::default(),
            idempotency: IdempotencySettings::default(),
            http: HttpSettings::default(),
            config_file: None,
            roster: RosterSettings::default(),
            replication: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is invalid: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {name} is invalid: {reason}")]
    Env { name: &'static str, reason: String },
    #[error(
        "log filter {0:?} is invalid: each part must be a level (trace, debug, info, warn, error, off) or target=level"
    )]
    LogFilter(String),
    #[error("setting {setting} = {value:?} is invalid: {reason}")]
    InvalidText {
        setting: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("setting {setting} = {value} is invalid: {reason}")]
    Invalid {
        setting: &'static str,
        value: u64,
        reason: &'static str,
    },
}

/// A log filter (`log_level`, or `RUST_LOG`) the way this service takes it:
/// comma-separated parts, each a level or `target=level`. Stricter than
/// tracing's own syntax on purpose: there a mistyped level (`infoo`) is a
/// valid target name, and the service would start with no log at all.
pub fn check_log_filter(filter: &str) -> Result<(), ConfigError> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    let ok = !filter.trim().is_empty()
        && filter
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .all(|part| match part.split_once('=') {
                Some((target, l)) => !target.trim().is_empty() && level(l),
                None => level(part),
            });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::LogFilter(filter.to_owned()))
    }
}

/// A CORS origin as browsers send it: `scheme://host` or
/// `scheme://host:port`, nothing after (no path, no trailing slash), no
/// wildcard. Browsers compare origins byte for byte, so a near miss would
/// silently allow nothing.
pub fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let bad = |reason| {
        Err(ConfigError::InvalidText {
            setting: "[http] cors_origins",
            value: origin.to_owned(),
            reason,
        })
    };
    let Some((scheme, rest)) = origin.split_once("://") else {
        return bad("must be an origin such as https://admin.example.org (scheme://host[:port])");
    };
    if scheme != "http" && scheme != "https" {
        return bad("must start with http:// or https://");
    }
    // The last `:` starts a port unless it is inside `[...]` (IPv6).
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        }
    };
    if !host_ok {
        return bad("the host must be lowercase letters, digits, '-' and '.' (or a bracketed IPv6 address), with no path, no trailing slash and no wildcard");
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return bad("the port must be a number from 0 to 65535");
    }
    Ok(())
}

impl Settings {
    pub fn load(cli: &Cli) -> Result<Settings, ConfigError> {
        let file = match &cli.config {
            Some(path) => Some(path.clone()),
            None if Path::new("config.toml").exists() => Some(PathBuf::from("config.toml")),
            None => None,
        };
        let mut settings = match &file {
            Some(path) => Self::from_file(path)?,
            None => Settings::default(),
        };
        settings.config_file = file;
        if let Some(listen) = &cli.listen {
            settings.listen = listen.clone();
        }
        if let Some(dir) = &cli.data_dir {
            settings.data_dir = dir.clone();
        }
        settings.auth.apply_env(|name| std::env::var(name).ok())?;
        if let Ok(format) = std::env::var("TENANT_LOG_FORMAT") {
            settings.log_format = format;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Values that parse but must not be served with; checked by `load`, so
    /// when the binary starts. (Tests that build `Settings` in code may go
    /// below these: the retention tests purge everything with 0 days.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, value, reason| Err(ConfigError::Invalid { setting, value, reason });
        if let Some(days @ 0) = self.audit.retention_days {
            // Every entry is older than zero days: the whole trail would be
            // exported and purged at each start.
            return invalid(
                "[audit] retention_days",
                days,
                "must be at least 1 day (0 would export and purge the whole audit trail)",
            );
        }
        if self.idempotency.retention_hours < 24 {
            return invalid(
                "[idempotency] retention_hours",
                self.idempotency.retention_hours,
                "must be at least 24 hours (a client retrying within a day must get its first answer)",
            );
        }
        check_log_filter(&self.log_level)?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::InvalidText {
                setting: "log_format",
                value: self.log_format.clone(),
                reason: "must be text or json",
            });
        }
        for origin in &self.http.cors_origins {
            check_origin(origin)?;
        }
        for (setting, ms) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
        ] {
            if ms == 0 {
                return invalid(setting, ms, "must be at least 1 ms");
            }
        }
        if let Some(r) = &self.replication {
            r.validate()?;
        }
        if self.roster.max_bytes == 0 {
            return invalid(
                "[roster] max_bytes",
                0,
                "must be at least 1 byte (0 would refuse every package)",
            );
        }
        Ok(())
    }

    fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }
}

impl ReplicationSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let text = |setting, value: &str, reason| {
            Err(ConfigError::InvalidText {
                setting,
                value: value.to_owned(),
                reason,
            })
        };
        if self.nats_urls.is_empty() {
            return text("[replication] nats_urls", "[]", "must name at least one NATS server");
        }
        let token = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token(&self.stream) {
            return text(
                "[replication] stream",
                &self.stream,
                "must be letters, digits, '-' or '_'",
            );
        }
        if !token(&self.lease_bucket) {
            return text(
                "[replication] lease_bucket",
                &self.lease_bucket,
                "must be letters, digits, '-' or '_'",
            );
        }
        if !token(&self.node_id) {
            return text(
                "[replication] node_id",
                &self.node_id,
                "must be letters, digits, '-' or '_'",
            );
        }
        if !self.subject_prefix.split('.').all(token) {
            return text(
                "[replication] subject_prefix",
                &self.subject_prefix,
                "must be dot-separated tokens of letters, digits, '-' or '_'",
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::Invalid {
                setting: "[replication] replicas",
                value: self.replicas as u64,
                reason: "must be 1 to 5",
            });
        }
        if self.lease_ttl_ms < 1_000 {
            return Err(ConfigError::Invalid {
                setting: "[replication] lease_ttl_ms",
                value: self.lease_ttl_ms,
                reason: "must be at least 1000 ms",
            });
        }
        if self.sync_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                setting: "[replication] sync_timeout_ms",
                value: 0,
                reason: "must be at least 1 ms",
            });
        }
        Ok(())
    }
}

impl AuthSettings {
    /// Environment overrides for `[auth]`. Read here rather than as flags so
    /// that a secret never appears in a process listing.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(mode) = var("TENANT_AUTH_MODE") {
            self.mode = match mode.trim() {
                "header" => AuthMode::Header,
                "jwt" => AuthMode::Jwt,
                other => {
                    return Err(ConfigError::Env {
                        name: "TENANT_AUTH_MODE",
                        reason: format!("{other:?} is not header or jwt"),
                    })
                }
            };
        }
        if let Some(flag) = var("TENANT_ENFORCE_ROLES") {
            self.enforce_roles = match flag.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(ConfigError::Env {
                        name: "TENANT_ENFORCE_ROLES",
                        reason: format!("{other:?} is not true or false"),
                    })
                }
            };
        }
        if let Some(list) = var("TENANT_PLATFORM_ADMINS") {
            self.platform_admins = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(secret) = var("TENANT_JWT_SECRET") {
            self.jwt_secret = Some(secret);
        }
        if let Some(path) = var("TENANT_JWT_PUBLIC_KEY_FILE") {
            self.jwt_public_key_file = Some(PathBuf::from(path));
        }
        if let Some(iss) = var("TENANT_JWT_ISSUER") {
            self.jwt_issuer = Some(iss);
        }
        if let Some(aud) = var("TENANT_JWT_AUDIENCE") {
            self.jwt_audience = Some(aud);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let from_file = Settings::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let defaults = Settings::default();
        assert_eq!(from_file.listen, defaults.listen);
        assert_eq!(from_file.data_dir, defaults.data_dir);
        assert_eq!(from_file.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(from_file.max_connections, defaults.max_connections);
        assert_eq!(from_file.header_timeout_ms, defaults.header_timeout_ms);
        assert_eq!(from_file.idle_timeout_ms, defaults.idle_timeout_ms);
        assert_eq!(from_file.body_timeout_ms, defaults.body_timeout_ms);
        assert_eq!(from_file.mailbox_bound, defaults.mailbox_bound);
        assert_eq!(from_file.log_format, defaults.log_format);
        assert_eq!(from_file.http.cors_origins, defaults.http.cors_origins);
        assert_eq!(from_file.roster.max_bytes, defaults.roster.max_bytes);
    }

    #[test]
    fn settings_that_must_not_be_served_with_are_refused() {
        assert!(Settings::default().validate().is_ok());
        let mut s = Settings::default();
        s.audit.retention_days = Some(1);
        assert!(s.validate().is_ok());
        s.audit.retention_days = Some(0);
        let err = s.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("[audit] retention_days = 0"), "{err}");
        for filter in ["info", "warn,tenant_service=debug", "tenant_service::request=off, INFO"] {
            assert!(check_log_filter(filter).is_ok(), "{filter}");
        }
        for filter in ["infoo", "", "tenant_service=loud", "=info", "info,,debug x"] {
            assert!(check_log_filter(filter).is_err(), "{filter:?}");
        }
        for zero in [
            |s: &mut Settings| s.header_timeout_ms = 0,
            |s: &mut Settings| s.idle_timeout_ms = 0,
            |s: &mut Settings| s.body_timeout_ms = 0,
        ] {
            let mut s = Settings::default();
            zero(&mut s);
            assert!(s.validate().is_err(), "{s:?}");
        }
    }

    #[test]
    fn log_format_is_text_or_json() {
        let mut s = Settings::default();
        assert_eq!(s.log_format, "text");
        s.log_format = "json".into();
        assert!(s.validate().is_ok());
        for bad in ["xml", "JSON", "", " json"] {
            s.log_format = bad.into();
            let err = s.validate().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.starts_with("setting log_format = ")
                    && err.ends_with("must be text or json")
                    && !err.contains('\n'),
                "{bad:?}: {err}"
            );
        }
        let from_toml: Settings = toml::from_str("log_format = \"json\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_toml.log_format, "json");
    }

    #[test]
    fn cors_origins_must_be_exact_origins() {
        let s: Settings =
            toml::from_str("[http]\ncors_origins = [\"https://admin.example.org\"]").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.http.cors_origins, vec!["https://admin.example.org".to_owned()]);
        assert!(s.validate().is_ok());
        assert!(Settings::default().http.cors_origins.is_empty());
        for ok in [
            "https://admin.example.org",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "http://[::1]",
        ] {
            assert!(check_origin(ok).is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "admin.example.org",
            "https://admin.example.org/",
            "https://admin.example.org/console",
            "https://*.example.org",
            "ftp://example.org",
            "https://Admin.example.org",
            "https://example.org:99999",
            "https://",
        ] {
            let err = check_origin(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.starts_with("setting [http] cors_origins = "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn auth_env_overrides() {
        let mut auth = AuthSettings::default();
        let env = [
            ("TENANT_AUTH_MODE", "jwt"),
            ("TENANT_ENFORCE_ROLES", "false"),
            ("TENANT_PLATFORM_ADMINS", "root, ops ,"),
            ("TENANT_JWT_SECRET", "s3cret"),
        ];
        let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        auth.apply_env(lookup).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(auth.mode, AuthMode::Jwt);
        assert!(!auth.enforce_roles);
        assert_eq!(auth.platform_admins, vec!["root".to_owned(), "ops".to_owned()]);
        assert_eq!(auth.jwt_secret.as_deref(), Some("s3cret"));
        let bad = |name: &str| (name == "TENANT_ENFORCE_ROLES").then(|| "maybe".to_owned());
        assert!(AuthSettings::default().apply_env(bad).is_err());
    }

    #[test]
    fn listen_addresses_take_host_names() {
        for ok in [
            "127.0.0.1:8001",
            "localhost:8001",
            "[::1]:8001",
            "tenant-svc.internal:80",
            "0.0.0.0:0",
        ] {
            assert_eq!(
                ok.parse::<ListenAddr>().map(|a| a.as_str().to_owned()),
                Ok(ok.to_owned())
            );
        }
        for bad in [
            "localhost",
            ":8001",
            "localhost:",
            "localhost:99999",
            "local host:1",
            "a/b:1",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let cli = Cli::parse_from(["tenant-service", "--listen", "127.0.0.1:9999", "--data-dir", "/tmp/x"]);
        let s = Settings::load(&cli).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.as_str(), "127.0.0.1:9999");
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
    }
}
