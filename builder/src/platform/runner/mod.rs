//! The runner: apps' process types as containers, and every change to them without downtime.
//!
//! A rollout (deploy, config change, restart, rollback) starts the release's containers beside
//! the running ones, under temporary names; checks them (`checks.rs`); points the router at the
//! new web containers (graceful nginx reload); marks the release current; and only then stops
//! the old containers (SIGTERM, SIGKILL after the stop timeout) and gives the new ones their
//! canonical names `APP.TYPE.N`. When anything fails before the switch, the new containers are
//! removed and the old release keeps serving. A crash at any point leaves the old release
//! serving: the next rollout removes what the crashed one left behind.
//!
//! Config reaches processes as ENV_PATH files mounted read-only (`/start` loads them), so values
//! never appear in a command line, `ps` or `docker inspect`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;

use crate::containers::docker::{Engine, LogLimits, LABEL_APP, LABEL_ROLE};
use crate::containers::loader;
use crate::containers::process::{self, ProcessSpec};
use crate::output;
use crate::platform::app_json::AppJson;
use crate::platform::lock::AppLock;
use crate::platform::router::Router;
use crate::platform::scheduler::{self, Scheduler};
use crate::platform::settings::{AppSettings, ChecksMode, Global, GlobalSettings};
use crate::platform::state::{Release, ReleaseStatus, State};

mod cleanup;

pub const LABEL_RELEASE: &str = "io.slipway.release";
pub const LABEL_TYPE: &str = "io.slipway.process-type";
pub const LABEL_INDEX: &str = "io.slipway.index";

pub struct Runner {
    pub engine: Engine,
    pub state: State,
    pub router: Router,
    /// Who asks (recorded with the releases it makes).
    pub actor: String,
}

#[derive(Debug, Clone)]
pub struct Running {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub index: u32,
    pub release: i64,
    pub port: Option<u16>,
    /// Whether its process runs now (not exited, not restarting).
    pub running: bool,
}

fn label(c: &ContainerSummary, key: &str) -> Option<String> {
    c.labels.as_ref()?.get(key).cloned()
}

impl Runner {
    pub async fn open(data_dir: &Path, listen: Option<String>) -> Result<Runner> {
        let state = State::open(data_dir)?;
        if let Some(l) = &listen {
            GlobalSettings::set(&state, Global::RouterListen, l)?;
        }
        let settings = GlobalSettings::load(&state)?;
        let router = Router::new(data_dir, &settings.router_listen).with_https(&settings.https_listen);
        let engine = Engine::connect().await?;
        Ok(Runner { engine, router, state, actor: crate::sys::user_name() + " (cli)" })
    }

    /// Where the app's processes run now (see [`scheduler::running_on`]).
    pub async fn running_on(&self, app: &str) -> Result<Scheduler> {
        scheduler::running_on(&self.engine, &self.state, app).await
    }

    /// The app's lock (see `lock.rs`): one change of an app at a time.
    /// The app's lock, once a running deploy of it has finished (up to the `lock-wait` setting).
    pub fn lock(&self, app: &str) -> Result<AppLock> {
        let wait = GlobalSettings::load(&self.state)?.lock_wait;
        crate::platform::lock::acquire_waiting(&self.state.data_dir, app, wait)
    }

    pub fn global_domain(&self) -> Result<String> {
        Ok(GlobalSettings::load(&self.state)?.domain)
    }

    pub fn hosts(&self, app: &str) -> Result<Vec<String>> {
        let mut hosts = vec![format!("{app}.{}", self.global_domain()?)];
        hosts.extend(self.state.domains(app)?);
        Ok(hosts)
    }

    /// Points the router at these web container ports for the app's hosts, on the router's
    /// port and the app's other HTTP ports (`ports:add`).
    pub async fn route(&self, app: &str, ports: &[u16]) -> Result<()> {
        let loopback: Vec<SocketAddr> = ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect();
        self.route_to(app, &loopback).await
    }

    /// Points the router at these upstreams (swarm tasks' node addresses and ports).
    pub async fn route_to(&self, app: &str, upstreams: &[SocketAddr]) -> Result<()> {
        let listens = crate::platform::ports::extra_http_ports(&self.state, app, &self.router.listen)?;
        self.router.set_app(app, &self.hosts(app)?, upstreams, &listens).await
    }

    /// Rewrites an app's router entry for its current web containers (after a change of its
    /// domains or certificate).
    pub async fn refresh_routes(&self, app: &str) -> Result<()> {
        if self.running_on(app).await? == Scheduler::Swarm {
            let services = scheduler::swarm::services_of(&self.engine, app).await?;
            let tasks = scheduler::swarm::tasks::tasks_in(&self.engine, &services).await?;
            scheduler::swarm::tasks::follow(self, app, &services, &tasks, true).await?;
            return Ok(());
        }
        let ports: Vec<u16> =
            self.containers(app).await?.iter().filter(|c| c.kind == "web").filter_map(|c| c.port).collect();
        if !ports.is_empty() || self.router.has_app(app) {
            self.route(app, &ports).await?;
        }
        Ok(())
    }

    /// The app's process containers (not builds or one-offs), in any state.
    pub async fn containers(&self, app: &str) -> Result<Vec<Running>> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={app}"), format!("{LABEL_ROLE}=process")])]);
        let opts = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list = self.engine.api.list_containers(Some(opts)).await.context("cannot list containers")?;
        let mut out: Vec<Running> = list
            .into_iter()
            .map(|c| Running {
                id: c.id.clone().unwrap_or_default(),
                name: c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                kind: label(&c, LABEL_TYPE).unwrap_or_default(),
                index: label(&c, LABEL_INDEX).and_then(|i| i.parse().ok()).unwrap_or(0),
                release: label(&c, LABEL_RELEASE).and_then(|r| r.parse().ok()).unwrap_or(0),
                port: c.ports.as_ref().and_then(|ps| ps.iter().find_map(|p| p.public_port)),
                running: c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
            })
            .collect();
        out.sort_by(|a, b| (&a.kind, a.index).cmp(&(&b.kind, b.index)));
        Ok(out)
    }

    fn env_dir(&self, app: &str, version: i64) -> PathBuf {
        self.state.data_dir.join("apps").join(app).join("releases").join(format!("v{version}")).join("env")
    }

    /// Writes the release's config as ENV_PATH files, readable by the app user only.
    pub fn write_env_dir(&self, release: &Release) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.env_dir(&release.app, release.version);
        let _ = std::fs::remove_dir_all(&dir);
        crate::engine::envdir::write(&dir, &release.config)?;
        // A Dockerfile image runs as a user of its own: its files are readable by any user in
        // its container (the data dir around them is the git user's alone).
        let mode = if release.build.is_dockerfile() { 0o444 } else { 0o400 };
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
            let _ = std::os::unix::fs::chown(
                &p,
                Some(crate::engine::user::DEFAULT_ID),
                Some(crate::engine::user::DEFAULT_ID),
            );
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(dir)
    }

    /// The container of `kind` (index `index`) of a release, or a one-off running `one_off`.
    pub(crate) async fn process_spec(
        &self,
        release: &Release,
        kind: &str,
        index: u32,
        name: &str,
        env_dir: &Path,
        one_off: Option<&[String]>,
    ) -> Result<ProcessSpec> {
        let app = &release.app;
        let cmd = process::command(&release.build, &release.process_types, kind, one_off)
            .with_context(|| format!("v{} of '{app}'", release.version))?;
        // A Dockerfile app listens where its image EXPOSEs; PORT says so either way.
        let port = match crate::platform::ports::container_port(&self.state, app)? {
            Some(port) => port,
            None => process::container_port(&self.engine, &release.build, &release.image).await?,
        };
        let env = vec![format!("PORT={port}"), format!("DYNO={kind}.{index}")];
        let settings = AppSettings::load(&self.state, app)?;
        let limits = settings.limits_for(kind);
        let global = GlobalSettings::load(&self.state)?;
        let mut labels = ProcessSpec::base_labels(if one_off.is_some() { "run" } else { "process" }, app);
        labels.extend([
            (LABEL_RELEASE.to_string(), release.version.to_string()),
            (LABEL_TYPE.to_string(), kind.to_string()),
            (LABEL_INDEX.to_string(), index.to_string()),
        ]);
        let web = kind == "web" && one_off.is_none();
        let mut spec = ProcessSpec {
            name: name.to_string(),
            image: release.image.clone(),
            cmd,
            entrypoint: None,
            env,
            env_dir: Some(env_dir.to_path_buf()),
            publish: web.then_some((port, 0)),
            binds: settings.mounts,
            labels,
            memory: limits.memory.or(Some(global.memory_limit)),
            cpus: limits.cpus,
            pids: Some(global.pids_limit),
            restart: one_off.is_none(),
            logs: LogLimits { max_size: global.log_max_size, max_files: global.log_max_files },
            networks: crate::platform::services::linked_to(&self.state, app)?.iter().map(|s| s.network()).collect(),
        };
        if release.build.is_dockerfile() {
            // No /start in a Dockerfile image to read ENV_PATH: the engine, mounted, loads it.
            // The engine is the same in every stack's run image: the default one's.
            let run_image = crate::containers::stack::RUN_IMAGE;
            let engine_dir = self.state.data_dir.join("engine");
            let binary = loader::engine_binary(&self.engine, run_image, &engine_dir).await?;
            loader::wrap(&self.engine, &mut spec, &binary).await?;
        }
        Ok(spec)
    }

    async fn start_process(
        &self,
        release: &Release,
        kind: &str,
        index: u32,
        name: &str,
        env_dir: &Path,
    ) -> Result<Running> {
        let spec = self.process_spec(release, kind, index, name, env_dir, None).await?;
        // A container of that name left by a crashed rollout goes first.
        self.engine.remove_container(name).await;
        let id = spec.create(&self.engine).await?;
        self.engine.api.start_container(&id, None).await.with_context(|| format!("cannot start {name}"))?;
        let port = match spec.publish {
            Some((inside, _)) => self.engine.published_port(&id, inside).await,
            None => None,
        };
        Ok(Running {
            id,
            name: name.to_string(),
            kind: kind.into(),
            index,
            release: release.version,
            port,
            running: true,
        })
    }

    /// Up, not restarting, and never restarted (a crash loop shows in the restart count).
    async fn still_running(&self, c: &Running) -> bool {
        let Ok(info) = self.engine.api.inspect_container(&c.id, None).await else { return false };
        let up = info.state.is_some_and(|s| s.running == Some(true) && s.restarting != Some(true));
        up && info.restart_count.unwrap_or(0) == 0
    }

    /// Waits until the container's process has exited once (stopped, or restarted by its
    /// policy); its exit status, when the engine still shows it.
    async fn first_exit(&self, c: &Running) -> Option<i64> {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(info) = self.engine.api.inspect_container(&c.id, None).await else { return None };
            let state = info.state.unwrap_or_default();
            if state.running != Some(true) || state.restarting == Some(true) {
                return state.exit_code;
            }
            if info.restart_count.unwrap_or(0) > 0 {
                return None;
            }
        }
    }

    /// Checks one new container: app.json checks for its type, else the defaults. Returns how
    /// long the app took to open its port (its own boot), when it has one.
    async fn check(&self, release: &Release, c: &Running) -> Result<Option<Duration>> {
        let mode = AppSettings::load(&self.state, &release.app)?.checks;
        if mode == ChecksMode::Disabled {
            return Ok(None);
        }
        let skip = mode == ChecksMode::Skipped;
        let checks = crate::platform::checks::parse(release.app_json.as_deref())?;
        let declared = checks.get(&c.kind).cloned().unwrap_or_default();
        let mut boot = None;
        if let Some(port) = c.port {
            // A process that exits (and is restarted) fails the check at once, not after 60 s.
            tokio::select! {
                answered = crate::net::wait_for_http(port, Duration::from_secs(60)) => {
                    boot = Some(answered.map_err(|e| anyhow!("{}: {e}", c.name))?);
                }
                code = self.first_exit(c) => {
                    let how = code.map(|c| format!("exited with status {c}")).unwrap_or_else(|| "exited and was restarted".into());
                    bail!("{}: its process {how} before it answered HTTP on its port", c.name);
                }
            }
            if !skip {
                for check in declared.iter().filter(|k| k.command.is_none()) {
                    crate::platform::checks::http(check, port).await?;
                }
            }
        }
        // Settle: the process must still be up a moment later (a crash loop shows by then).
        tokio::time::sleep(Duration::from_millis(if c.port.is_some() { 300 } else { 1000 })).await;
        if !self.still_running(c).await {
            // A web process that exited before its port could be read gets here too.
            let info = self.engine.api.inspect_container(&c.id, None).await.ok();
            let state = info.as_ref().and_then(|i| i.state.clone()).unwrap_or_default();
            let how = match state.exit_code {
                Some(code) if state.running != Some(true) => format!("exited with status {code}"),
                _ => "exited and was restarted".to_string(),
            };
            bail!("{}: its process {how} right after it started", c.name);
        }
        Ok(boot)
    }

    /// Rolls a recorded release out with zero downtime (see the module docs), on the app's
    /// scheduler.
    pub async fn rollout(&mut self, app: &str, version: i64) -> Result<()> {
        if scheduler::selected(&self.state, app)? == Scheduler::Swarm {
            return scheduler::swarm::rollout::rollout(self, app, version).await;
        }
        let release =
            self.state.release(app, version)?.ok_or_else(|| anyhow!("app '{app}' has no release v{version}"))?;
        let before = self.containers(app).await?;
        let current = self.state.current_release(app)?.map(|r| r.version);
        // What a crashed rollout left behind (containers of releases that never became current).
        for c in before.iter().filter(|c| Some(c.release) != current) {
            self.engine.remove_container(&c.id).await;
        }
        let old: Vec<Running> = before.into_iter().filter(|c| Some(c.release) == current).collect();
        let (env_dir, manifest) = self.before_start(&release).await?;
        let has_web = release.has_web();
        let formation = self.state.formation(app)?;
        let mut started: Vec<Running> = Vec::new();
        let rollout_started = std::time::Instant::now();
        let mut boot = Duration::ZERO;
        let result: Result<()> = async {
            for (kind, &count) in &formation {
                if !release.runs(kind) {
                    continue;
                }
                for index in 1..=count.max(0) as u32 {
                    let name = format!("{app}.{kind}.{index}.v{version}");
                    started.push(self.start_process(&release, kind, index, &name, &env_dir).await?);
                }
            }
            for c in &started {
                let checked = self.check(&release, c).await;
                if let Ok(Some(b)) = &checked {
                    boot = boot.max(*b);
                }
                if let Err(e) = checked {
                    let logs = self.engine.log_tail(&c.id, 20).await;
                    bail!(
                        "{e}\n{}",
                        if logs.trim().is_empty() {
                            "(no output)".to_string()
                        } else {
                            format!("last log lines of {}:\n{}", c.name, logs.trim_end())
                        }
                    );
                }
            }
            let ports: Vec<u16> = started.iter().filter(|c| c.kind == "web").filter_map(|c| c.port).collect();
            if !has_web && self.router.has_app(app) {
                self.router.remove_app(app).await?;
            } else if has_web && (formation.get("web").copied().unwrap_or(0) > 0 || self.router.has_app(app)) {
                self.route(app, &ports).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            for c in &started {
                self.engine.remove_container(&c.id).await;
            }
            self.state.set_release_status(app, version, ReleaseStatus::Failed)?;
            let _ = self.hygiene(app).await; // a failed release's image is of no use
            return Err(e.context(format!(
                "v{version} failed its checks and was not deployed; the running release keeps serving"
            )));
        }
        self.state.set_release_status(app, version, ReleaseStatus::Succeeded)?;
        AppSettings::set_stopped(&self.state, app, false)?;
        let took = rollout_started.elapsed();
        let state_of = if has_web { "is serving" } else { "runs (no web process: nothing is routed to it)" };
        output::header(format!(
            "Release v{version} of {app} {state_of} ({} ms after its containers started: app boot {} ms, slipway {} ms)",
            took.as_millis(),
            boot.as_millis(),
            took.saturating_sub(boot).as_millis()
        ));

        self.retire(&old).await;
        for c in &started {
            let canonical = format!("{app}.{}.{}", c.kind, c.index);
            let opts = bollard::query_parameters::RenameContainerOptionsBuilder::default().name(&canonical).build();
            let _ = self.engine.api.rename_container(&c.id, opts).await;
        }
        // An app that ran on swarm before: its services go once this host serves it.
        if let Err(e) = scheduler::swarm::remove_app(self, app, false).await {
            output::warn(format!("{e:#}: its swarm services are left as they are"));
        }
        self.hygiene(app).await?;
        self.postdeploy(&release, &env_dir, &manifest).await
    }

    /// What every rollout does before the new processes start: the config as ENV_PATH files;
    /// Procfile's `release`, then app.json's `scripts.dokku.predeploy`, each in a one-off of
    /// the new release (a failure stops the rollout here, the release marked failed); and a
    /// release without a web process gets web=0 in its formation (it is not routed).
    pub(crate) async fn before_start(&mut self, release: &Release) -> Result<(PathBuf, AppJson)> {
        let (app, version) = (&release.app, release.version);
        let env_dir = self.write_env_dir(release)?;
        let manifest = AppJson::parse(release.app_json.as_deref())?;
        let before_start = [
            ("the release command", release.process_types.get("release").cloned()),
            ("the predeploy script (app.json)", manifest.scripts.dokku.predeploy.clone()),
        ];
        for (what, script) in before_start {
            let Some(script) = script else { continue };
            let code = self.run_script(release, &env_dir, what, &script).await?;
            if code != 0 {
                self.state.set_release_status(app, version, ReleaseStatus::Failed)?;
                let _ = self.hygiene(app).await;
                bail!("{what} failed (exit status {code}); v{version} was not deployed, the running release keeps serving");
            }
        }
        if !release.has_web() && self.state.formation(app)?.get("web").copied().unwrap_or(0) > 0 {
            let tx = self.state.transaction()?;
            State::set_formation(&tx, app, &BTreeMap::from([("web".to_string(), 0)]))?;
            tx.commit()?;
        }
        Ok((env_dir, manifest))
    }

    /// app.json's `scripts.dokku.postdeploy`, once the release serves.
    pub(crate) async fn postdeploy(&self, release: &Release, env_dir: &Path, manifest: &AppJson) -> Result<()> {
        if let Some(script) = &manifest.scripts.dokku.postdeploy {
            let code = self.run_script(release, env_dir, "the postdeploy script (app.json)", script).await?;
            if code != 0 {
                bail!("the postdeploy script (app.json) failed (exit status {code}); v{} is serving", release.version);
            }
        }
        Ok(())
    }

    /// Runs a shell script in a one-off container of `release`, its output shown; its exit code.
    async fn run_script(&self, release: &Release, env_dir: &Path, what: &str, script: &str) -> Result<i64> {
        output::header(format!("Running {what}: {script}"));
        self.one_off(release, release.shell_command(script), env_dir, show_output).await
    }

    /// Runs a command in a one-off container of `release`, its output to `on_output` (bytes,
    /// whether from stderr; [`show_output`] prints it); returns its exit code.
    pub async fn one_off(
        &self,
        release: &Release,
        cmd: Vec<String>,
        env_dir: &Path,
        on_output: impl FnMut(&[u8], bool),
    ) -> Result<i64> {
        if self.running_on(&release.app).await? == Scheduler::Swarm {
            return scheduler::swarm::job::run(self, release, &cmd, on_output).await;
        }
        let name = format!("{}.run.{}", release.app, std::process::id());
        let id = self.process_spec(release, "run", 1, &name, env_dir, Some(&cmd)).await?.create(&self.engine).await?;
        // Stopped (SIGTERM, SIGHUP: the daemon stops, an SSH client goes), the container goes
        // too: a cron task's run never outlives its lock.
        let result = tokio::select! {
            result = self.engine.start_and_follow(&id, on_output) => result,
            signal = stop_signal() => Err(anyhow!("stopped by {signal}: the one-off container was removed")),
        };
        self.engine.remove_container(&id).await;
        Ok(result?.0)
    }

    /// `ps:scale`: starts or stops containers of the current release to match the counts.
    /// Brings the app back as it was (after a reboot, or Docker's restart): its current
    /// release's containers that are not running are started again, missing ones made, and the
    /// router pointed at their ports. Nothing is rebuilt or released; an app `ps:stop` stopped
    /// stays stopped. Returns what it did, for the log.
    pub async fn restore(&mut self, app: &str) -> Result<String> {
        if AppSettings::is_stopped(&self.state, app)? {
            return Ok("stopped (ps:stop): left stopped".into());
        }
        let Some(release) = self.state.current_release(app)? else { return Ok("not deployed yet".into()) };
        if self.running_on(app).await? == Scheduler::Swarm {
            return scheduler::swarm::rollout::restore(self, app, &release).await;
        }
        let before: Vec<Running> =
            self.containers(app).await?.into_iter().filter(|c| c.release == release.version).collect();
        let mut started = 0;
        for c in before.iter().filter(|c| !c.running) {
            self.engine.api.start_container(&c.id, None).await.with_context(|| format!("cannot start {}", c.name))?;
            started += 1;
        }
        let formation = self.state.formation(app)?;
        self.scale(app, &formation).await?;
        let after: Vec<Running> =
            self.containers(app).await?.into_iter().filter(|c| c.release == release.version).collect();
        let made = after.len().saturating_sub(before.len());
        // Started again, a container may have a new host port.
        let ports: Vec<u16> = after.iter().filter(|c| c.kind == "web" && c.running).filter_map(|c| c.port).collect();
        if release.has_web() && !ports.is_empty() {
            self.route(app, &ports).await?;
        }
        Ok(match (started, made) {
            (0, 0) => format!("v{} runs as it should", release.version),
            _ => format!("v{}: {started} container(s) started again, {made} made", release.version),
        })
    }

    pub async fn scale(&mut self, app: &str, counts: &BTreeMap<String, i64>) -> Result<()> {
        let release = self.state.current_release(app)?;
        {
            let tx = self.state.transaction()?;
            State::set_formation(&tx, app, counts)?;
            tx.commit()?;
        }
        let Some(release) = release else {
            output::header(format!("Scaled {app}; the counts apply from its first deploy"));
            return Ok(());
        };
        for kind in counts.keys() {
            if !release.process_types.contains_key(kind) && kind != "web" {
                bail!(
                    "the current release of '{app}' has no `{kind}` process type (it has: {})",
                    release.process_types.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
        }
        if self.running_on(app).await? == Scheduler::Swarm {
            scheduler::swarm::rollout::scale(self, app, &release, counts).await?;
            output::header(format!(
                "Scaled {app} on swarm: {}",
                counts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            ));
            return Ok(());
        }
        let env_dir = self.write_env_dir(&release)?;
        let existing = self.containers(app).await?;
        for (kind, &want) in counts {
            let mine: Vec<&Running> =
                existing.iter().filter(|c| &c.kind == kind && c.release == release.version).collect();
            let have = mine.len() as i64;
            if want > have {
                let mut new = Vec::new();
                for index in (have as u32 + 1)..=(want as u32) {
                    let c =
                        self.start_process(&release, kind, index, &format!("{app}.{kind}.{index}"), &env_dir).await?;
                    if let Err(e) = self.check(&release, &c).await {
                        self.engine.remove_container(&c.id).await;
                        for n in &new {
                            let n: &Running = n;
                            self.engine.remove_container(&n.id).await;
                        }
                        return Err(e);
                    }
                    new.push(c);
                }
                if kind == "web" {
                    let mut ports: Vec<u16> = mine.iter().filter_map(|c| c.port).collect();
                    ports.extend(new.iter().filter_map(|c| c.port));
                    self.route(app, &ports).await?;
                }
            } else if want < have {
                let (keep, drop): (Vec<&Running>, Vec<&Running>) =
                    mine.into_iter().partition(|c| (c.index as i64) <= want);
                if kind == "web" {
                    let ports: Vec<u16> = keep.iter().filter_map(|c| c.port).collect();
                    self.route(app, &ports).await?;
                }
                let drop: Vec<Running> = drop.into_iter().cloned().collect();
                self.retire(&drop).await;
            }
        }
        output::header(format!(
            "Scaled {app}: {}",
            counts.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        ));
        Ok(())
    }

    /// A new release from the current one with the app's present config, rolled out. With
    /// `restart` false nothing happens now (Dokku's `--no-restart`): the config is stored and
    /// the next restart or deploy releases it, so the current release always matches what
    /// runs. Returns the new version.
    pub async fn new_config_release(&mut self, app: &str, description: &str, restart: bool) -> Result<Option<i64>> {
        if !restart {
            output::header(format!("Not restarting {app}: the change applies from its next restart or deploy"));
            return Ok(None);
        }
        let Some(current) = self.state.current_release(app)? else { return Ok(None) };
        let release = Release {
            config: self.state.effective_config(app)?,
            description: description.into(),
            pusher: Some(self.actor.clone()),
            ..current
        };
        let version = self.state.add_release(&release)?;
        let tag = format!("{}:v{version}", crate::containers::image::repository(app));
        let (repo, t) = tag.split_once(':').expect("tag has a colon");
        self.engine.tag(&release.image, repo, t).await?;
        self.state.set_release_image(app, version, &tag)?;
        self.rollout(app, version).await?;
        Ok(Some(version))
    }
}

/// The first of SIGTERM, SIGHUP and SIGINT this process gets, by name.
pub(crate) async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::hangup()), signal(SignalKind::interrupt()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
        _ = int.recv() => "SIGINT",
    }
}

/// A one-off's output as it comes, to this process's stdout and stderr.
pub fn show_output(bytes: &[u8], is_err: bool) {
    use std::io::Write;
    let _ = if is_err { std::io::stderr().write_all(bytes) } else { std::io::stdout().write_all(bytes) };
}
