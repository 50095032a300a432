//! Where swarm nodes pull release images from: the registry set with `registry:set --global
//! server HOST:PORT` (Dokku's), else a local one slipway runs.
//!
//! The local registry is Debian's `docker-registry`, run by `slipway daemon` (as the data dir's
//! owner, supervised like the router: started again when it stops, and at boot) on the swarm
//! manager's address, port 5000, over TLS with a certificate slipway made for that address, and
//! with a password (htpasswd, bcrypt). The daemon puts the certificate where this host's engine
//! trusts it (`/etc/docker/certs.d/ADDR:5000/ca.crt`); another node needs that file too
//! (`cluster:join-token` says so). Tasks pull with the manager's credentials, passed along by
//! swarm (`--with-registry-auth`). Release images are tagged per release
//! (`ADDR:5000/slipway/APP:vN`); hygiene deletes the tags of releases it no longer keeps, and the
//! daemon collects their layers each time it starts the registry.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::auth::DockerCredentials;
use futures_util::StreamExt;

use crate::platform::daemon::Service;
use crate::platform::records::Release;
use crate::platform::runner::Runner;
use crate::platform::state::State;

/// The global setting `registry:set --global server` writes.
const SERVER_KEY: &str = "registry.server";
/// The local registry's port, on the manager's address.
pub const LOCAL_PORT: u16 = 5000;
const USER: &str = "slipway";
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json";

/// A registry release images go to.
#[derive(Debug, Clone)]
pub struct Registry {
    /// HOST:PORT
    pub server: String,
    /// The local registry's password (an external one's are Docker's business).
    pub password: Option<String>,
    /// The certificate a local registry serves.
    pub ca: Option<PathBuf>,
}

/// The registry set with `registry:set --global server`, if any.
pub fn configured(state: &State) -> Result<Option<String>> {
    state.setting("", SERVER_KEY)
}

/// `registry:set --global server HOST:PORT` (an empty value: back to the local registry).
pub fn set_server(state: &State, server: &str) -> Result<()> {
    if server.is_empty() {
        return state.set_setting("", SERVER_KEY, None);
    }
    let (host, port) = server.rsplit_once(':').unwrap_or((server, ""));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !host.starts_with(['-', '.']);
    if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
        bail!("{server:?} is not a registry address: use HOST:PORT, e.g. registry.example.com:5000");
    }
    state.set_setting("", SERVER_KEY, Some(server))
}

/// The local registry's files: certificate, key, password, htpasswd, config, storage.
pub fn local_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("registry")
}

/// The registry this deploy pushes to: the configured one, else the local one (its files
/// made for `addr`, then waited for until the daemon runs it).
pub async fn for_swarm(r: &Runner, addr: IpAddr) -> Result<Registry> {
    if let Some(server) = configured(&r.state)? {
        return Ok(Registry { server, password: None, ca: None });
    }
    let dir = local_dir(&r.state.data_dir);
    let registry = prepare_local(&dir, addr)?;
    // Without a daemon (as the router does then), this process runs it, detached.
    if crate::platform::daemon::router_dir(&r.state.data_dir).is_none() {
        start_detached(&r.state.data_dir)?;
    }
    let check = registry.clone();
    let ready = tokio::task::spawn_blocking(move || check.wait_ready(Duration::from_secs(30))).await?;
    ready.with_context(|| {
        format!(
            "the swarm's local registry is run by `slipway daemon` (its log: {}); or set one with `slipway registry:set --global server HOST:PORT`",
            dir.join("registry.log").display()
        )
    })?;
    Ok(registry)
}

/// Writes the local registry's files for `addr` (kept while the address stays the same).
fn prepare_local(dir: &Path, addr: IpAddr) -> Result<Registry> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let server = format!("{}:{LOCAL_PORT}", url_host(addr));
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let private = |name: &str, text: &str| -> Result<()> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    };
    // Two first deploys at once write one set of files, not a mix of two.
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".lock"))?;
    // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}", dir.join(".lock").display());
    }
    let same_addr = std::fs::read_to_string(dir.join("server")).is_ok_and(|s| s.trim() == server);
    if !same_addr || !dir.join("config.yml").exists() {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![rcgen::SanType::IpAddress(addr)];
        params.distinguished_name.push(rcgen::DnType::CommonName, "slipway registry");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let cert = params.self_signed(&key)?;
        let password = crate::platform::services::new_password()?;
        let hash = bcrypt::hash_with_result(&password, 5)?.format_for_version(bcrypt::Version::TwoY);
        private("cert.pem", &cert.pem())?;
        private("key.pem", &key.serialize_pem())?;
        private("password", &password)?;
        private("htpasswd", &format!("{USER}:{hash}\n"))?;
        // Single-quoted YAML: a quote in the path is doubled.
        let d = dir.display().to_string().replace('\'', "''");
        private(
            "config.yml",
            &format!(
                "# Written by slipway: the swarm's local registry\nversion: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: '{d}/data'\n  delete:\n    enabled: true\nhttp:\n  addr: '{server}'\n  tls:\n    certificate: '{d}/cert.pem'\n    key: '{d}/key.pem'\nauth:\n  htpasswd:\n    realm: slipway\n    path: '{d}/htpasswd'\n"
            ),
        )?;
        private("server", &format!("{server}\n"))?;
    }
    let password = std::fs::read_to_string(dir.join("password"))?.trim().to_string();
    Ok(Registry { server, password: Some(password), ca: Some(dir.join("cert.pem")) })
}

pub fn url_host(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

impl Registry {
    /// The reference nodes pull a release's image by.
    pub fn reference(&self, app: &str, version: i64) -> String {
        format!("{}/slipway/{app}:v{version}", self.server)
    }

    /// What the engine sends along (and swarm passes to the nodes) to push and pull.
    pub fn credentials(&self) -> Option<DockerCredentials> {
        self.password.as_ref().map(|p| DockerCredentials {
            username: Some(USER.into()),
            password: Some(p.clone()),
            serveraddress: Some(self.server.clone()),
            ..Default::default()
        })
    }

    fn client(&self) -> Result<reqwest::blocking::Client> {
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(builder.build()?)
    }

    fn request(
        &self,
        client: &reqwest::blocking::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let req = client.request(method, format!("https://{}/v2/{path}", self.server));
        match &self.password {
            Some(p) => req.basic_auth(USER, Some(p)),
            None => req,
        }
    }

    /// Waits until the registry answers its API (the daemon starts a local one within a second).
    pub fn wait_ready(&self, wait: Duration) -> Result<()> {
        let client = self.client()?;
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < wait {
            match self.request(&client, reqwest::Method::GET, "").send() {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => last = format!("it answered {}", resp.status()),
                Err(e) => last = crate::output::error_chain(&e),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        bail!("the swarm's registry does not answer at https://{}/v2/ ({last})", self.server)
    }

    /// Pushes a release's image (tagged for this registry); returns its reference.
    pub async fn push(&self, r: &Runner, release: &Release) -> Result<String> {
        let reference = self.reference(&release.app, release.version);
        let (repo, tag) = reference.rsplit_once(':').expect("a reference has a tag");
        r.engine.tag(&release.image, repo, tag).await?;
        let opts = bollard::query_parameters::PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = r.engine.api.push_image(repo, Some(opts), self.credentials());
        while let Some(item) = stream.next().await {
            let item = item.with_context(|| format!("cannot push {reference}"))?;
            if let Some(detail) = item.error_detail.and_then(|d| d.message) {
                bail!("cannot push {reference}: {detail}");
            }
        }
        Ok(reference)
    }

    /// The manifest digest a tag points at (None: no such tag).
    fn digest(&self, client: &reqwest::blocking::Client, app: &str, version: i64) -> Result<Option<String>> {
        let resp = self
            .request(client, reqwest::Method::HEAD, &format!("slipway/{app}/manifests/v{version}"))
            .header("Accept", MANIFEST_TYPES)
            .send()?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        // Anything else unclear stops the clean-up: a kept tag must never look absent.
        if !resp.status().is_success() {
            bail!("the registry answered {} for {app}:v{version}", resp.status());
        }
        let digest = resp.headers().get("docker-content-digest").and_then(|d| d.to_str().ok());
        Ok(digest
            .filter(|d| d.starts_with("sha256:") && d[7..].bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string))
    }

    /// Deletes the tags of `drop` whose images no release of `keep` shares (a config release
    /// is the same image under a new tag). Returns how many it deleted.
    pub fn delete_tags(&self, app: &str, drop: &[i64], keep: &[i64]) -> Result<usize> {
        let client = self.client()?;
        let mut kept = Vec::new();
        for v in keep {
            kept.extend(self.digest(&client, app, *v)?);
        }
        let mut deleted = 0;
        for v in drop {
            let Some(digest) = self.digest(&client, app, *v)? else { continue };
            if kept.contains(&digest) {
                continue;
            }
            let resp =
                self.request(&client, reqwest::Method::DELETE, &format!("slipway/{app}/manifests/{digest}")).send()?;
            if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND {
                deleted += 1;
                kept.push(digest);
            } else {
                bail!("the registry refused to delete {app}:v{v}: {}", resp.status());
            }
        }
        Ok(deleted)
    }
}

/// The local registry's files as they are (None: no app has used it).
pub fn local(data_dir: &Path) -> Option<Registry> {
    let dir = local_dir(data_dir);
    let server = std::fs::read_to_string(dir.join("server")).ok()?.trim().to_string();
    let password = std::fs::read_to_string(dir.join("password")).ok()?.trim().to_string();
    Some(Registry { server, password: Some(password), ca: Some(dir.join("cert.pem")) })
}

/// The registry the app's images are in now, when there is one to clean.
fn current(r: &Runner) -> Result<Option<Registry>> {
    Ok(match configured(&r.state)? {
        Some(server) => Some(Registry { server, password: None, ca: None }),
        None => local(&r.state.data_dir),
    })
}

/// Hygiene: the registry keeps the tags of the releases the engine keeps.
pub async fn hygiene(r: &Runner, app: &str, keep: &[i64], drop: &[i64]) -> Result<()> {
    let Some(registry) = current(r)? else { return Ok(()) };
    let (app, keep, drop) = (app.to_string(), keep.to_vec(), drop.to_vec());
    tokio::task::spawn_blocking(move || registry.delete_tags(&app, &drop, &keep)).await??;
    Ok(())
}

/// Removes this host's tags of the registry's images of `versions` (the engine frees their
/// layers once no tag or container needs them).
pub async fn untag_local(r: &Runner, app: &str, versions: &[i64]) {
    let Ok(Some(registry)) = current(r) else { return };
    for v in versions {
        let reference = registry.reference(app, *v);
        if r.engine.image_exists(&reference).await.unwrap_or(false) {
            r.engine.remove_image_quietly(&reference).await;
        }
    }
}

/// Deletes every release tag of an app (apps:destroy); a registry that does not answer is
/// left as it is, with a warning.
pub async fn forget_app(r: &Runner, app: &str) {
    let versions: Vec<i64> = r.state.releases(app).unwrap_or_default().iter().map(|r| r.version).collect();
    if let Err(e) = hygiene(r, app, &[], &versions).await {
        crate::output::warn(format!("the registry still has images of {app}: {e:#}"));
    }
}

/// The local registry, as a part of the platform `slipway daemon` keeps running: nothing to
/// run until an app on swarm has written its files; then `docker-registry serve`, as the
/// data dir's owner, started again whenever it stops or its files change.
pub struct LocalRegistry {
    data_dir: PathBuf,
    child: Mutex<Option<(std::process::Child, Option<std::time::SystemTime>)>>,
}

impl LocalRegistry {
    pub fn new(data_dir: &Path) -> LocalRegistry {
        LocalRegistry { data_dir: data_dir.to_path_buf(), child: Mutex::new(None) }
    }

    fn config(&self) -> PathBuf {
        local_dir(&self.data_dir).join("config.yml")
    }

    fn config_time(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.config()).and_then(|m| m.modified()).ok()
    }

    fn kill(&self) {
        if let Some((mut child, _)) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The local registry's process, as the data dir's owner (made the engine's trusted registry
/// first, and its unused layers collected while it is stopped); its output to its log.
fn spawn(data_dir: &Path, detached: bool) -> Result<std::process::Child> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::os::unix::process::CommandExt;
    let dir = local_dir(data_dir);
    // The directory is the git user's and this may run as root: no link is followed in it.
    let owner = std::fs::symlink_metadata(&dir)?;
    if !owner.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let read = |name: &str| -> Result<String> {
        use std::io::Read;
        let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(dir.join(name))?;
        let mut text = String::new();
        file.take(64 * 1024).read_to_string(&mut text)?;
        Ok(text)
    };
    let server = read("server")?.trim().to_string();
    // Only what prepare_local writes: IP:PORT, and a PEM certificate.
    let addr: std::net::SocketAddr =
        server.parse().map_err(|_| anyhow!("{}: {server:?} is not IP:PORT", dir.join("server").display()))?;
    let cert = read("cert.pem")?;
    if !cert.starts_with("-----BEGIN CERTIFICATE-----") {
        bail!("{} is not a PEM certificate", dir.join("cert.pem").display());
    }
    let certs = Path::new("/etc/docker/certs.d").join(addr.to_string());
    std::fs::create_dir_all(&certs).and_then(|_| std::fs::write(certs.join("ca.crt"), &cert)).with_context(|| {
        format!("cannot make Docker trust the swarm's registry ({}): run `slipway daemon` as root", certs.display())
    })?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("registry.log"))?;
    let _ = std::os::unix::fs::fchown(&log, Some(owner.uid()), Some(owner.gid()));
    let config = dir.join("config.yml");
    let command = |args: &[&str]| -> Result<std::process::Command> {
        let mut c = std::process::Command::new("docker-registry");
        c.args(args).arg(&config).uid(owner.uid()).gid(owner.gid());
        c.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log.try_clone()?);
        Ok(c)
    };
    let _ = command(&["garbage-collect", "--delete-untagged"])?.status();
    let mut serve = command(&["serve"])?;
    if detached {
        serve.process_group(0);
    }
    serve.spawn().context("cannot run docker-registry: install Debian's docker-registry package (`make deps`)")
}

/// Runs the local registry from this process, detached (no daemon runs it), unless the one it
/// started before still runs with the files it has now.
fn start_detached(data_dir: &Path) -> Result<()> {
    let pid_file = local_dir(data_dir).join("registry.pid");
    let config_time = std::fs::metadata(local_dir(data_dir).join("config.yml")).and_then(|m| m.modified()).ok();
    let pid_time = std::fs::metadata(&pid_file).and_then(|m| m.modified()).ok();
    if let Some(pid) = detached_pid(data_dir) {
        if pid_time >= config_time {
            return Ok(());
        }
        terminate(pid);
    }
    let child = spawn(data_dir, true)?;
    std::fs::write(&pid_file, format!("{}\n", child.id()))?;
    Ok(())
}

/// The registry a slipway command started detached (its pid file), while it runs.
fn detached_pid(data_dir: &Path) -> Option<i32> {
    let pid = std::fs::read_to_string(local_dir(data_dir).join("registry.pid")).ok()?.trim().parse::<i32>().ok()?;
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("docker-registry")).then_some(pid)
}

/// Stops that registry (SIGTERM), giving it a moment to let go of its port.
fn terminate(pid: i32) {
    // SAFETY: a signal to the registry of this data dir.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
}

impl Service for LocalRegistry {
    fn name(&self) -> String {
        "swarm registry".into()
    }

    fn running(&self) -> bool {
        let Some(written) = self.config_time() else { return true };
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match child.as_mut() {
            Some((c, started_with)) => c.try_wait().ok().flatten().is_none() && *started_with == Some(written),
            None => false,
        }
    }

    fn start(&self) -> Result<()> {
        self.kill();
        // One a slipway command started before the daemon ran goes first.
        if let Some(pid) = detached_pid(&self.data_dir) {
            terminate(pid);
        }
        let _ = std::fs::remove_file(local_dir(&self.data_dir).join("registry.pid"));
        let written = self.config_time();
        let child = spawn(&self.data_dir, false)?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some((child, written));
        Ok(())
    }

    fn stop(&self) -> Result<()> {
        self.kill();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_addresses_are_checked_and_local_files_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        for bad in ["", "registry", "-x:5000", "host:0", "host:port", "a b:5000", "host:5000;rm"] {
            if !bad.is_empty() {
                assert!(set_server(&state, bad).is_err(), "{bad}");
            }
        }
        set_server(&state, "registry.example.com:5000").unwrap();
        assert_eq!(configured(&state).unwrap().as_deref(), Some("registry.example.com:5000"));
        set_server(&state, "").unwrap();
        assert_eq!(configured(&state).unwrap(), None);

        use std::os::unix::fs::PermissionsExt;
        let reg = prepare_local(&local_dir(dir.path()), "10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(reg.server, "10.1.2.3:5000");
        assert_eq!(reg.reference("shop", 3), "10.1.2.3:5000/slipway/shop:v3");
        let htpasswd = std::fs::read_to_string(local_dir(dir.path()).join("htpasswd")).unwrap();
        let (user, hash) = htpasswd.trim().split_once(':').unwrap();
        assert_eq!(user, "slipway");
        assert!(bcrypt::verify(reg.password.as_ref().unwrap(), hash).unwrap());
        let mode = std::fs::metadata(local_dir(dir.path()).join("key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
        // The same address keeps the same files; another makes new ones.
        let again = prepare_local(&local_dir(dir.path()), "10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(again.password, reg.password);
        let moved = prepare_local(&local_dir(dir.path()), "10.1.2.4".parse().unwrap()).unwrap();
        assert_ne!(moved.password, reg.password);
        assert_eq!(local(dir.path()).unwrap().server, "10.1.2.4:5000");
    }
}
