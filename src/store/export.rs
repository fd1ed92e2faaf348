//! `tenant-service audit export`: every audit entry older than a time, from
//! every tenant's trail, as JSON Lines, made durable (fsync) before success
//! is reported. Reads only; the service must not hold the data dir.

use std::path::{Path, PathBuf};

use crate::domain::{AuditFilter, AuditQuery, Id, Order, TenantId, Timestamp};

use super::retain::export_tenant;
use super::{open_db, records, OpenError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] OpenError),
    #[error("cannot read the audit trail in data dir {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Writes every entry with `created_at < before` to `out` (which must not
/// exist yet: an export never overwrites), tenant by tenant, each tenant's
/// in trail order. Returns how many entries were written.
pub fn export_dir(dir: &Path, before: Timestamp, out: &Path) -> Result<u64, ExportError> {
    if !dir.is_dir() {
        return Err(OpenError::NoDataDir(dir.to_path_buf()).into());
    }
    let db = open_db(dir)?;
    let read_err = |e: &dyn std::fmt::Display| ExportError::Read {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let write_err = |source| ExportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut tenants = Vec::new();
    for k in db.scan_prefix([records::TENANT]).keys() {
        let k = k.map_err(|e| read_err(&e))?;
        tenants.extend(records::key_id(&k).and_then(TenantId::new));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(write_err)?;
    let mut writer = std::io::BufWriter::new(file);
    let query = AuditQuery {
        tenant: None,
        seat: None,
        filter: AuditFilter {
            until: Some(before),
            ..AuditFilter::default()
        },
        order: Order::Asc,
        limit: usize::MAX,
        after: None,
    };
    let mut written = 0u64;
    for tenant in tenants {
        written += export_tenant(&db, tenant, &query, &mut writer)
            .map_err(|e| read_err(&e))?
            .lines;
    }
    let file = writer.into_inner().map_err(|e| write_err(e.into_error()))?;
    // Durable before success is reported: an export is what a purge would
    // rely on.
    file.sync_all().map_err(write_err)?;
    Ok(written)
}
