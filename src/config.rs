//! Settings: built-in defaults, overridden by `config.toml`, then environment
//! variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "tenant-service",
    version,
    about = "Tenants, seat pools, roles and the seat audit trail"
)]
pub struct Cli {
    /// Configuration file (default: ./config.toml if it exists).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8001.
    #[arg(long, env = "TENANT_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Directory holding the store.
    #[arg(long, env = "TENANT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log_level: String,
    pub max_body_bytes: u64,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// A request's head must arrive within this (slow or idle clients are cut).
    pub header_timeout_ms: u64,
    /// Messages that may wait for one tenant's actor; more are answered 503.
    pub mailbox_bound: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            data_dir: PathBuf::from("./data"),
            log_level: "info".into(),
            max_body_bytes: 64 * 1024,
            max_connections: 4096,
            header_timeout_ms: 10_000,
            mailbox_bound: 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is invalid: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
}

impl Settings {
    pub fn load(cli: &Cli) -> Result<Settings, ConfigError> {
        let mut settings = match &cli.config {
            Some(path) => Self::from_file(path)?,
            None if Path::new("config.toml").exists() => Self::from_file(Path::new("config.toml"))?,
            None => Settings::default(),
        };
        if let Some(listen) = cli.listen {
            settings.listen = listen;
        }
        if let Some(dir) = &cli.data_dir {
            settings.data_dir = dir.clone();
        }
        Ok(settings)
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
        assert_eq!(from_file.mailbox_bound, defaults.mailbox_bound);
    }

    #[test]
    fn flags_override_the_file() {
        let cli = Cli::parse_from(["tenant-service", "--listen", "127.0.0.1:9999", "--data-dir", "/tmp/x"]);
        let s = Settings::load(&cli).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
    }
}
