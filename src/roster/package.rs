//! A roster package's bytes: the ZIP the binding ships in, unpacked as far
//! as the import needs (the four files it reads, from the archive's root).

use std::collections::BTreeMap;
use std::io::Read;

/// The files an import reads. Any other file of the package is ignored.
pub const READ: [&str; 4] = ["manifest.csv", "orgs.csv", "users.csv", "roles.csv"];

/// The files of a package the import reads, by name, and the names of every
/// file at the archive's root.
#[derive(Debug, Default, Clone)]
pub struct Files {
    pub read: BTreeMap<&'static str, Vec<u8>>,
    pub names: Vec<String>,
}

impl Files {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.read.get(name).map(Vec::as_slice)
    }

    /// A package made of these files (tests, and the CLI's directory).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Vec<u8>)>) -> Files {
        let mut files = Files::default();
        for (name, bytes) in pairs {
            files.names.push(name.to_owned());
            if let Some(known) = READ.iter().find(|n| **n == name) {
                files.read.insert(known, bytes);
            }
        }
        files
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the body is not a ZIP archive: {0}")]
    NotZip(String),
    #[error("{name} in the ZIP archive cannot be read: {reason}")]
    Entry { name: String, reason: String },
    #[error("the files the import reads unpack to more than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Reads the package's files from a ZIP archive. `unpacked_limit` bounds
/// what the files read may unpack to, all together (a small archive can
/// unpack to gigabytes).
pub fn read_zip(bytes: &[u8], unpacked_limit: u64) -> Result<Files, PackageError> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| PackageError::NotZip(e.to_string()))?;
    let mut files = Files::default();
    let mut budget = unpacked_limit;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| PackageError::Entry {
            name: format!("entry {i}"),
            reason: e.to_string(),
        })?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(|e| PackageError::Entry {
            name: format!("entry {i}"),
            reason: e.to_string(),
        })?;
        let name = name.into_owned();
        if name.contains('/') {
            // Not at the root: the binding's files are never in a folder.
            files.names.push(name);
            continue;
        }
        let Some(known) = READ.iter().find(|n| **n == name) else {
            files.names.push(name);
            continue;
        };
        let mut out = Vec::new();
        let read = (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut out)
            .map_err(|e| PackageError::Entry {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        if read as u64 > budget {
            return Err(PackageError::TooLarge { limit: unpacked_limit });
        }
        budget -= read as u64;
        files.names.push(name);
        files.read.insert(known, out);
    }
    Ok(files)
}

/// A ZIP of `files` (name, contents), deflated: how the CLI sends a
/// directory, and how tests and benches build packages.
pub fn write_zip<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(name, options).map_err(std::io::Error::other)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

/// The package in a directory: every regular file directly in it.
pub fn read_dir(dir: &std::path::Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((name, std::fs::read(entry.path())?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zip_round_trips_and_only_root_files_are_read() {
        let zip = write_zip([
            ("manifest.csv", &b"propertyName,value\n"[..]),
            ("users.csv", b"sourcedId\n"),
            ("classes.csv", b"x\n"),
            ("nested/roles.csv", b"y\n"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let files = read_zip(&zip, 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(files.get("manifest.csv"), Some(&b"propertyName,value\n"[..]));
        assert_eq!(files.get("users.csv"), Some(&b"sourcedId\n"[..]));
        assert_eq!(files.get("roles.csv"), None);
        assert!(files.names.iter().any(|n| n == "classes.csv"));
    }

    #[test]
    fn unpacking_is_bounded_and_garbage_is_not_a_zip() {
        let big = vec![b'a'; 10_000];
        let zip = write_zip([("users.csv", &big[..])]).unwrap_or_else(|e| panic!("{e}"));
        assert!(zip.len() < 1_000, "deflate should shrink it");
        assert!(matches!(read_zip(&zip, 9_999), Err(PackageError::TooLarge { .. })));
        assert!(read_zip(&zip, 10_000).is_ok());
        assert!(matches!(read_zip(b"not a zip", 100), Err(PackageError::NotZip(_))));
    }
}
