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

/// Takes the app's lock, waiting up to `wait` for a running deploy (or other change) of the app
/// to finish: it says once that it waits and for whom. After `wait`, an error saying that nothing
/// was done.
pub fn acquire_waiting(data_dir: &Path, app: &str, wait: std::time::Duration) -> Result<AppLock> {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match acquire(data_dir, app) {
            Ok(lock) => return Ok(lock),
            Err(e) if wait.is_zero() => return Err(e),
            Err(_) if started.elapsed() >= wait => bail!(
                "app '{app}' is still being deployed after {} s: nothing was changed; try again when that deploy \
                 has finished (`builds:cancel {app}` stops it; `settings:set lock-wait SECS` waits longer)",
                wait.as_secs()
            ),
            Err(_) => {
                if !said {
                    let who = holder(data_dir, app)?.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
                    crate::output::header(format!(
                        "Waiting for the running deploy of {app}{who} to finish (up to {} s)",
                        wait.as_secs()
                    ));
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
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

    /// Another process takes the lock file's lock for `secs` seconds (fcntl locks never conflict
    /// within one process); returns once it holds it.
    fn hold(lock_file: &Path, secs: &str) -> std::process::Child {
        let mut child = std::process::Command::new("python3")
            .args(["-c", "import fcntl,sys,time; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(float(sys.argv[2]))"])
            .arg(lock_file)
            .arg(secs)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
        child
    }

    #[test]
    fn the_holder_is_named_while_it_lives_and_gone_after() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path(), "demo").unwrap(), None);
        // Another process takes the lock (fcntl locks never conflict within one process).
        let mut child = hold(&dir.path().join("locks/demo.lock"), "30");
        assert_eq!(holder(dir.path(), "demo").unwrap(), Some(child.id() as i32));
        assert!(acquire(dir.path(), "demo").unwrap_err().to_string().contains("is being deployed right now"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(holder(dir.path(), "demo").unwrap(), None, "the kernel drops a dead holder's lock");
        let _held = acquire(dir.path(), "demo").unwrap();
    }

    #[test]
    fn a_waiting_acquire_gets_the_lock_once_the_holder_lets_go_and_gives_up_after_its_wait() {
        let dir = tempfile::tempdir().unwrap();
        let lock_file = path(dir.path(), "demo").unwrap();
        let mut child = hold(&lock_file, "1");
        let t = std::time::Instant::now();
        let held = acquire_waiting(dir.path(), "demo", std::time::Duration::from_secs(30)).unwrap();
        assert!(t.elapsed() >= std::time::Duration::from_millis(500), "it waited for the holder");
        child.wait().unwrap();
        drop(held);
        let mut child = hold(&lock_file, "30");
        let e = acquire_waiting(dir.path(), "demo", std::time::Duration::from_secs(1)).unwrap_err().to_string();
        assert!(e.contains("still being deployed after 1 s: nothing was changed"), "{e}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
