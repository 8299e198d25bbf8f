//! Files that hold faces (outbox records and JPEGs, spool entries): created
//! owner-only (files 0600, directories 0700), or readable by one configured
//! group for a consumer (0640/0750), whatever the process umask. Faces are
//! biometric data; another local user must not read them.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{chown, Gid};

crate::error::context_error!(
    /// `outbox.group` names no group this system knows.
    GroupError,
    ""
);

/// Who may read what faceflow writes: the owner, and optionally one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Access {
    /// A group that may read (not write) the files, e.g. an exporter's.
    pub group: Option<Gid>,
}

impl Access {
    /// Owner-only: 0600 files, 0700 directories.
    pub(crate) const PRIVATE: Access = Access { group: None };

    /// Owner-only, or readable by `group` (a group name or number).
    pub(crate) fn with_group(group: Option<&str>) -> Result<Access, GroupError> {
        let Some(name) = group.filter(|g| !g.is_empty()) else { return Ok(Access::PRIVATE) };
        if let Ok(n) = name.parse::<u32>() {
            return Ok(Access { group: Some(Gid::from_raw(n)) });
        }
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Ok(Access { group: Some(g.gid) }),
            Ok(None) => Err(GroupError::new(format!("no group named {name:?} on this system"))),
            Err(e) => Err(GroupError::caused(format!("looking up group {name:?}"), e)),
        }
    }

    pub(crate) fn file_mode(self) -> u32 {
        if self.group.is_some() {
            0o640
        } else {
            0o600
        }
    }

    pub(crate) fn dir_mode(self) -> u32 {
        if self.group.is_some() {
            0o750
        } else {
            0o700
        }
    }

    /// Sets mode (and group) on an existing path: a directory left by an
    /// older version, or made under a wide umask, is narrowed.
    fn apply(self, path: &Path, mode: u32) -> std::io::Result<()> {
        if let Some(gid) = self.group {
            chown(path, None, Some(gid)).map_err(std::io::Error::from)?;
        }
        std::fs::set_permissions(path, Permissions::from_mode(mode))
    }

    /// Creates `dir` and its missing parents with the directory mode, and
    /// narrows `dir` itself if it existed wider.
    pub fn create_dir_all(self, dir: &Path) -> std::io::Result<()> {
        DirBuilder::new().recursive(true).mode(self.dir_mode()).create(dir)?;
        let wanted = self.dir_mode();
        let meta = std::fs::metadata(dir)?;
        if meta.permissions().mode() & 0o777 != wanted || self.group.is_some() {
            self.apply(dir, wanted)?;
        }
        Ok(())
    }

    /// A new file, truncated, with the file mode set explicitly (the mode
    /// given to open(2) is masked by the umask; set_permissions is not).
    pub fn create(self, path: &Path) -> std::io::Result<File> {
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(self.file_mode()).open(path)?;
        if let Some(gid) = self.group {
            nix::unistd::fchown(&f, None, Some(gid)).map_err(std::io::Error::from)?;
        }
        f.set_permissions(Permissions::from_mode(self.file_mode()))?;
        Ok(f)
    }

    /// Writes `bytes` to a temporary name, fsyncs and renames it into
    /// place, so a reader never sees a half-written file.
    pub(crate) fn write_atomic(self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        {
            let mut f = self.create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn modes_hold_under_a_permissive_umask() {
        let base = std::env::temp_dir().join(format!("faceflow-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // umask is process-wide: the mode is set explicitly, so a umask of
        // 000 (or any other a sibling test leaves) changes nothing here.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        let dir = base.join("a/b");
        Access::PRIVATE.create_dir_all(&dir).unwrap();
        let file = dir.join("x.jpg");
        Access::PRIVATE.write_atomic(&file, b"face").unwrap();
        nix::sys::stat::umask(old);
        assert_eq!(mode(&base.join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"face");
        // A directory made wide before is narrowed.
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        Access::PRIVATE.create_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // With a group (our own, so chown is allowed): group may read.
        let own = Access { group: Some(nix::unistd::getegid()) };
        own.create_dir_all(&dir).unwrap();
        own.write_atomic(&file, b"face").unwrap();
        assert_eq!(mode(&dir), 0o750);
        assert_eq!(mode(&file), 0o640);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn groups_resolve_by_name_or_number_and_unknown_ones_are_named() {
        assert_eq!(Access::with_group(None).unwrap(), Access::PRIVATE);
        assert_eq!(Access::with_group(Some("")).unwrap(), Access::PRIVATE);
        assert_eq!(Access::with_group(Some("0")).unwrap().group, Some(Gid::from_raw(0)));
        assert_eq!(Access::with_group(Some("root")).unwrap().group, Some(Gid::from_raw(0)));
        let e = Access::with_group(Some("no-such-group-faceflow")).unwrap_err().to_string();
        assert!(e.contains("no-such-group-faceflow"), "{e}");
    }
}
