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
    /// The owner only (0600): secrets. A file the administrator made readable by its
    /// group (0640, group `hazgate`: the service's tokens, written by root with
    /// `hazgate token`) keeps that group and its read bit when rewritten; never more.
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
        #[cfg(unix)]
        keep_group(path, &f, access)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The old file's group, and (for [`Access::Owner`]) its group-read bit, onto the new
/// one: a rewrite must not take a file away from the service that reads it.
#[cfg(unix)]
fn keep_group(path: &Path, new: &std::fs::File, access: Access) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(old) = std::fs::metadata(path) else {
        return Ok(());
    };
    if new.metadata()?.gid() != old.gid() {
        std::os::unix::fs::fchown(new, None, Some(old.gid()))?;
    }
    if access == Access::Owner {
        let mode = 0o600 | (old.mode() & 0o040);
        new.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
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
            // Owner read-write; at most group read (kept from the old file), no more.
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o737, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_keeps_the_group_read_the_administrator_gave_it_and_nothing_more() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        replace(&path, b"{}", Access::Owner).unwrap();
        assert_eq!(mode(&path), 0o600, "a new secret is the owner's");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // As root (CI, a package's postinst), the file is given to another group.
        let root = std::fs::metadata(dir.path()).unwrap().uid() == 0
            && std::os::unix::fs::chown(&path, None, Some(4242)).is_ok();
        replace(&path, b"{\"tokens\":[]}", Access::Owner).unwrap();
        assert_eq!(mode(&path), 0o640, "group read kept, world read dropped");
        if root {
            assert_eq!(std::fs::metadata(&path).unwrap().gid(), 4242);
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
