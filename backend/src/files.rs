//! Writing files safely, for every layer: durable replacement ([`write_atomically`]), staging names that
//! two writers never share ([`staging_path`]), and what a failed write means for the person who asked
//! ([`WriteFailure`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` durably: to a temporary file beside it, flushed to the disk, then renamed
/// over `path`, so a crash leaves either the old file or the new one, never half of one. A failed write
/// (a full disk, say) removes the temporary file. Each write has a temporary file of its own
/// (`<path>.<pid>-<n>.partial`), so two writers of one path at once (the same image added twice) never
/// rename each other's file away; the last rename wins whole. The caller syncs the folder when the rename
/// itself must survive a power cut (see [`crate::engine::run_dir`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}-{}.partial", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed)));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Flushes `dir`'s entries to the disk, so that a rename into it survives a power cut.
pub fn sync_folder(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir).and_then(|folder| folder.sync_all())
}

/// A hidden path in `dir` for staging something that will be called `name`: `.upload-<n>-<name><suffix>`,
/// numbered within this process and by its id, so two uploads of one name at once never write into the
/// same file, and named `.upload-*`, so the studio removes one cut short by a crash when it next opens.
pub fn staging_path(dir: &Path, name: &str, suffix: &str) -> PathBuf {
    static STAGED: AtomicU64 = AtomicU64::new(0);
    let number = STAGED.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".upload-{}-{number}-{name}{suffix}", std::process::id()))
}

/// What a failed write means to the person who asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// The disk (or the user's quota) is full: nothing was kept, and freeing space helps.
    DiskFull,
    /// A name is too long for the file system, or not one it can store.
    BadName,
    /// Anything else: the server's fault, not the request's.
    Other,
}

impl WriteFailure {
    /// The kind of `error`.
    pub fn of(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => WriteFailure::DiskFull,
            io::ErrorKind::InvalidFilename => WriteFailure::BadName,
            _ => WriteFailure::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_paths_of_one_name_differ_and_are_hidden_uploads() {
        let dir = Path::new("/data");
        let (a, b) = (staging_path(dir, "pets", ".zip"), staging_path(dir, "pets", ".zip"));
        assert_ne!(a, b);
        for path in [a, b] {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with(".upload-") && name.ends_with("-pets.zip"), "{name}");
        }
    }

    #[test]
    fn a_full_disk_and_a_long_name_are_told_apart_from_other_failures() {
        let full = io::Error::from_raw_os_error(28); // ENOSPC
        let long = io::Error::from_raw_os_error(36); // ENAMETOOLONG
        let denied = io::Error::from_raw_os_error(13); // EACCES
        assert_eq!(WriteFailure::of(&full), WriteFailure::DiskFull);
        assert_eq!(WriteFailure::of(&long), WriteFailure::BadName);
        assert_eq!(WriteFailure::of(&denied), WriteFailure::Other);
    }

    /// Regression: the temporary file was `<path>.partial` for every writer, so of two writers of one path
    /// at once the second's rename failed with "No such file or directory" (make test's burst of one
    /// image added 16 times at once answered 500).
    #[test]
    fn writers_of_one_path_at_once_all_succeed_and_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("same.png");
        std::thread::scope(|scope| {
            for writer in 0..16u8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..20 {
                        write_atomically(path, &[writer; 4096]).unwrap();
                    }
                });
            }
        });
        let kept = std::fs::read(&path).unwrap();
        assert!(kept.len() == 4096 && kept.iter().all(|&byte| byte == kept[0]), "one writer's bytes, whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn a_name_too_long_for_the_file_system_is_a_bad_name() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_atomically(&dir.path().join("x".repeat(300)), b"1").unwrap_err();
        assert_eq!(WriteFailure::of(&error), WriteFailure::BadName);
    }
}
