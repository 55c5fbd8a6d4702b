//! Replacing a small file durably: the gateway's own files (judge state, threshold
//! overrides, tokens) are written whole to `{file}.tmp`, fsynced, renamed over the old
//! file and the directory fsynced — so after a power cut the file is the old one or the
//! new one, never torn, and the rename itself is on disk.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

/// Who may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The process's umask decides.
    Default,
    /// The owner only (0600): secrets.
    Owner,
}

/// Writes `bytes` to `path` durably, creating its directory.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = temporary(path);
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if access == Access::Owner {
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `{path}.tmp`, beside it (a rename never crosses file systems).
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        replace(&path, b"{\"a\":1}", Access::Default).unwrap();
        replace(&path, b"{}", Access::Owner).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert!(!temporary(&path).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let under_a_file = dir.path().join("file/state.json");
        assert!(replace(&under_a_file, b"{}", Access::Default).is_err());
    }
}
