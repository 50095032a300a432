//! The host system: finding programs, who we run as.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The first `cmd` on PATH.
pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(cmd)).find(|p| p.is_file())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The name of the user this process runs as (its uid when it has no name).
pub fn user_name() -> String {
    // SAFETY: getpwuid's result is read at once.
    unsafe {
        let uid = libc::geteuid();
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return uid.to_string();
        }
        std::ffi::CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned()
    }
}

/// Started as root on a data dir that belongs to the git user (after `slipway install`):
/// runs again as that user, so files root would create (the database's journal, router
/// config, locks) stay writable by the hooks sshd runs as that user. Dokku's `dokku` command
/// does the same.
pub fn become_owner_of(data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(data_dir) else { return Ok(()) };
    if meta.uid() == 0 {
        return Ok(());
    }
    // SAFETY: getpwuid's result is read at once.
    let (name, home, gid) = unsafe {
        let pw = libc::getpwuid(meta.uid());
        if pw.is_null() {
            return Ok(());
        }
        (
            std::ffi::CStr::from_ptr((*pw).pw_name).to_owned(),
            std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned(),
            (*pw).pw_gid,
        )
    };
    let uid = meta.uid();
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    // The data dir as resolved here: the default differs for a non-root user.
    cmd.args(std::env::args_os().skip(1)).env("HOME", home).env("SLIPWAY_DATA", data_dir);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::initgroups(name.as_ptr(), gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let err = cmd.exec();
    bail!("cannot switch to the data dir's owner: {err}")
}

/// Drops this process, for good, to the user `uid` (its groups, then its gid, then its uid):
/// root's work on that user's files is then done as that user, so no link it planted can lead
/// root anywhere.
pub fn drop_to(name: &str, uid: u32, gid: u32) -> Result<()> {
    let cname = std::ffi::CString::new(name)?;
    // SAFETY: plain system calls on values owned here; glibc applies them to every thread.
    let failed =
        unsafe { libc::initgroups(cname.as_ptr(), gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 };
    if failed {
        bail!("cannot run as {name}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
