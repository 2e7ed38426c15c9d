//! Private files on disk: directories created 0700, files 0600, written under a temporary name
//! and published with a link that refuses to replace anything, then synced. Nothing here
//! follows a symbolic link or opens a FIFO at a target name.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One file written into a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WrittenFile {
    /// File name inside the bundle directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, lowercase hex.
    pub sha256: String,
}

fn io_error(path: &Path, action: &'static str, err: &std::io::Error) -> Error {
    Error::Io { path: path.to_owned(), action, kind: err.kind(), message: err.to_string() }
}

/// Creates `dir` (and missing parents) with mode 0700, or accepts an existing directory only
/// if it is a real directory (not a link), owned by this user and not writable by others.
///
/// Every existing ancestor of `dir`, up to the root, is held to what a path to a private
/// directory needs, not to the same rules: owned by this user or by root, and not writable
/// by others unless sticky (`/tmp`, `/var/tmp`). They were once judged like `dir` itself, so
/// every user but root was refused a new directory under `/tmp`, which root owns. All of
/// them, not only the nearest: whoever may write to any one of them can rename what lies
/// below it and put a directory of their own in its place.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    ensure_dir(&absolute(dir), Role::Private)
}

/// Creates the directory `dir` exclusively, mode 0700: `Ok(false)` when something (anything:
/// a directory, file or link) exists at that name already. Its parent must exist and have
/// passed [`private_dir`]. For a directory that must be this call's alone (a bundle), where
/// [`private_dir`] would accept one another thread created a moment before.
pub(crate) fn fresh_private_dir(dir: &Path) -> Result<bool> {
    make_private_dir(dir)
}

/// What a directory is to [`ensure_dir`].
#[derive(Clone, Copy)]
enum Role {
    /// Where the files go: [`check_existing_dir`], and not a link.
    Private,
    /// Above it: [`check_ancestor`], links followed (`/var/run` is one): what they lead to
    /// is what is checked.
    Ancestor,
}

/// Creates `dir` (0700, its missing parents as ancestors) or checks it for its `role`; then
/// checks every existing ancestor above it.
fn ensure_dir(dir: &Path, role: Role) -> Result<()> {
    let meta = match role {
        Role::Private => fs::symlink_metadata(dir),
        Role::Ancestor => fs::metadata(dir),
    };
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    match meta {
        Ok(meta) => {
            match role {
                Role::Private => check_existing_dir(dir, &meta)?,
                Role::Ancestor => check_ancestor(dir, &meta)?,
            }
            match parent {
                Some(parent) => ensure_dir(parent, Role::Ancestor),
                None => Ok(()),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = parent {
                ensure_dir(parent, Role::Ancestor)?;
            }
            create_private(dir)
        }
        Err(e) => Err(io_error(dir, "inspect", &e)),
    }
}

/// Creates `dir`, mode 0700, its parent existing; judges it like any existing directory if
/// another process created it first.
fn create_private(dir: &Path) -> Result<()> {
    if make_private_dir(dir)? {
        return Ok(());
    }
    // Created meanwhile by someone else: judge it like any existing directory.
    let meta = fs::symlink_metadata(dir).map_err(|e| io_error(dir, "inspect", &e))?;
    check_existing_dir(dir, &meta)
}

/// `mkdir dir` with mode 0700 exactly: `Ok(false)` when something exists there already.
fn make_private_dir(dir: &Path) -> Result<bool> {
    // Only Unix sets a mode on it (elsewhere the directory inherits its parent's ACL).
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io_error(dir, "create directory", &e)),
    }
    // The umask can only remove bits; set 0700 exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(dir, "set permissions", &e))?;
    }
    Ok(true)
}

/// An existing ancestor: a directory owned by this user or root, and not writable by others
/// unless sticky (nobody can then replace what we create in it).
fn check_ancestor(dir: &Path, meta: &fs::Metadata) -> Result<()> {
    let refuse = |reason: &'static str| Err(Error::UnsafePath { path: dir.to_owned(), reason });
    if !meta.is_dir() {
        return refuse("exists and is not a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me && meta.uid() != 0 {
            return refuse("is owned by another user (not root)");
        }
        if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
            return refuse("is writable by group or others");
        }
    }
    Ok(())
}

fn check_existing_dir(dir: &Path, meta: &fs::Metadata) -> Result<()> {
    let refuse = |reason: &'static str| Err(Error::UnsafePath { path: dir.to_owned(), reason });
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link");
    }
    if !meta.is_dir() {
        return refuse("exists and is not a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return refuse("is owned by another user");
        }
        // The directory the files go into is private: a sticky one such as /tmp is fine
        // as an ancestor (see `check_ancestor`), not as the place itself.
        if meta.mode() & 0o022 != 0 {
            return refuse("is writable by group or others");
        }
    }
    Ok(())
}

/// Writes `contents` to `dir/name`, mode 0600, never replacing or following anything at
/// `dir/name`: the data goes to a fresh temporary file (created exclusively, not following
/// links, synced), which is then hard-linked to the final name (failing if anything exists
/// there), removed, and the directory synced. On any failure nothing appears under `name`.
pub(crate) fn write_new(dir: &Path, name: &str, contents: &[u8]) -> Result<WrittenFile> {
    match write_new_streamed(dir, name, u64::MAX, |out| out.write_all(contents))? {
        Some(written) => Ok(written),
        // A slice holds at most `isize::MAX` bytes, under the limit.
        None => Err(Error::Io {
            path: dir.join(name),
            action: "write",
            kind: std::io::ErrorKind::FileTooLarge,
            message: "over the size limit".to_owned(),
        }),
    }
}

/// [`write_new`] of what `write` writes, streamed to the temporary file through a small buffer
/// and hashed on the way, so that a large file (a report listing thousands of owners, a heap
/// profile) is never held in memory whole. `Ok(None)` when `write` would have written more than
/// `max_bytes`: nothing past that is written, and nothing appears under `name`.
pub(crate) fn write_new_streamed(
    dir: &Path,
    name: &str,
    max_bytes: u64,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<Option<WrittenFile>> {
    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
        return Err(Error::UnsafePath { path: dir.join(name), reason: "is not a plain file name" });
    }
    let target = dir.join(name);
    if fs::symlink_metadata(&target).is_ok() {
        return Err(Error::UnsafePath {
            path: target,
            reason: "already exists (file, link or FIFO)",
        });
    }
    let temp = temp_name(dir);
    let written = write_temp(&temp, max_bytes, write);
    let result = match written {
        Ok(Some(sink)) => fs::hard_link(&temp, &target)
            .map(|()| Some(sink))
            .map_err(|e| io_error(&target, "publish", &e)),
        other => other,
    };
    // The temporary name goes away whether or not the file was published.
    let _ = fs::remove_file(&temp);
    let Some((bytes, sha256)) = result? else { return Ok(None) };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Some(WrittenFile { name: name.to_owned(), bytes, sha256 }))
}

/// Publishes the complete file `source` (ours, 0600, in a private directory on the same file
/// system as `dir`) as `dir/name` by a hard link, never replacing or following anything at
/// `dir/name`, after reading it once through a buffer for its size and SHA-256 and syncing
/// it. Neither read into memory whole nor copied: a heap profile's dump grows with the process,
/// and on a tmpfs a copy would be memory too.
pub(crate) fn publish_file(dir: &Path, name: &str, source: &Path) -> Result<WrittenFile> {
    use std::io::Read;
    if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
        return Err(Error::UnsafePath { path: dir.join(name), reason: "is not a plain file name" });
    }
    let target = dir.join(name);
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    let mut file = options.open(source).map_err(|e| io_error(source, "open", &e))?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(source, "read", &e)),
        };
        hasher.update(buf.get(..n).unwrap_or_default());
        bytes = bytes.saturating_add(n as u64);
    }
    file.sync_all().map_err(|e| io_error(source, "sync", &e))?;
    fs::hard_link(source, &target).map_err(|e| io_error(&target, "publish", &e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(WrittenFile { name: name.to_owned(), bytes, sha256: format!("{:x}", hasher.finalize()) })
}

/// Moves the complete file `from` (ours, which nobody else writes) to `to`, a free name in a
/// private directory of ours, as a 0600 file: renamed when both are on one file system,
/// otherwise copied into a file created new (never following a link) and `from` removed.
/// Never through memory: the kernel copies (`copy_file_range`), or a small buffer does.
#[cfg(any(feature = "dhat", test))]
pub(crate) fn move_private(from: &Path, to: &Path) -> Result<()> {
    if let Err(e) = fs::rename(from, to) {
        // Across file systems (EXDEV) or an unusual link; anything else fails the copy too.
        let mut source = File::open(from).map_err(|_| io_error(from, "move", &e))?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        }
        let mut target = options.open(to).map_err(|e| io_error(to, "create", &e))?;
        if let Err(e) = std::io::copy(&mut source, &mut target) {
            let _ = fs::remove_file(to);
            return Err(io_error(to, "write", &e));
        }
        let _ = fs::remove_file(from);
    }
    // A renamed file keeps the mode its writer gave it (dhat's is 0644).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(to, fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error(to, "set permissions", &e))?;
    }
    Ok(())
}

/// Replaces `dir/name` (a file of ours in our private directory) atomically: temporary file,
/// sync, rename over it, sync the directory.
pub(crate) fn replace(dir: &Path, name: &std::ffi::OsStr, contents: &[u8]) -> Result<()> {
    replace_streamed(dir, name, |out| out.write_all(contents))
}

/// [`replace`] with what `write` writes, streamed to the temporary file through a small buffer
/// (a pressure dump's full report is never held in memory whole).
pub(crate) fn replace_streamed(
    dir: &Path,
    name: &std::ffi::OsStr,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let temp = temp_name(dir);
    let result = write_temp(&temp, u64::MAX, write).and_then(|written| match written {
        Some(_) => {
            fs::rename(&temp, dir.join(name)).map_err(|e| io_error(&dir.join(name), "replace", &e))
        }
        None => Err(Error::Io {
            path: temp.clone(),
            action: "write",
            kind: std::io::ErrorKind::FileTooLarge,
            message: "over the size limit".to_owned(),
        }),
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `contents` to the file `path`, readable by this user alone (0600), replacing it
/// atomically if it exists: the data goes to a fresh temporary file beside it (created
/// exclusively, not following links, synced) that is renamed over `path`. On failure `path` is
/// as it was. For the files a program writes next to heapscope's own (a timeline, a report).
///
/// # Errors
/// [`Error::Io`] when the file cannot be written or renamed into place (a missing directory, a
/// directory at `path`, a full disk); [`Error::UnsafePath`] when `path` has no file name.
///
/// Takes what [`std::fs::write`] takes: a `PathBuf` or `&str` as well as a `&Path`, and a
/// `String` or `Vec<u8>` as well as bytes.
///
/// ```
/// # heapscope::install!();
/// let path = std::env::temp_dir().join(format!("heapscope-doc-{}.json", std::process::id()));
/// heapscope::write_private(&path, b"{}")?;
/// heapscope::write_private(&path, b"{\"again\": true}")?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"{\"again\": true}");
/// // As with std::fs::write: a path built in place, and a String or Vec<u8> body.
/// let dir = std::env::temp_dir();
/// heapscope::write_private(dir.join(format!("heapscope-doc-{}.json", std::process::id())), String::from("{}"))?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), heapscope::Error>(())
/// ```
pub fn write_private(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<()> {
    write_private_impl(path.as_ref(), contents.as_ref())
}

fn write_private_impl(path: &Path, contents: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::UnsafePath { path: path.to_owned(), reason: "has no file name" })?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    replace(dir, name, contents)
}

/// A fresh temporary name in `dir`. Not derived from the final name: that may be up to the
/// file system's limit already (255 bytes), or not UTF-8, and a temporary name built on it
/// then failed to be created for a name that was fine.
fn temp_name(dir: &Path) -> PathBuf {
    dir.join(format!(".heapscope-{}-{:x}.tmp", std::process::id(), nonce()))
}

/// A file being written: through an 8 KiB buffer, counted and hashed on the way, refusing to
/// grow past a limit.
struct Sink {
    file: std::io::BufWriter<File>,
    hasher: Sha256,
    written: u64,
    max_bytes: u64,
    over: bool,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.written.saturating_add(buf.len() as u64);
        if end > self.max_bytes {
            self.over = true;
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "over the limit"));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.written = self.written.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Creates `temp` exclusively (0600, not following links), writes what `write` writes and
/// syncs it: its size and SHA-256 (lowercase hex), or `None` when `write` went past
/// `max_bytes`.
fn write_temp(
    temp: &Path,
    max_bytes: u64,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<Option<(u64, String)>> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    let file: File = options.open(temp).map_err(|e| io_error(temp, "create", &e))?;
    let mut sink = Sink {
        file: std::io::BufWriter::with_capacity(8 << 10, file),
        hasher: Sha256::new(),
        written: 0,
        max_bytes,
        over: false,
    };
    let wrote = write(&mut sink).and_then(|()| sink.flush());
    if sink.over {
        return Ok(None);
    }
    wrote.map_err(|e| io_error(temp, "write", &e))?;
    let Sink { file, hasher, written, .. } = sink;
    let file = file.into_inner().map_err(|e| io_error(temp, "write", e.error()))?;
    file.sync_all().map_err(|e| io_error(temp, "sync", &e))?;
    Ok(Some((written, format!("{:x}", hasher.finalize()))))
}

/// A value that differs between calls and processes, for temporary names.
fn nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (COUNTER.fetch_add(1, Relaxed) << 32) ^ time ^ (&COUNTER as *const _ as u64)
}

/// `path` made absolute against the current directory (for messages and manifests).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "heapscope-art-{}-{name}-{:x}",
            std::process::id(),
            nonce()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// Writes `contents` to `dir/name` as 0644, as dhat does with its profile.
    fn plant_0644(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// A fresh directory name on another file system than `dir`'s (/dev/shm, a tmpfs), where
    /// this machine has one: a move from there is a copy, as rename cannot cross.
    fn elsewhere(dir: &Path) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let shm = Path::new("/dev/shm");
        let other = fs::metadata(shm).ok()?.dev() != fs::metadata(dir).ok()?.dev();
        let name = format!("heapscope-art-{}-{:x}", std::process::id(), nonce());
        let found = other.then(|| shm.join(name)).filter(|d| private_dir(d).is_ok());
        if found.is_none() {
            eprintln!("no /dev/shm on another file system here: the copy is not tested");
        }
        found
    }

    #[test]
    fn a_moved_file_is_0600_with_its_contents_and_gone_from_its_place() {
        let contents: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let to_dir = scratch("moved-to");
        private_dir(&to_dir).unwrap();
        // One file system (a rename), then another (a copy).
        let mut from_dirs = vec![scratch("moved-from")];
        from_dirs.extend(elsewhere(&to_dir));
        for (i, from_dir) in from_dirs.iter().enumerate() {
            private_dir(from_dir).unwrap();
            let from = plant_0644(from_dir, "dhat-heap.json", &contents);
            let to = to_dir.join(format!("moved-{i}.json"));
            move_private(&from, &to).unwrap();
            assert_eq!(fs::read(&to).unwrap(), contents);
            assert_eq!(mode(&to), 0o600);
            assert!(!from.exists(), "the source is gone");
            fs::remove_dir_all(from_dir).unwrap();
        }
        fs::remove_dir_all(&to_dir).unwrap();
    }

    #[test]
    fn a_copy_onto_a_link_is_refused_and_keeps_its_source() {
        let dir = scratch("move-link");
        private_dir(&dir).unwrap();
        let victim = plant_0644(&dir, "victim", b"precious");
        let to = dir.join("profile.json");
        std::os::unix::fs::symlink(&victim, &to).unwrap();
        if let Some(from_dir) = elsewhere(&dir) {
            let from = plant_0644(&from_dir, "dhat-heap.json", b"{}");
            assert!(move_private(&from, &to).is_err());
            assert_eq!(fs::read(&victim).unwrap(), b"precious");
            assert_eq!(mode(&victim), 0o644, "the link was not followed to chmod");
            assert_eq!(fs::read(&from).unwrap(), b"{}", "nothing lost");
            fs::remove_dir_all(&from_dir).unwrap();
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_are_0700_and_files_0600_whatever_the_umask() {
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0) };
        let base = scratch("modes");
        let dir = base.join("a/b");
        private_dir(&dir).unwrap();
        let written = write_new(&dir, "report.json", b"{}").unwrap();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(dir.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.join("report.json")), 0o600);
        assert_eq!(written.bytes, 2);
        assert_eq!(
            written.sha256,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["report.json"]);
        // The directory made above: each `scratch` call names a new one.
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn planted_links_fifos_and_files_are_refused_and_left_alone() {
        let dir = scratch("planted");
        private_dir(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("link.json")).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling.json")).unwrap();
        let fifo = std::ffi::CString::new(dir.join("fifo.json").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        fs::write(dir.join("existing.json"), b"old").unwrap();
        for name in ["link.json", "dangling.json", "fifo.json", "existing.json"] {
            let err = write_new(&dir, name, b"new").unwrap_err();
            assert!(matches!(err, Error::UnsafePath { .. }), "{name}: {err}");
        }
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(dir.join("existing.json")).unwrap(), b"old");
        assert!(!dir.join("nowhere").exists());
        for bad in ["", "..", "a/b"] {
            assert!(write_new(&dir, bad, b"x").is_err());
        }
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn unsafe_directories_are_refused() {
        let base = scratch("unsafe");
        private_dir(&base).unwrap();
        let real = base.join("real");
        private_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, base.join("link")).unwrap();
        assert!(matches!(
            private_dir(&base.join("link")),
            Err(Error::UnsafePath { reason: "is a symbolic link", .. })
        ));
        fs::write(base.join("file"), b"").unwrap();
        assert!(matches!(private_dir(&base.join("file")), Err(Error::UnsafePath { .. })));
        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            private_dir(&open),
            Err(Error::UnsafePath { reason: "is writable by group or others", .. })
        ));
        // A directory that cannot be created is a clear I/O error.
        assert!(matches!(
            private_dir(Path::new("/proc/heapscope-cannot-exist/x")),
            Err(Error::Io { .. })
        ));
        fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn new_directories_may_sit_under_sticky_or_root_owned_ancestors_only() {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let base = scratch("ancestors");
        private_dir(&base).unwrap();
        // A sticky, world-writable directory as /tmp is: a new directory below it (and below
        // a missing level) is fine when the sticky one belongs to this user or to root. It
        // once had to be this user's: no user but root could write under /tmp, root's.
        let sticky = base.join("tmp");
        fs::create_dir(&sticky).unwrap();
        fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
        private_dir(&sticky.join("agent/memory")).unwrap();
        assert_eq!(mode(&sticky.join("agent")), 0o700);
        assert_eq!(mode(&sticky.join("agent/memory")), 0o700);
        // The sticky directory itself is no place for the files.
        assert!(matches!(
            private_dir(&sticky),
            Err(Error::UnsafePath { reason: "is writable by group or others", .. })
        ));
        // An ancestor that others can write to and that is not sticky is refused.
        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            private_dir(&open.join("agent")),
            Err(Error::UnsafePath { reason: "is writable by group or others", .. })
        ));
        // The same further up, with a private directory of ours in between: anyone who may
        // write to `open` can rename `mine` and put their own in its place. Only the nearest
        // existing ancestor was once checked, and this was accepted; an existing private
        // directory below `open` is refused the same way.
        let mine = open.join("mine");
        fs::create_dir(&mine).unwrap();
        fs::set_permissions(&mine, fs::Permissions::from_mode(0o700)).unwrap();
        for place in [mine.join("agent"), mine.clone()] {
            assert!(
                matches!(
                    private_dir(&place),
                    Err(Error::UnsafePath { ref path, reason: "is writable by group or others" })
                        if *path == open
                ),
                "{place:?}"
            );
        }
        assert!(!mine.join("agent").exists());
        if me == 0 {
            // Run as root: an ancestor owned by another ordinary user is refused (they
            // could rename what is in it), a sticky one of root's is not.
            let theirs = base.join("theirs");
            fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            assert!(matches!(
                private_dir(&theirs.join("agent")),
                Err(Error::UnsafePath { reason: "is owned by another user (not root)", .. })
            ));
        }
        fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn a_fresh_directory_is_never_one_that_exists_already() {
        let base = scratch("fresh");
        private_dir(&base).unwrap();
        let dir = base.join("bundle");
        assert!(fresh_private_dir(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700);
        // Ours, private, and still refused: another caller made it a moment before.
        assert!(!fresh_private_dir(&dir).unwrap());
        fs::write(base.join("file"), b"").unwrap();
        assert!(!fresh_private_dir(&base.join("file")).unwrap());
        fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn write_private_takes_any_name_the_file_system_takes() {
        use std::os::unix::ffi::OsStrExt;
        let dir = scratch("names");
        private_dir(&dir).unwrap();
        // 245 bytes (NAME_MAX is 255): the temporary name was once this name plus 25 bytes,
        // and its creation failed. And a name that is not UTF-8, once refused as having "no
        // file name heapscope can use".
        let long = dir.join(format!("{}.json", "t".repeat(240)));
        let latin1 = dir.join(std::ffi::OsStr::from_bytes(b"m\xe9moire.svg"));
        for path in [long, latin1] {
            fs::write(&path, b"plain").unwrap();
            write_private(&path, b"<svg/>").unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"<svg/>");
            assert_eq!(mode(&path), 0o600);
        }
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2, "no temporary file left");
        assert!(matches!(write_private(Path::new("/"), b"x"), Err(Error::UnsafePath { .. })));
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn write_private_replaces_whole_files_and_links_without_following_them() {
        let dir = scratch("private");
        private_dir(&dir).unwrap();
        let path = dir.join("timeline.json");
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0) };
        write_private(&path, b"first").unwrap();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        assert_eq!(mode(&path), 0o600);
        write_private(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        // A link at the name is replaced by the file; what it pointed to is untouched.
        let victim = dir.join("victim");
        fs::write(&victim, b"precious").unwrap();
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_private(&link, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        // No temporary file is left behind, and a missing directory is a clear error.
        let mut names: Vec<_> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["link.json", "timeline.json", "victim"]);
        assert!(matches!(write_private(dir.join("no/such.json"), b"x"), Err(Error::Io { .. })));
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_failed_write_leaves_nothing_under_the_final_name() {
        // The directory vanishes between the check and the write.
        let dir = scratch("vanish");
        let err = write_new(&dir, "report.json", b"{}").unwrap_err();
        assert!(matches!(err, Error::Io { action: "create", .. }), "{err}");
        assert!(!dir.join("report.json").exists());
    }
}
