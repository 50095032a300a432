//! Tree copies and moves that keep symlinks, modes and nested `.git` dirs, and give what they
//! create to the app user as they go (no recursive chown afterwards).

use std::path::Path;

use anyhow::{Context, Result};

use crate::engine::user::AppUser;

/// Copies `src` into `dst` (created if missing). `skip(relative_path, is_dir)` leaves an entry
/// (and a directory's whole subtree) out.
pub fn copy_tree(src: &Path, dst: &Path, owner: Option<&AppUser>, skip: impl Fn(&Path, bool) -> bool) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    if let Some(u) = owner {
        u.chown(dst)?;
    }
    let walker = walkdir::WalkDir::new(src).min_depth(1).follow_links(false).into_iter().filter_entry(|e| {
        let rel = e.path().strip_prefix(src).unwrap_or(e.path());
        !skip(rel, e.file_type().is_dir())
    });
    for entry in walker {
        let entry = entry.with_context(|| format!("cannot read {}", src.display()))?;
        let rel = entry.path().strip_prefix(src).expect("walkdir stays under its root");
        let target = dst.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&target)?;
            let mode = entry.metadata()?.permissions();
            std::fs::set_permissions(&target, mode)?;
        } else if ft.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(&link, &target)
                .with_context(|| format!("cannot create link {}", target.display()))?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {} to {}", entry.path().display(), target.display()))?;
        } else {
            continue; // sockets, fifos and devices do not belong in an app
        }
        if let Some(u) = owner {
            u.chown(&target)?;
        }
    }
    Ok(())
}

/// Removes everything inside `dir` (not `dir` itself); creates it when missing.
pub fn clear_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                let res = if path.is_dir() && !path.is_symlink() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                res.with_context(|| format!("cannot remove {}", path.display()))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Moves the contents of `src` into the (emptied) `dst`: renames when both are on one file
/// system, copies otherwise.
pub fn move_contents(src: &Path, dst: &Path, owner: Option<&AppUser>) -> Result<()> {
    if src.canonicalize().ok() == dst.canonicalize().ok() && src.exists() {
        return Ok(()); // built in place
    }
    clear_dir(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let target = dst.join(entry.file_name());
        if std::fs::rename(entry.path(), &target).is_err() {
            let rel = entry.file_name();
            copy_tree(src, dst, owner, |p, _| p.components().next().map(|c| c.as_os_str()) != Some(rel.as_os_str()))?;
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// A regular file's text (at most `max` bytes), opened without following a link (the error
/// is ELOOP when it is one) and without blocking on a FIFO; `Ok(None)` when it is missing. The
/// one way the host reads a file someone else may have planted: a pushed tree's, or the git
/// user's when root reads it.
pub fn read_no_follow(path: &Path, max: u64) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let Some(file) = open_no_follow(path)? else { return Ok(None) };
    let mut text = String::new();
    file.take(max).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// The last `max` bytes of a file (a log: any bytes, shown lossily), read as
/// [`read_no_follow`] reads; empty when it is missing.
pub fn read_tail_no_follow(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Some(mut file) = open_no_follow(path)? else { return Ok(String::new()) };
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A regular file opened for reading without following a link or blocking on a FIFO; None
/// when it is missing.
fn open_no_follow(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(Some(file))
}

/// Writes a file only its owner may read (mode 0600 from its first byte: keys, credentials):
/// beside it first, synced, then renamed over `path`.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().context("a file name")?.to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Whether an error of [`read_no_follow`] says the path is a link.
pub fn is_link_error(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// A file of an app that the host reads (app.json, Procfile, .env, .dockerignore): its text,
/// None when it is missing. A symbolic link is refused, never followed: a pushed tree could
/// point it anywhere on the host.
pub fn read_app_file(dir: &Path, name: &str) -> Result<Option<String>> {
    match read_no_follow(&dir.join(name), u64::MAX) {
        Err(e) if is_link_error(&e) => anyhow::bail!(
            "{name} of the app is a symbolic link: slipway does not follow links here; commit the file itself"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => anyhow::bail!("{name} of the app is not a file"),
        other => other.with_context(|| format!("cannot read {name} of the app")),
    }
}

/// Whether `dir` has a regular file `name` (not a link to one).
pub fn has_app_file(dir: &Path, name: &str) -> bool {
    std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_keeps_links_modes_and_nested_git_and_honours_skip() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("vendor/dep/.git")).unwrap();
        std::fs::write(src.path().join("vendor/dep/.git/HEAD"), "ref").unwrap();
        std::fs::write(src.path().join("run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(src.path().join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("run.sh", src.path().join("link")).unwrap();
        std::fs::create_dir(src.path().join("docs")).unwrap();
        std::fs::write(src.path().join("docs/big.psd"), "x").unwrap();
        copy_tree(src.path(), dst.path(), None, |p, _| p == Path::new("docs")).unwrap();
        assert!(dst.path().join("vendor/dep/.git/HEAD").is_file());
        assert_eq!(std::fs::read_link(dst.path().join("link")).unwrap(), Path::new("run.sh"));
        let mode = std::fs::metadata(dst.path().join("run.sh")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o750);
        assert!(!dst.path().join("docs").exists());
    }

    #[test]
    fn move_contents_replaces_the_destination() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("new"), "1").unwrap();
        std::fs::write(dst.path().join("old"), "0").unwrap();
        move_contents(src.path(), dst.path(), None).unwrap();
        assert!(dst.path().join("new").is_file());
        assert!(!dst.path().join("old").exists());
        assert!(!src.path().join("new").exists());
    }

    #[test]
    fn app_files_read_on_the_host_are_never_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.json"), "{}").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join(".env")).unwrap();
        assert_eq!(read_app_file(dir.path(), "app.json").unwrap().as_deref(), Some("{}"));
        assert_eq!(read_app_file(dir.path(), "Procfile").unwrap(), None);
        let err = read_app_file(dir.path(), ".env").unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(!has_app_file(dir.path(), ".env") && has_app_file(dir.path(), "app.json"));
    }
}
