//! The HTTP router in front of the apps: nginx (Debian's package), as Dokku does it. Each app
//! gets a generated vhost file whose upstream lists its web containers' loopback ports; a
//! deploy writes the new file and reloads nginx gracefully, so requests in flight finish on
//! the old workers while new ones go to the new containers. nginx runs with its own config
//! under the data dir, not the system's.
//!
//! Where `slipway daemon` runs (as root) the router is its child: nginx's master is root's and its
//! workers, which read what the internet sends, run as [`ROUTER_USER`], outside the docker
//! group; a deploy (as the git user) writes the configuration and asks the daemon to apply it.
//! Without the daemon, the deploy starts and reloads nginx itself, as its own user.
//!
//! Why nginx and not an embedded router: it is what Dokku users know, its graceful reload is
//! proven under load, and upstream retries (`proxy_next_upstream`) cover a container that stops
//! between a reload and the request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub mod vhost;

use super::names::{is_safe_app_name, listen_port, validate_domain, validate_listen};
use vhost::{Challenge, Tls, Vhost};

/// A host name that can never be an app's: it answers with the configuration's generation, so
/// a reload can be awaited (nginx reloads asynchronously).
const GENERATION_HOST: &str = "generation.slipway.invalid"; // ends in names::INTERNAL_SUFFIX

/// The user nginx's workers run as when root starts the router (`slipway install` creates it:
/// no shell, no home, in no group but its own).
pub const ROUTER_USER: &str = "slipway-router";

#[derive(Debug, Clone)]
pub struct Router {
    pub dir: PathBuf,
    pub listen: String,
    /// Where apps with a certificate are served over HTTPS.
    pub https_listen: String,
}

fn nginx() -> Result<PathBuf> {
    crate::sys::which("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .context("nginx is not installed: apt-get install nginx-light (make deps does it)")
}

impl Router {
    pub fn new(data_dir: &Path, listen: &str) -> Router {
        let https_listen = super::settings::https_beside(listen);
        Router { dir: data_dir.join("nginx"), listen: listen.to_string(), https_listen }
    }

    /// The same router serving HTTPS on `https_listen`.
    pub fn with_https(self, https_listen: &str) -> Router {
        Router { https_listen: https_listen.to_string(), ..self }
    }

    fn main_conf(&self, generation: &str) -> String {
        let d = self.dir.display();
        // Used when root runs the master (the daemon); nginx ignores it otherwise.
        let user = match crate::engine::user::AppUser::lookup(ROUTER_USER) {
            Some(_) => format!("user {ROUTER_USER};\n"),
            None => String::new(),
        };
        format!(
            "# Written by slipway; regenerated on every change.
# https-listen {https}
{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    client_max_body_size 100m;
    server_names_hash_bucket_size 512;
    include {d}/apps/*.conf;
    include {d}/https/*.conf;
    server {{
        listen {listen} default_server;
        location / {{ default_type text/plain; return 404 \"no app is served at this host name\\n\"; }}
    }}
    server {{
        listen {listen};
        server_name {GENERATION_HOST};
        location / {{ default_type text/plain; return 200 \"{generation}\"; }}
    }}
}}
",
            listen = self.listen,
            https = self.https_listen
        )
    }

    fn ensure_layout(&self, generation: &str) -> Result<()> {
        validate_listen(&self.listen)?;
        validate_listen(&self.https_listen)?;
        for sub in ["apps", "tmp", "logs", "https"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        write_atomic(&self.dir.join("nginx.conf"), &self.main_conf(generation))
    }

    /// Where to reach the router from this host.
    fn local_address(&self) -> String {
        let port = self.listen.rsplit(':').next().unwrap_or("80");
        let host = self.listen.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
        let host = match host {
            "" | "0.0.0.0" | "*" => "127.0.0.1",
            "[::]" => "[::1]",
            h => h,
        };
        format!("{host}:{port}")
    }

    /// Waits until new connections get the configuration of `generation` (bounded). Old
    /// workers close their listening sockets a moment after the new ones start, so several
    /// answers in a row must come from the new configuration.
    fn await_generation(&self, generation: &str) -> Result<()> {
        let started = std::time::Instant::now();
        let address = self.local_address();
        let mut in_a_row = 0;
        // Called on a blocking thread of the runtime (see `set_app`).
        let runtime = tokio::runtime::Handle::current();
        loop {
            let ask = crate::net::raw_get(&address, GENERATION_HOST, std::time::Duration::from_secs(2));
            let answer = runtime.block_on(ask);
            if answer.is_some_and(|r| r.ends_with(generation)) {
                in_a_row += 1;
                if in_a_row >= 5 {
                    return Ok(());
                }
            } else {
                in_a_row = 0;
            }
            if started.elapsed() > std::time::Duration::from_secs(10) {
                bail!("the router did not take its new configuration within 10s; see {}/error.log", self.dir.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("nginx.pid")).ok()?.trim().parse().ok()?;
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    fn run_nginx(&self, extra: &[&str]) -> Result<()> {
        let conf = self.dir.join("nginx.conf");
        let out = Command::new(nginx()?)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&self.dir)
            .args(extra)
            .output()
            .context("cannot run nginx")?;
        if !out.status.success() {
            bail!("nginx {}: {}", extra.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Starts nginx when it is not running; reloads it gracefully when it is (through the
    /// daemon when one serves this data dir). Returns once new connections get the new
    /// configuration.
    fn apply(&self) -> Result<()> {
        let generation = format!(
            "{}-{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
            std::process::id()
        );
        let old_workers = match self.daemon_router() {
            Some(root) => {
                validate_listen(&self.listen)?;
                validate_listen(&self.https_listen)?;
                let old = root.pid().map(children).unwrap_or_default();
                super::daemon::apply_router(self.data_dir(), &generation, &self.listen, &self.https_listen)?;
                old
            }
            None => {
                self.ensure_layout(&generation)?;
                let old = self.pid().map(children).unwrap_or_default();
                self.start_or_reload()?;
                old
            }
        };
        self.await_generation(&generation)?;
        await_workers_closed(&old_workers);
        if self.daemon_router().is_none() {
            // The daemon rotates its router's logs every minute; without it, each change does.
            self.rotate_logs(Default::default())?;
        }
        Ok(())
    }

    fn data_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// The router root's daemon runs for this data dir, when one does.
    fn daemon_router(&self) -> Option<Router> {
        let dir = super::daemon::router_dir(self.data_dir())?;
        Some(Router { dir, ..self.clone() })
    }

    /// Whether nginx runs for this data dir (the daemon's or this user's).
    fn is_running(&self) -> bool {
        self.daemon_router().unwrap_or_else(|| self.clone()).pid().is_some()
    }

    /// Root's copy of the router (the daemon's): each app's vhost in `source` (the git user's
    /// `nginx/apps`) is read without following links, parsed back to its host names and ports,
    /// checked, and written again here, so none of the git user's text reaches root's nginx as
    /// it is. Apps whose file went away are removed.
    pub fn render_from(&self, source: &Path, generation: &str) -> Result<()> {
        self.ensure_layout(generation)?;
        let data_dir = source.parent().and_then(Path::parent).context("the router's source has no data dir")?;
        let mut kept = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(source).with_context(|| format!("cannot read {}", source.display()))? {
            let file = entry?.file_name().to_string_lossy().into_owned();
            let Some(app) = file.strip_suffix(".conf").filter(|a| is_safe_app_name(a)) else { continue };
            let Some(mut site) = read_private(&source.join(&file)).and_then(|t| Vhost::parse(app, &t)) else {
                crate::output::warn(format!("the router's entry for {app} is not one slipway wrote: left out"));
                continue;
            };
            site.hosts.retain(|h| validate_domain(h).is_ok_and(|d| d == *h));
            if site.hosts.is_empty() {
                crate::output::warn(format!("the router's entry for {app} names no valid host: left out"));
                continue;
            }
            site.tls = match site.tls.take() {
                Some(tls) => self.copy_certificate(data_dir, app, &site.hosts, &tls.hosts),
                None => None,
            };
            site.logs = Some(self.dir.join("logs"));
            // An app's other ports never take the router's own or its HTTPS one.
            let (http, https) = (listen_port(&self.listen), listen_port(&self.https_listen));
            site.listens.retain(|p| Some(*p) != http && Some(*p) != https);
            write_atomic(&self.dir.join("apps").join(&file), &site.render(&self.listen, &self.https_listen))?;
            kept.insert(file);
        }
        for entry in std::fs::read_dir(self.dir.join("apps"))? {
            let file = entry?.file_name().to_string_lossy().into_owned();
            if file.ends_with(".conf") && !kept.contains(&file) {
                std::fs::remove_file(self.dir.join("apps").join(&file))?;
            }
        }
        self.sync_https()
    }

    /// Root's copy of an app's certificate (read without following links, checked again, and
    /// written here, root's alone), serving those of `wanted` it names and the app has; None
    /// (served over HTTP only, with a warning) when it does not check out.
    fn copy_certificate(&self, data_dir: &Path, app: &str, hosts: &[String], wanted: &[String]) -> Option<Tls> {
        let checked = (|| -> Result<Tls> {
            let (chain, key) = super::certs::stored(data_dir, app)?.context("it has none stored")?;
            let info = super::certs::inspect(&chain, &key)?;
            let hosts: Vec<String> = wanted.iter().filter(|h| hosts.contains(h) && info.covers(h)).cloned().collect();
            if hosts.is_empty() {
                bail!("it names none of the hosts");
            }
            let dir = self.dir.join("certs");
            std::fs::create_dir_all(&dir)?;
            let (chain_path, key_path) = (dir.join(format!("{app}.crt")), dir.join(format!("{app}.key")));
            crate::engine::fsutil::write_private(&key_path, &key)?;
            crate::engine::fsutil::write_private(&chain_path, &chain)?;
            Ok(Tls { hosts, chain: chain_path, key: key_path })
        })();
        match checked {
            Ok(tls) => Some(tls),
            Err(e) => {
                crate::output::warn(format!("the certificate of {app} is not served ({e:#}): HTTP only"));
                None
            }
        }
    }

    /// The addresses (HTTP, HTTPS) a main configuration written here listens on, when it names
    /// valid ones (one from before HTTPS: the default beside HTTP).
    pub fn configured_listen(&self) -> Option<(String, String)> {
        let text = read_private(&self.dir.join("nginx.conf"))?;
        let listen = text.lines().find_map(|l| l.trim().strip_prefix("listen ")?.strip_suffix(" default_server;"))?;
        validate_listen(listen).ok()?;
        let https = text.lines().find_map(|l| l.strip_prefix("# https-listen "));
        let https = match https.filter(|h| validate_listen(h).is_ok()) {
            Some(h) => h.to_string(),
            None => super::settings::https_beside(listen),
        };
        Some((listen.to_string(), https))
    }

    /// Checks the configuration, then reloads nginx gracefully, or starts it when it is not
    /// running.
    pub fn start_or_reload(&self) -> Result<()> {
        self.run_nginx(&["-t", "-q"]).context("the router's configuration is invalid")?;
        match self.pid() {
            Some(_) => self.run_nginx(&["-s", "reload"]),
            None => self.run_nginx(&[]).context("cannot start the router (nginx); is its port free?"),
        }
    }

    /// Stops nginx gracefully (in-flight requests finish), waiting for it (bounded).
    pub fn stop(&self) -> Result<()> {
        let Some(pid) = self.pid() else { return Ok(()) };
        self.run_nginx(&["-s", "quit"])?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while unsafe { libc::kill(pid, 0) } == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(())
    }

    /// Points an app's host names at these upstreams (containers' loopback ports, swarm
    /// tasks' node addresses), then reloads (nginx runs and the
    /// wait for its workers happen on a blocking thread). When the new configuration does not
    /// pass `nginx -t`, the old one is put back.
    pub async fn set_app(&self, app: &str, hosts: &[String], upstreams: &[SocketAddr], listens: &[u16]) -> Result<()> {
        let (router, app, hosts, ports) = (self.clone(), app.to_string(), hosts.to_vec(), upstreams.to_vec());
        let listens = listens.to_vec();
        tokio::task::spawn_blocking(move || router.set_app_now(&app, &hosts, &ports, &listens)).await?
    }

    /// Removes an app's entry and reloads (on a blocking thread).
    pub async fn remove_app(&self, app: &str) -> Result<()> {
        let (router, app) = (self.clone(), app.to_string());
        tokio::task::spawn_blocking(move || router.remove_app_now(&app)).await?
    }

    fn set_app_now(&self, app: &str, hosts: &[String], ports: &[SocketAddr], listens: &[u16]) -> Result<()> {
        // Checked where they entered, and again here, where they become nginx config. A name
        // stored before those checks existed is left out, with a warning, rather than written.
        if !is_safe_app_name(app) {
            bail!("{app:?} is not a safe app name for the router");
        }
        let hosts: Vec<String> = hosts
            .iter()
            .filter(|h| {
                let ok = validate_domain(h).is_ok_and(|d| d == **h);
                if !ok {
                    crate::output::warn(format!(
                        "{h:?} is not a lowercase host name: not routed (remove it with domains:remove)"
                    ));
                }
                ok
            })
            .cloned()
            .collect();
        let site = Vhost { listens: listens.to_vec(), ..self.site(app, hosts, ports)? };
        std::fs::create_dir_all(self.dir.join("apps"))?;
        let path = self.dir.join("apps").join(format!("{app}.conf"));
        let previous = std::fs::read_to_string(&path).ok();
        write_atomic(&path, &site.render(&self.listen, &self.https_listen))?;
        if let Err(e) = self.sync_https().and_then(|()| self.apply()) {
            match previous {
                Some(p) => write_atomic(&path, &p)?,
                None => std::fs::remove_file(&path)?,
            }
            self.sync_https()?;
            return Err(e);
        }
        Ok(())
    }

    fn remove_app_now(&self, app: &str) -> Result<()> {
        let path = self.dir.join("apps").join(format!("{app}.conf"));
        if path.exists() {
            std::fs::remove_file(&path)?;
            self.sync_https()?;
            if self.is_running() {
                self.apply()?;
            }
        }
        Ok(())
    }

    /// An app's vhost: its certificate's hosts served over HTTPS, and the ACME answers it gives.
    fn site(&self, app: &str, hosts: Vec<String>, upstreams: &[SocketAddr]) -> Result<Vhost> {
        let data_dir = self.data_dir();
        let tls = match super::certs::info(data_dir, app) {
            Ok(Some(info)) => {
                let covered: Vec<String> = info.covered(&hosts).into_iter().cloned().collect();
                let (chain, key) = (super::certs::chain_path(data_dir, app), super::certs::key_path(data_dir, app));
                (!covered.is_empty()).then_some(Tls { hosts: covered, chain, key })
            }
            Ok(None) => None,
            Err(e) => {
                crate::output::warn(format!("{e:#}: {app} is served over HTTP only"));
                None
            }
        };
        let challenges = challenges(data_dir, app);
        let logs = Some(self.dir.join("logs"));
        Ok(Vhost {
            app: app.to_string(),
            hosts,
            upstreams: upstreams.to_vec(),
            listens: Vec::new(),
            tls,
            challenges,
            logs,
        })
    }

    /// While any app is served over HTTPS, a default server on the HTTPS address refuses the
    /// TLS handshake for names no app has (else nginx would hand them the first app's
    /// certificate and upstream); root's copies of certificates no app serves are removed.
    fn sync_https(&self) -> Result<()> {
        let apps = self.dir.join("apps");
        let mut served = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&apps).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = read_private(&entry.path()).unwrap_or_default();
            if let Some(app) = name.strip_suffix(".conf").filter(|_| text.contains(" ssl http2;")) {
                served.insert(app.to_string());
            }
        }
        std::fs::create_dir_all(self.dir.join("https"))?;
        let default = self.dir.join("https").join("default.conf");
        if served.is_empty() {
            let _ = std::fs::remove_file(&default);
        } else {
            let text = format!(
                "# Written by slipway: names no app serves over HTTPS get no certificate.\nserver {{\n    listen {} ssl http2 default_server;\n    ssl_reject_handshake on;\n}}\n",
                self.https_listen
            );
            write_atomic(&default, &text)?;
        }
        for entry in std::fs::read_dir(self.dir.join("certs")).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let app = name.strip_suffix(".crt").or_else(|| name.strip_suffix(".key")).unwrap_or(&name);
            if !served.contains(app) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Rotates the per-app access and error logs past `limits.max_size` (`.1`, `.2`, ... up to
    /// `max_files` files each), then has nginx reopen them.
    pub fn rotate_logs(&self, limits: crate::containers::docker::LogLimits) -> Result<()> {
        let dir = self.dir.join("logs");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
        let mut rotated = false;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let big = entry.metadata().map(|m| m.is_file() && m.len() > limits.max_size).unwrap_or(false);
            if !name.ends_with(".log") || !big {
                continue;
            }
            for n in (1..limits.max_files.max(1)).rev() {
                let from = if n == 1 { dir.join(&name) } else { dir.join(format!("{name}.{}", n - 1)) };
                let _ = std::fs::rename(from, dir.join(format!("{name}.{n}")));
            }
            if limits.max_files <= 1 {
                let _ = std::fs::remove_file(dir.join(&name));
            }
            rotated = true;
        }
        if rotated && self.pid().is_some() {
            self.run_nginx(&["-s", "reopen"])?;
        }
        Ok(())
    }

    /// The last `lines` lines of an app's access log, then of its error log.
    pub fn log_tail(&self, app: &str, lines: usize) -> Result<String> {
        if !is_safe_app_name(app) {
            bail!("{app:?} is not an app name");
        }
        if let Some(root) = self.daemon_router() {
            if root.dir != self.dir {
                return super::daemon::router_log(self.data_dir(), app, lines);
            }
        }
        let mut out = String::new();
        for kind in ["access", "error"] {
            let path = self.dir.join("logs").join(format!("{app}.{kind}.log"));
            let text = crate::engine::fsutil::read_tail_no_follow(&path, 4 * 1024 * 1024)?;
            let all: Vec<&str> = text.lines().collect();
            out += &format!("==> {kind} log <==\n");
            for line in &all[all.len().saturating_sub(lines)..] {
                out += &crate::output::printable(line);
                out.push('\n');
            }
        }
        Ok(out)
    }

    pub fn has_app(&self, app: &str) -> bool {
        self.dir.join("apps").join(format!("{app}.conf")).exists()
    }

    /// Where the app's entry sends its traffic now (None: it has no entry).
    pub fn upstreams(&self, app: &str) -> Option<Vec<SocketAddr>> {
        let text = std::fs::read_to_string(self.dir.join("apps").join(format!("{app}.conf"))).ok()?;
        Vhost::parse(app, &text).map(|v| v.upstreams)
    }
}

/// Where the HTTP-01 answers an app gives while Let's Encrypt validates it are kept: one
/// `TOKEN KEY_AUTHORIZATION` line each.
pub fn challenges_path(data_dir: &Path, app: &str) -> PathBuf {
    data_dir.join("acme").join(format!("{app}.challenges"))
}

fn challenges(data_dir: &Path, app: &str) -> Vec<Challenge> {
    let text = read_private(&challenges_path(data_dir, app)).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once(' ')).filter_map(|(t, k)| Challenge::new(t, k)).collect()
}

/// A small regular file's text, never through a link (root reads the git user's files so).
fn read_private(path: &Path) -> Option<String> {
    crate::engine::fsutil::read_no_follow(path, 64 * 1024).ok().flatten()
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The processes whose parent is `pid` (nginx's workers, when `pid` is its master).
fn children(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            // /proc/N/stat: "N (comm) S PPID ...": the comm may hold spaces, so split after ')'.
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(pid)
        })
        .collect()
}

/// Waits (bounded) until each old worker has exited or closed its listening sockets, which
/// nginx shows by retitling it "worker process is shutting down": until then, a new connection
/// may still reach the old configuration (seen under load: a removed domain answered once).
fn await_workers_closed(old: &[i32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let still_listening = old.iter().any(|pid| match std::fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cmdline) => {
                let title = String::from_utf8_lossy(&cmdline);
                title.contains("worker process") && !title.contains("shutting down")
            }
            Err(_) => false,
        });
        if !still_listening {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(app: &str, hosts: &[&str], ports: &[u16]) -> Vhost {
        let hosts = hosts.iter().map(|h| h.to_string()).collect();
        Vhost {
            app: app.into(),
            hosts,
            upstreams: ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect(),
            listens: vec![],
            tls: None,
            challenges: vec![],
            logs: None,
        }
    }

    fn router(dir: &Path, listen: &str) -> Router {
        Router::new(Path::new("/unused"), listen).with_https("127.0.0.1:8443").at(dir)
    }

    impl Router {
        fn at(self, dir: &Path) -> Router {
            Router { dir: dir.to_path_buf(), ..self }
        }
    }

    #[test]
    fn roots_copy_is_rewritten_from_checked_data_and_never_read_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("data/nginx/apps");
        std::fs::create_dir_all(&source).unwrap();
        let render = |v: &Vhost| v.render("127.0.0.1:80", "127.0.0.1:8443");
        let good = render(&site("good", &["good.example.com"], &[4000]));
        // Extra directives ride along in a file slipway did not write: they are not copied.
        let extra = good.replace("keepalive 32;", "keepalive 32;\n    access_log /etc/shadow;");
        std::fs::write(source.join("good.conf"), &extra).unwrap();
        std::fs::write(source.join("odd.conf"), render(&site("odd", &["x.example; location /"], &[4001]))).unwrap();
        std::fs::write(dir.path().join("secret"), "server_name leaked.example.com;\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), source.join("linked.conf")).unwrap();
        std::fs::write(source.join("Bad_Name.conf"), &good).unwrap();
        let root = router(&dir.path().join("root"), "127.0.0.1:8080");
        root.render_from(&source, "1-2").unwrap();
        let mut files: Vec<String> = std::fs::read_dir(root.dir.join("apps"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["good.conf", "odd.conf"], "a link and a bad name are left out");
        let odd = std::fs::read_to_string(root.dir.join("apps/odd.conf")).unwrap();
        assert!(odd.contains("server_name location;") && !odd.contains("x.example"), "only valid names: {odd}");
        let copied = std::fs::read_to_string(root.dir.join("apps/good.conf")).unwrap();
        let expected = Vhost { logs: Some(root.dir.join("logs")), ..site("good", &["good.example.com"], &[4000]) };
        assert_eq!(copied, expected.render("127.0.0.1:8080", "127.0.0.1:8443"));
        assert_eq!(root.configured_listen(), Some(("127.0.0.1:8080".into(), "127.0.0.1:8443".into())));
        std::fs::remove_file(source.join("good.conf")).unwrap();
        std::fs::write(source.join("odd.conf"), render(&site("odd", &["-;"], &[1]))).unwrap();
        root.render_from(&source, "1-3").unwrap();
        assert!(!root.dir.join("apps/good.conf").exists(), "an app that went away is removed");
        assert!(!root.dir.join("apps/odd.conf").exists(), "an app with no valid host is left out");
    }

    #[test]
    fn router_logs_are_rotated_and_keep_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = router(dir.path(), "127.0.0.1:80");
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let limits = crate::containers::docker::LogLimits { max_size: 10, max_files: 3 };
        for round in 0..5 {
            std::fs::write(dir.path().join("logs/demo.access.log"), format!("round {round} of a long line\n")).unwrap();
            r.rotate_logs(limits).unwrap();
        }
        let mut files: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["demo.access.log.1", "demo.access.log.2"]);
        let newest = std::fs::read_to_string(dir.path().join("logs/demo.access.log.1")).unwrap();
        assert!(newest.starts_with("round 4"), "{newest}");
        std::fs::write(dir.path().join("logs/demo.access.log"), "GET / 200\nGET /b 404\n").unwrap();
        let tail = r.log_tail("demo", 1).unwrap();
        assert!(tail.contains("GET /b 404") && !tail.contains("GET / 200"), "{tail}");
        assert!(r.log_tail("../x", 1).is_err());
    }

    #[test]
    fn root_serves_a_certificate_only_once_it_checks_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let source = data.join("nginx/apps");
        std::fs::create_dir_all(&source).unwrap();
        let (chain, key) = crate::platform::certs::tests::self_signed(&["shop.example.com"]);
        crate::platform::certs::store(&data, "shop", chain.as_bytes(), key.as_bytes()).unwrap();
        let theirs = router(&data.join("nginx"), "127.0.0.1:80");
        let site = theirs
            .site(
                "shop",
                vec!["shop.example.com".into(), "shop.other.test".into()],
                &["127.0.0.1:4000".parse().unwrap()],
            )
            .unwrap();
        assert_eq!(site.tls.as_ref().unwrap().hosts, ["shop.example.com"], "the hosts it names");
        std::fs::write(source.join("shop.conf"), site.render("127.0.0.1:80", "127.0.0.1:8443")).unwrap();
        let root = router(&dir.path().join("root"), "127.0.0.1:80");
        root.render_from(&source, "1").unwrap();
        let conf = std::fs::read_to_string(root.dir.join("apps/shop.conf")).unwrap();
        let copy = root.dir.join("certs/shop.key");
        assert!(conf.contains(&format!("ssl_certificate_key {};", copy.display())), "{conf}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
        // The git user swaps the key for a link: root serves HTTP only, and reads nothing.
        std::fs::remove_file(crate::platform::certs::key_path(&data, "shop")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", crate::platform::certs::key_path(&data, "shop")).unwrap();
        root.render_from(&source, "2").unwrap();
        let conf = std::fs::read_to_string(root.dir.join("apps/shop.conf")).unwrap();
        assert!(!conf.contains("ssl_certificate") && conf.contains("proxy_pass"), "{conf}");
    }
}
