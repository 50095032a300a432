//! `slipway daemon`: root's side of the platform, one per data dir. For now it runs the router:
//! nginx's master as root, its workers as [`ROUTER_USER`] (outside the docker group, which the
//! git user is in), started again when it stops. Deploys run as the git user: they write the
//! router's configuration and ask the daemon, over a unix socket only root and the git user's
//! group can open, to check and apply it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::Digest;

use super::router::{Router, ROUTER_USER};
use crate::output;

/// Root's directory for the daemon's socket and lock.
const RUN_DIR: &str = "/run/slipway";

/// The socket of the daemon for `data_dir` (one per data dir, named by a hash of its path).
fn socket_path(data_dir: &Path) -> PathBuf {
    let canonical = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let name: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Path::new(RUN_DIR).join(format!("daemon-{name}.sock"))
}

/// Asks the daemon to apply the router's configuration. `false`: no daemon serves this data
/// dir (the caller runs nginx itself); an error: the daemon refused, or has stopped.
pub fn apply_router(data_dir: &Path) -> Result<bool> {
    let path = socket_path(data_dir);
    if !path.exists() {
        return Ok(false);
    }
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "the router is run by `slipway daemon`, which is not answering at {}: start it again as root",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(b"apply-router\n")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).context("the daemon did not answer")?;
    match answer.trim_end().strip_prefix("error: ") {
        None if answer.trim_end() == "ok" => Ok(true),
        Some(message) => bail!("{message}"),
        None => bail!("the daemon answered {:?}", answer.trim_end()),
    }
}

/// Runs the daemon until SIGTERM or SIGINT, which stop the router gracefully.
pub fn run(data_dir: &Path) -> Result<i32> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !crate::sys::is_root() {
        bail!("slipway daemon runs the router as root (its workers as {ROUTER_USER}): run it as root");
    }
    if crate::engine::user::AppUser::lookup(ROUTER_USER).is_none() {
        bail!("there is no user {ROUTER_USER}: run `slipway install` first");
    }
    let owner_gid = std::fs::metadata(data_dir)
        .with_context(|| format!("there is no data dir {}: run `slipway install` first", data_dir.display()))?
        .gid();
    std::fs::create_dir_all(RUN_DIR)?;
    let path = socket_path(data_dir);
    let lock = hold_lock(&path.with_extension("lock"))?;
    let _ = std::fs::remove_file(&path); // a socket left by a daemon that was killed
    let listener = UnixListener::bind(&path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::os::unix::fs::chown(&path, Some(0), Some(owner_gid))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
    let router = Router::new(data_dir, "");
    take_over(&router)?;
    output::header(format!("slipway daemon for {} listens on {}", data_dir.display(), path.display()));
    let stopping = Arc::new(AtomicBool::new(false));
    stop_on_signal(router.clone(), path.clone(), stopping.clone());
    let supervised = router.clone();
    std::thread::spawn(move || supervise(&supervised, &stopping));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = serve(&router, stream);
    }
    drop(lock);
    Ok(0)
}

/// One request: a line naming what to do; the answer is `ok` or `error: WHY`.
fn serve(router: &Router, stream: UnixStream) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&stream, 64)).read_line(&mut line)?;
    let answer = match line.trim_end() {
        "apply-router" => match router.start_or_reload() {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error: {}", output::error_chain(e.as_ref()).replace('\n', " ")),
        },
        other => format!("error: unknown request {:?}", output::printable(other)),
    };
    (&stream).write_all(format!("{answer}\n").as_bytes())?;
    Ok(())
}

/// An nginx started before the daemon (by a deploy, as the git user) makes way for root's.
fn take_over(router: &Router) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if let Some(pid) = router.pid() {
        let owner = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()).unwrap_or(0);
        if owner != 0 {
            output::header(format!(
                "Restarting the router (pid {pid}, uid {owner}) as root's, workers as {ROUTER_USER}"
            ));
            router.stop()?;
        }
    }
    if router.dir.join("nginx.conf").is_file() && router.pid().is_none() {
        router.start_or_reload()?;
    }
    Ok(())
}

/// The router is started again when it stops (checked every half second), unless the daemon
/// is stopping.
fn supervise(router: &Router, stopping: &AtomicBool) {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if !stopping.load(Ordering::SeqCst) && router.dir.join("nginx.conf").is_file() && router.pid().is_none() {
            match router.start_or_reload() {
                Ok(()) => output::warn("the router had stopped: started it again"),
                Err(e) => output::warn(format!("the router had stopped and did not start: {e:#}")),
            }
        }
    }
}

fn stop_on_signal(router: Router, socket: PathBuf, stopping: Arc<AtomicBool>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGTERM, SIGINT] {
        let _ = signal_hook::flag::register(sig, stopping.clone());
    }
    std::thread::spawn(move || {
        while !stopping.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_file(&socket);
        if let Err(e) = router.stop() {
            output::warn(format!("cannot stop the router: {e:#}"));
        }
        output::header("slipway daemon stopped");
        std::process::exit(0);
    });
}

/// One daemon per data dir: an exclusive lock held for the daemon's life.
fn hold_lock(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("a slipway daemon already runs for this data dir (lock {})", path.display());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_data_dir_has_its_own_socket_and_none_means_no_daemon() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_ne!(socket_path(a.path()), socket_path(b.path()));
        assert_eq!(socket_path(a.path()), socket_path(&a.path().join(".")));
        assert!(!apply_router(a.path()).unwrap(), "no socket: the caller runs nginx itself");
    }
}
