//! The unprivileged app user (herokuish's `herokuishuser`, uid/gid 32767, home `/app`).
//!
//! Inside the stack image, when the engine starts as root, buildpacks and app processes run as
//! this user. Ownership is set on what the engine itself creates, as it creates it, so nothing
//! ever needs a recursive chown of the whole app at start (herokuish's slow start).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

pub const DEFAULT_NAME: &str = "herokuishuser";
pub const DEFAULT_ID: u32 = 32767;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl AppUser {
    pub fn lookup(name: &str) -> Option<AppUser> {
        let cname = CString::new(name).ok()?;
        // SAFETY: getpwnam returns a pointer into static storage or null; read at once.
        unsafe {
            let pw = libc::getpwnam(cname.as_ptr());
            if pw.is_null() {
                return None;
            }
            Some(AppUser { name: name.to_string(), uid: (*pw).pw_uid, gid: (*pw).pw_gid })
        }
    }

    /// Whether the system knows a group of this name (through NSS, like `getent group`).
    pub fn group_exists(name: &str) -> bool {
        let Ok(cname) = CString::new(name) else { return false };
        // SAFETY: getgrnam returns a pointer into static storage or null; only its nullness is read.
        unsafe { !libc::getgrnam(cname.as_ptr()).is_null() }
    }

    /// Runs `cmd` as this user (supplementary groups are dropped by std when root sets a uid).
    pub fn apply(&self, cmd: &mut Command) {
        cmd.uid(self.uid).gid(self.gid);
    }

    /// Sets the owner of one path, without following a symlink.
    pub fn chown(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))
            .with_context(|| format!("cannot give {} to {}", path.display(), self.name))
    }

    /// Whether the top of `dir` already belongs to this user.
    pub fn owns(&self, dir: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(dir).map(|m| m.uid() == self.uid).unwrap_or(false)
    }
}

/// The name of the app user: `SLIPWAY_APP_USER`, or herokuish's `herokuishuser`.
pub fn app_user_name() -> String {
    std::env::var("SLIPWAY_APP_USER").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_NAME.to_string())
}

/// The user that herokuish-mode commands (`/build`, `/start`, `buildpack build`, ...) drop to:
/// `None` when not running as root, or when the app user is root itself.
pub fn unprivileged() -> Result<Option<AppUser>> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = app_user_name();
    if name == "root" {
        return Ok(None);
    }
    let user = match AppUser::lookup(&name) {
        Some(u) => u,
        None => create(&name)?,
    };
    Ok((user.uid != 0).then_some(user))
}

/// Creates the app user with herokuish's ids and home `/app`.
fn create(name: &str) -> Result<AppUser> {
    let id = DEFAULT_ID.to_string();
    let group_ok = Command::new("groupadd").args(["-g", &id, name]).status().is_ok_and(|s| s.success());
    let user_ok = group_ok
        && Command::new("useradd")
            .args(["-u", &id, "-g", &id, "-d", "/app", "-M", "-s", "/bin/bash", name])
            .status()
            .is_ok_and(|s| s.success());
    if !user_ok {
        // No shadow-utils (a minimal image): append the entries ourselves.
        append_line("/etc/group", &format!("{name}:x:{id}:"))?;
        append_line("/etc/passwd", &format!("{name}:x:{id}:{id}::/app:/bin/bash"))?;
    }
    match AppUser::lookup(name) {
        Some(u) => Ok(u),
        None => bail!("could not create the app user {name:?}; create it (uid/gid {id}) or set SLIPWAY_APP_USER"),
    }
}

fn append_line(file: &str, line: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).with_context(|| format!("cannot open {file}"))?;
    writeln!(f, "{line}").with_context(|| format!("cannot write {file}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_nobody_else_invented() {
        assert_eq!(AppUser::lookup("root").map(|u| u.uid), Some(0));
        assert_eq!(AppUser::lookup("no-such-user-slipway"), None);
    }
}
