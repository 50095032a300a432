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

/// `/run/slipway/NAME-HASH`: the daemon's files for `data_dir`, named by a hash of its path.
fn run_path(data_dir: &Path, name: &str) -> PathBuf {
    let canonical = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Path::new(RUN_DIR).join(format!("{name}-{hash}"))
}

fn socket_path(data_dir: &Path) -> PathBuf {
    run_path(data_dir, "daemon").with_extension("sock")
}

/// Where the daemon's nginx keeps its configuration, pid file and logs (root's), when a daemon
/// serves `data_dir`.
pub fn router_dir(data_dir: &Path) -> Option<PathBuf> {
    socket_path(data_dir).exists().then(|| run_path(data_dir, "router"))
}

/// Asks the daemon to apply the router's configuration of `generation`, listening on `listen`.
pub fn apply_router(data_dir: &Path, generation: &str, listen: &str) -> Result<()> {
    let path = socket_path(data_dir);
    let mut stream = UnixStream::connect(&path).with_context(|| {
        format!(
            "the router is run by `slipway daemon`, which is not answering at {}: start it again as root",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(format!("apply-router {generation} {listen}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).context("the daemon did not answer")?;
    match answer.trim_end().strip_prefix("error: ") {
        None if answer.trim_end() == "ok" => Ok(()),
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
    let router = Router { dir: run_path(data_dir, "router"), listen: String::new() };
    take_over(data_dir, &router)?;
    output::header(format!(
        "slipway daemon for {} listens on {}; its router is in {}",
        data_dir.display(),
        path.display(),
        router.dir.display()
    ));
    let stopping = Arc::new(AtomicBool::new(false));
    stop_on_signal(router.clone(), path.clone(), stopping.clone());
    let supervised = router.clone();
    std::thread::spawn(move || supervise(&supervised, &stopping));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = serve(data_dir, &router, stream);
    }
    drop(lock);
    Ok(0)
}

/// One request: `apply-router GENERATION LISTEN`; the answer is `ok` or `error: WHY`.
fn serve(data_dir: &Path, router: &Router, stream: UnixStream) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&stream, 256)).read_line(&mut line)?;
    let answer = match apply(data_dir, router, line.trim_end()) {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {}", output::printable(&output::error_chain(e.as_ref())).replace('\n', " ")),
    };
    (&stream).write_all(format!("{answer}\n").as_bytes())?;
    Ok(())
}

fn apply(data_dir: &Path, router: &Router, request: &str) -> Result<()> {
    let parts: Vec<&str> = request.split(' ').collect();
    let ["apply-router", generation, listen] = parts.as_slice() else {
        bail!("unknown request {:?}", output::printable(request));
    };
    if generation.is_empty() || !generation.chars().all(|c| c.is_ascii_digit() || c == '-') {
        bail!("invalid generation {:?}", output::printable(generation));
    }
    super::names::validate_listen(listen)?;
    let router = Router { dir: router.dir.clone(), listen: listen.to_string() };
    router.render_from(&data_dir.join("nginx").join("apps"), generation)?;
    router.start_or_reload()
}

/// The router a deploy started before the daemon (as the git user) makes way for root's; the
/// apps it served are served again by root's, on the address it listened on. Only a process
/// that is that router's master gets the signal (its pid file is the git user's to write).
fn take_over(data_dir: &Path, router: &Router) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let theirs = Router::new(data_dir, "");
    let owner = std::fs::metadata(data_dir)?.uid();
    if let Some(pid) = theirs.pid() {
        let conf = theirs.dir.join("nginx.conf");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let is_master = String::from_utf8_lossy(&cmdline).contains("nginx: master process")
            && String::from_utf8_lossy(&cmdline).contains(&*conf.to_string_lossy());
        let uid = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()).ok();
        if is_master && uid == Some(owner) && owner != 0 {
            output::header(format!("Restarting the router (pid {pid}) as root's, its workers as {ROUTER_USER}"));
            // SAFETY: a signal to the process checked above.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while unsafe { libc::kill(pid, 0) } == 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    if let Some(listen) = theirs.configured_listen() {
        if router.pid().is_none() {
            let generation = format!("{}", crate::units::unique_id());
            let router = Router { dir: router.dir.clone(), listen };
            router.render_from(&theirs.dir.join("apps"), &generation)?;
            router.start_or_reload()?;
        }
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
        assert!(router_dir(a.path()).is_none(), "no socket: the caller runs nginx itself");
    }

    #[test]
    fn requests_are_checked_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let router = Router { dir: dir.path().join("run"), listen: String::new() };
        for bad in [
            "apply-router",
            "apply-router 1 127.0.0.1:80 extra",
            "apply-router 1;x 127.0.0.1:80",
            "apply-router 1 127.0.0.1:80;location",
            "reload",
        ] {
            assert!(apply(dir.path(), &router, bad).is_err(), "{bad}");
        }
        assert!(!dir.path().join("run").exists(), "nothing was written");
    }
}
