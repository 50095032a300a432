//! The per-app lock: one deploy, scale or config change of an app at a time. An fcntl write
//! lock on `locks/APP.lock` under the data dir: the kernel drops it when its holder dies, and
//! asks name the live holder, so "a deploy is running" and `builds:cancel` never trust a
//! stored PID that may belong to another process by now.

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A held per-app lock; dropped, it is released.
#[derive(Debug)]
pub struct AppLock {
    _file: std::fs::File,
}

fn path(data_dir: &Path, app: &str) -> Result<PathBuf> {
    let dir = data_dir.join("locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir.join(format!("{app}.lock")))
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is plain old data; zero is a valid value for every field.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// Takes the app's lock, or says who has it. Hold only one per process and app: closing any
/// other handle of the file would release it (fcntl's rule).
pub fn acquire(data_dir: &Path, app: &str) -> Result<AppLock> {
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path(data_dir, app)?)?;
    let fl = whole_file(libc::F_WRLCK);
    // SAFETY: a valid descriptor and a valid flock struct.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) } != 0 {
        bail!("app '{app}' is being deployed right now; wait for that deploy to finish (or cancel it) and try again");
    }
    Ok(AppLock { _file: file })
}

/// The process that holds the app's lock now, if one does (never this process).
pub fn holder(data_dir: &Path, app: &str) -> Result<Option<i32>> {
    let path = path(data_dir, app)?;
    let Ok(file) = std::fs::OpenOptions::new().read(true).open(&path) else { return Ok(None) };
    let mut fl = whole_file(libc::F_WRLCK);
    // SAFETY: a valid descriptor and a valid flock struct for the kernel to fill.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("cannot ask about {}", path.display()));
    }
    Ok((fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_named_while_it_lives_and_gone_after() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path(), "demo").unwrap(), None);
        // Another process takes the lock (fcntl locks never conflict within one process).
        let lock_file = dir.path().join("locks/demo.lock");
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(30)"])
            .arg(&lock_file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(holder(dir.path(), "demo").unwrap(), Some(child.id() as i32));
        assert!(acquire(dir.path(), "demo").unwrap_err().to_string().contains("is being deployed right now"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(holder(dir.path(), "demo").unwrap(), None, "the kernel drops a dead holder's lock");
        let _held = acquire(dir.path(), "demo").unwrap();
    }
}
