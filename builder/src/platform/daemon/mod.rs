//! `slipway daemon`: root's side of the platform, one per data dir. It keeps the platform's
//! long-running parts ([`Service`]s) running: the router (nginx's master as root, its workers as
//! [`ROUTER_USER`], outside the docker group, which the git user is in) and the sshd `slipway
//! install` made for the data dir; one that stops is started again within a second, with a log
//! line, backing off while it keeps failing; stopping the daemon stops them. When it starts, it
//! brings the apps back (`ps:restore --all`); every minute, its scheduler starts the cron tasks
//! that are due (see [`super::cron`]); while an app is on swarm, it runs the swarm's local
//! registry and keeps swarm apps' routes on their tasks. Deploys run as the
//! git user: they write the router's configuration and ask the daemon, over a unix socket only
//! root and the git user's group can open, to check and apply it.

pub mod boot;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Sends one request to the daemon of `data_dir` and reads its whole answer (the daemon closes
/// the connection once it has answered), waiting at most `wait` for it.
fn ask(data_dir: &Path, request: &str, wait: Duration) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket_path(data_dir))?;
    stream.set_read_timeout(Some(wait))?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(stream, 16 * 1024 * 1024), &mut answer)?;
    Ok(answer)
}

/// Asks the daemon to apply the router's configuration of `generation`, listening on `listen`.
pub fn apply_router(data_dir: &Path, generation: &str, listen: &str, https_listen: &str) -> Result<()> {
    let request = format!("apply-router {generation} {listen} {https_listen}");
    let answer = ask(data_dir, &request, Duration::from_secs(60)).with_context(|| {
        format!(
            "the router is run by `slipway daemon`, which is not answering at {}: start it again as root",
            socket_path(data_dir).display()
        )
    })?;
    match answer.trim_end().strip_prefix("error: ") {
        None if answer.trim_end() == "ok" => Ok(()),
        Some(message) => bail!("{message}"),
        None => bail!("the daemon answered {:?}", answer.trim_end()),
    }
}

/// A long-running part of the platform the daemon keeps running: the router, slipway's sshd.
pub trait Service: Send + Sync {
    /// What it is called in the daemon's log (`router`, `sshd on 127.0.0.1:2222`).
    fn name(&self) -> String;
    /// Whether it runs now (one with nothing to run yet counts as running).
    fn running(&self) -> bool;
    /// Starts it; it runs on by itself once this returns.
    fn start(&self) -> Result<()>;
    /// Stops it gracefully.
    fn stop(&self) -> Result<()>;
}

/// The router as a service: once it has a configuration, its master must be alive.
struct RouterService(Router);

impl Service for RouterService {
    fn name(&self) -> String {
        "router".into()
    }

    fn running(&self) -> bool {
        !self.0.dir.join("nginx.conf").is_file() || self.0.pid().is_some()
    }

    fn start(&self) -> Result<()> {
        self.0.start_or_reload()
    }

    fn stop(&self) -> Result<()> {
        self.0.stop()
    }
}

/// What a running daemon says of itself.
pub struct DaemonStatus {
    pub pid: u32,
    /// Unix seconds.
    pub since: u64,
    /// Each service's name and whether it runs.
    pub services: Vec<(String, bool)>,
}

/// What the daemon for `data_dir` reports; None when no daemon answers.
pub fn status(data_dir: &Path) -> Option<DaemonStatus> {
    let answer = ask(data_dir, "status", Duration::from_secs(5)).ok()?;
    let mut fields = answer.trim_end().strip_prefix("ok ")?.split(';');
    let (pid, since) = fields.next()?.split_once(' ')?;
    let services = fields.filter_map(|f| f.split_once('=')).map(|(n, s)| (n.to_string(), s == "running")).collect();
    Some(DaemonStatus { pid: pid.parse().ok()?, since: since.parse().ok()?, services })
}

/// Bytes of slipway's container logs and build caches, as the daemon (root) measures them;
/// None without a daemon.
pub fn docker_files(data_dir: &Path) -> Option<(u64, u64)> {
    let answer = ask(data_dir, "disk", Duration::from_secs(30)).ok()?;
    let (logs, caches) = answer.trim_end().strip_prefix("ok ")?.split_once(' ')?;
    Some((logs.parse().ok()?, caches.parse().ok()?))
}

/// The last lines of an app's router logs, which the daemon's router keeps (root's files).
pub fn router_log(data_dir: &Path, app: &str, lines: usize) -> Result<String> {
    let answer = ask(data_dir, &format!("router-log {app} {lines}"), Duration::from_secs(30))
        .context("`slipway daemon` is not answering")?;
    match answer.strip_prefix("error: ") {
        Some(message) => bail!("{}", message.trim_end()),
        None => Ok(answer.strip_prefix("ok\n").unwrap_or(&answer).to_string()),
    }
}

/// The router serving `data_dir`, as a service: root's when a daemon runs, else the one deploys
/// start as the git user.
pub fn router_service(data_dir: &Path) -> Box<dyn Service> {
    match router_dir(data_dir) {
        Some(dir) => Box::new(RouterService(Router { dir, ..Router::new(data_dir, "") })),
        None => Box::new(RouterService(Router::new(data_dir, ""))),
    }
}

/// Runs the daemon until SIGTERM or SIGINT, which stop its services gracefully. `others` are the
/// services beside the router (slipway's sshd for this data dir, when installed).
pub fn run(data_dir: &Path, others: Vec<Box<dyn Service>>) -> Result<i32> {
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
    let router = Router { dir: run_path(data_dir, "router"), ..Router::new(data_dir, "") };
    started_at();
    take_over(data_dir, &router)?;
    output::header(format!(
        "slipway daemon for {} listens on {}; its router is in {}",
        data_dir.display(),
        path.display(),
        router.dir.display()
    ));
    let mut services: Vec<Box<dyn Service>> = vec![Box::new(RouterService(router.clone()))];
    services.extend(others);
    services.push(Box::new(super::scheduler::swarm::registry::LocalRegistry::new(data_dir)));
    for service in &services[1..] {
        output::header(format!("Supervising the {}", service.name()));
    }
    for service in services.iter().filter(|s| !s.running()) {
        match service.start() {
            Ok(()) => output::header(format!("Started the {}", service.name())),
            Err(e) => output::warn(format!("cannot start the {} yet: {e:#}", service.name())),
        }
    }
    let services: Arc<Vec<Box<dyn Service>>> = Arc::new(services);
    let stopping = Arc::new(AtomicBool::new(false));
    stop_on_signal(services.clone(), path.clone(), stopping.clone());
    let supervised = services.clone();
    std::thread::spawn(move || supervise(&supervised, &stopping));
    let owned = data_dir.to_path_buf();
    std::thread::spawn(move || restore_apps(&owned));
    LAST_TICK.store(crate::units::now() as u64, Ordering::SeqCst);
    let owned = data_dir.to_path_buf();
    std::thread::spawn(move || schedule(&owned));
    let owned = data_dir.to_path_buf();
    std::thread::spawn(move || follow_swarm(&owned));
    // Each connection on a thread of its own: a client that never reads holds up no deploy.
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (data_dir, router, services) = (data_dir.to_path_buf(), router.clone(), services.clone());
        std::thread::spawn(move || serve(&data_dir, &router, &services, stream));
    }
    drop(lock);
    Ok(0)
}

/// One request: `apply-router GENERATION LISTEN HTTPS_LISTEN` (answered `ok` or `error: WHY`),
/// `status` (answered `ok PID STARTED_AT;NAME=running;NAME=down...`: what root sees of the
/// services, which the git user cannot read), or `disk` (`ok LOG_BYTES CACHE_BYTES`).
fn serve(data_dir: &Path, router: &Router, services: &[Box<dyn Service>], stream: UnixStream) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&stream, 256)).read_line(&mut line)?;
    let answer = match apply(data_dir, router, services, line.trim_end()) {
        Ok(answer) => answer,
        Err(e) => format!("error: {}", output::printable(&output::error_chain(e.as_ref())).replace('\n', " ")),
    };
    (&stream).write_all(format!("{answer}\n").as_bytes())?;
    Ok(())
}

fn apply(data_dir: &Path, router: &Router, services: &[Box<dyn Service>], request: &str) -> Result<String> {
    if request == "status" {
        let mut answer = format!("ok {} {}", std::process::id(), started_at());
        for service in services {
            let state = if service.running() { "running" } else { "down" };
            answer += &format!(";{}={state}", service.name().replace([';', '='], " "));
        }
        // The scheduler ticks every minute; two missed ticks and it counts as down.
        let ticked = LAST_TICK.load(Ordering::SeqCst);
        let scheduling = ticked + 150 >= crate::units::now() as u64;
        answer += if scheduling { ";scheduler=running" } else { ";scheduler=down" };
        return Ok(answer);
    }
    if let Some(rest) = request.strip_prefix("router-log ") {
        let (app, lines) = rest.split_once(' ').context("router-log APP LINES")?;
        let lines: usize = lines.parse().context("router-log APP LINES")?;
        return Ok(format!("ok\n{}", router.log_tail(app, lines.min(100_000))?.trim_end()));
    }
    if request == "disk" {
        let (logs, caches) = super::disk::measure_docker_files().context("cannot read Docker's files")?;
        return Ok(format!("ok {logs} {caches}"));
    }
    let parts: Vec<&str> = request.split(' ').collect();
    let ["apply-router", generation, listen, https_listen] = parts.as_slice() else {
        bail!("unknown request {:?}", output::printable(request));
    };
    if generation.is_empty() || !generation.chars().all(|c| c.is_ascii_digit() || c == '-') {
        bail!("invalid generation {:?}", output::printable(generation));
    }
    super::names::validate_listen(listen)?;
    super::names::validate_listen(https_listen)?;
    let router = Router { dir: router.dir.clone(), listen: listen.to_string(), https_listen: https_listen.to_string() };
    // One change of root's router at a time.
    static APPLYING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = APPLYING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    router.render_from(&data_dir.join("nginx").join("apps"), generation)?;
    router.start_or_reload()?;
    Ok("ok".into())
}

/// When this daemon started (Unix seconds).
fn started_at() -> u64 {
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    })
}

/// Runs a platform command of this data dir as a process of its own (which, started as root,
/// becomes the data dir's owner, the git user, as every platform command does: root never
/// writes the git user's database); returns its exit status and its output.
fn platform_command(data_dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    slipway_command(data_dir, args)?.output().with_context(|| format!("cannot run {}", args.join(" ")))
}

/// This slipway, as a command on `data_dir` (no terminal output: `CI`).
pub fn slipway_command<S: AsRef<std::ffi::OsStr>>(
    data_dir: &Path,
    args: impl IntoIterator<Item = S>,
) -> Result<std::process::Command> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.arg("--data-dir").arg(data_dir).args(args).env("CI", "true");
    Ok(command)
}

/// `ps:restore --all`: apps back at their scale after a reboot, stopped ones left stopped,
/// nothing redeployed. Its lines go to the daemon's log.
fn restore_apps(data_dir: &Path) {
    output::header("Restoring the apps (ps:restore --all)");
    match platform_command(data_dir, &["ps:restore", "--all"]) {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            for line in stdout.lines().chain(stderr.lines()) {
                output::detail(output::printable(line));
            }
            if !out.status.success() {
                output::warn("some apps were not restored (see above)");
            }
        }
        Err(e) => output::warn(format!("{e:#}")),
    }
}

/// When the scheduler last asked what is due (Unix seconds; 0: not yet).
static LAST_TICK: AtomicU64 = AtomicU64::new(0);

/// The cron scheduler (see [`super::cron`]): at once, then just after each minute begins, asks
/// which cron tasks are due (`cron:due`) and starts each as `cron:run APP ID --scheduled`, which
/// records it; the daemon's log gets each run's end and its error lines.
fn schedule(data_dir: &Path) {
    loop {
        match platform_command(data_dir, &["cron:due"]) {
            Ok(out) if out.status.success() => {
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    let words: Vec<String> = line.split(' ').map(str::to_string).collect();
                    let [app, id] = words.as_slice() else { continue };
                    let (app, id, data_dir) = (app.clone(), id.clone(), data_dir.to_path_buf());
                    std::thread::spawn(move || scheduled_run(&data_dir, &app, &id));
                }
            }
            Ok(out) => output::warn(format!(
                "the scheduler cannot tell what is due: {}",
                output::printable(String::from_utf8_lossy(&out.stderr).trim())
            )),
            Err(e) => output::warn(format!("the scheduler cannot tell what is due: {e:#}")),
        }
        LAST_TICK.store(crate::units::now() as u64, Ordering::SeqCst);
        let router = Router { dir: run_path(data_dir, "router"), ..Router::new(data_dir, "") };
        if let Err(e) = router.rotate_logs(Default::default()) {
            output::warn(format!("cannot rotate the router's logs: {e:#}"));
        }
        let into_minute = crate::units::now().rem_euclid(60) as u64;
        std::thread::sleep(Duration::from_secs(61 - into_minute.min(60)));
    }
}

/// While an app is on swarm, every 2 s: each swarm app's router entry follows its tasks
/// (`scheduler:sync-routes`), so a task that moved to another node or was restarted on a new
/// port gets traffic within seconds.
fn follow_swarm(data_dir: &Path) {
    loop {
        std::thread::sleep(Duration::from_secs(2));
        if !super::scheduler::swarm_mark(data_dir).exists() {
            continue;
        }
        match platform_command(data_dir, &["scheduler:sync-routes"]) {
            Ok(out) => {
                for line in
                    String::from_utf8_lossy(&out.stdout).lines().chain(String::from_utf8_lossy(&out.stderr).lines())
                {
                    output::header(output::printable(line.trim_start_matches("-----> ")));
                }
            }
            Err(e) => output::warn(format!("cannot follow the swarm's tasks: {e:#}")),
        }
    }
}

fn scheduled_run(data_dir: &Path, app: &str, id: &str) {
    output::header(format!("Running cron task {id} of {app}"));
    let status = (|| -> Result<std::process::ExitStatus> {
        // Its output is recorded by the run itself; only its error lines come here, the first
        // 64 KB of them (a task may print without end).
        let mut child = slipway_command(data_dir, ["cron:run", app, id, "--scheduled"])?
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let mut reader = BufReader::new(child.stderr.take().context("no stderr")?);
        let mut budget: u64 = 64 * 1024;
        let mut line = String::new();
        while budget > 0 {
            line.clear();
            let n = std::io::Read::take(&mut reader, budget).read_line(&mut line).unwrap_or(0);
            if n == 0 {
                break;
            }
            budget -= n as u64;
            output::detail(format!("{app} {id}: {}", output::printable(line.trim_end())));
        }
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        Ok(child.wait()?)
    })();
    match status {
        Ok(status) => {
            let how = status.code().map(|c| format!("exit {c}")).unwrap_or_else(|| "killed".into());
            output::header(format!("Cron task {id} of {app} ended ({how}); `cron:output {app}` shows its output"));
        }
        Err(e) => output::warn(format!("cron task {id} of {app}: {e:#}")),
    }
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
    if let Some((listen, https_listen)) = theirs.configured_listen() {
        if router.pid().is_none() {
            let generation = format!("{}", crate::units::unique_id());
            let router = Router { dir: router.dir.clone(), listen, https_listen };
            router.render_from(&theirs.dir.join("apps"), &generation)?;
            router.start_or_reload()?;
        }
    }
    Ok(())
}

/// Every service that stops is started again (checked four times a second), unless the daemon
/// is stopping; one that fails to start is tried again after 1 s, then 2, 4, ... up to 30 s.
fn supervise(services: &[Box<dyn Service>], stopping: &AtomicBool) {
    let mut retry: Vec<(Duration, std::time::Instant)> =
        services.iter().map(|_| (Duration::ZERO, std::time::Instant::now())).collect();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        for (service, (backoff, next)) in services.iter().zip(retry.iter_mut()) {
            if stopping.load(Ordering::SeqCst) || service.running() || std::time::Instant::now() < *next {
                continue;
            }
            match service.start() {
                Ok(()) => {
                    output::warn(format!("the {} was not running: started it", service.name()));
                    *backoff = Duration::ZERO;
                }
                Err(e) => {
                    *backoff = (*backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
                    output::warn(format!(
                        "the {} had stopped and did not start ({e:#}); trying again in {} s",
                        service.name(),
                        backoff.as_secs()
                    ));
                    *next = std::time::Instant::now() + *backoff;
                }
            }
        }
    }
}

fn stop_on_signal(services: Arc<Vec<Box<dyn Service>>>, socket: PathBuf, stopping: Arc<AtomicBool>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGTERM, SIGINT] {
        let _ = signal_hook::flag::register(sig, stopping.clone());
    }
    std::thread::spawn(move || {
        while !stopping.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_file(&socket);
        for service in services.iter() {
            if let Err(e) = service.stop() {
                output::warn(format!("cannot stop the {}: {e:#}", service.name()));
            }
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
        let router = Router { dir: dir.path().join("run"), ..Router::new(dir.path(), "") };
        for bad in [
            "apply-router",
            "apply-router 1 127.0.0.1:80",
            "apply-router 1 127.0.0.1:80 127.0.0.1:443 extra",
            "apply-router 1;x 127.0.0.1:80 127.0.0.1:443",
            "apply-router 1 127.0.0.1:80;location 127.0.0.1:443",
            "apply-router 1 127.0.0.1:80 127.0.0.1:443;x",
            "reload",
        ] {
            assert!(apply(dir.path(), &router, &[], bad).is_err(), "{bad}");
        }
        assert!(!dir.path().join("run").exists(), "nothing was written");
    }
}
