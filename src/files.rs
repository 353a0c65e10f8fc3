//! Files that hold password hashes (the database, backups, exports with
//! users) are created readable by their owner only, whatever the umask
//! (SPEC 2.7).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Owner read and write, nobody else.
pub const PRIVATE: u32 = 0o600;

/// Creates `path`, which must not exist yet, with mode 0600.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE)
        .open(path)
}

/// Whether others than the owner may read the file at `path`.
pub fn readable_by_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_whatever_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let a = dir.path().join("a");
        create_new_private(&a).unwrap();
        assert_eq!(mode(&a), 0o600);
        assert!(create_new_private(&a).is_err(), "never replaces a file");
        assert!(!readable_by_others(&a));
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(readable_by_others(&a));
    }
}
