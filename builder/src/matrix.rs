//! `slipway matrix`: the shared buildpack test matrix (SPEC section 5).
//!
//! For every fixture app (`fixtures/<buildpack>/<app>/`), in the stack images through the Docker
//! path, as a deploy would: detect (the expected buildpack must be picked), build, start `web`
//! with its port published on 127.0.0.1, request the fixture's path and compare the body with
//! the expected text; buildpacks with `bin/test-compile` and `bin/test` also run in test mode.
//! Fixtures run in parallel, each with its own cache volume and container names; everything a
//! run makes carries the label `io.slipway.matrix=RUN` and is removed at the end, Ctrl-C included.
//!
//! A fixture says what to expect in an optional `test.toml` ([`Spec`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::container::{Cache, ContainerBuild};
use crate::defaults::DefaultBuildpack;
use crate::docker::{self, Engine, LABEL_APP, LABEL_MANAGED, LABEL_ROLE};
use crate::output;

/// The label on every container, image and volume a matrix run makes.
pub const LABEL_MATRIX: &str = "io.slipway.matrix";

/// The fixtures that name their buildpacks in `.buildpacks` (several buildpacks, one app).
pub const MULTI_GROUP: &str = "multi";

/// A fixture's `test.toml`; every key is optional.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    /// The path requested once `web` is up.
    pub path: String,
    /// The expected body (compared without surrounding whitespace) [default: the fixture's
    /// directory name].
    pub body: Option<String>,
    /// Config vars, given to the build (ENV_DIR) and to `web`.
    pub env: BTreeMap<String, String>,
    /// The buildpacks that must be picked, in order [default: the fixture's group].
    pub buildpacks: Option<Vec<String>>,
    /// The step this fixture must fail at (a buildpack's own error handling under test).
    pub expect_failure: Option<StepName>,
    /// Text the failure's message must contain, with `expect_failure`.
    pub error: Option<String>,
    /// Run the buildpack's test mode when it has one.
    pub test: bool,
    /// Seconds `web` has to answer.
    pub boot_timeout: u64,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            path: "/".into(),
            body: None,
            env: BTreeMap::new(),
            buildpacks: None,
            expect_failure: None,
            error: None,
            test: true,
            boot_timeout: 60,
        }
    }
}

/// The steps of a fixture's run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepName {
    Detect,
    Build,
    Start,
    Request,
    Test,
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            StepName::Detect => "detect",
            StepName::Build => "build",
            StepName::Start => "start",
            StepName::Request => "request",
            StepName::Test => "test",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone)]
pub struct Fixture {
    /// `group/name`, e.g. `python/flask`.
    pub id: String,
    /// The buildpack it belongs to (its parent directory's name).
    pub group: String,
    pub dir: PathBuf,
    pub spec: Spec,
}

impl Fixture {
    pub fn load(dir: &Path) -> Result<Fixture> {
        let dir = dir.canonicalize().with_context(|| format!("fixture directory {} does not exist", dir.display()))?;
        if !dir.is_dir() {
            bail!("fixture {} is not a directory", dir.display());
        }
        let name = file_name(&dir);
        let group = dir.parent().map(file_name).unwrap_or_default();
        let spec_path = dir.join("test.toml");
        let spec = match std::fs::read_to_string(&spec_path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("{} is not a valid test.toml", spec_path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Spec::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", spec_path.display())),
        };
        if spec.error.is_some() && spec.expect_failure.is_none() {
            bail!("{}: `error` needs `expect_failure` (the step that must fail)", spec_path.display());
        }
        Ok(Fixture { id: format!("{group}/{name}"), group, dir, spec })
    }

    pub fn expected_body(&self) -> String {
        self.spec.body.clone().unwrap_or_else(|| file_name(&self.dir))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// "Node.js" and "nodejs" are the same buildpack: compare names without case or punctuation.
fn same_buildpack(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The fixtures of each buildpack under `root` (`root/<name>/<app>/`), in `buildpacks` order,
/// then the multi-buildpack group. `only` keeps the named groups.
pub fn discover(root: &Path, buildpacks: &[DefaultBuildpack], only: &[String]) -> Result<(Vec<Fixture>, Vec<String>)> {
    if !root.is_dir() {
        bail!(
            "no fixtures directory at {}: run from a slipway checkout, pass --fixtures DIR, or name fixture \
             directories on the command line",
            root.display()
        );
    }
    for name in only {
        if !buildpacks.iter().any(|b| &b.name == name) && name != MULTI_GROUP {
            let known: Vec<&str> = buildpacks.iter().map(|b| b.name.as_str()).collect();
            bail!("unknown buildpack {name:?} (the defaults are: {}, and {MULTI_GROUP})", known.join(", "));
        }
    }
    let mut groups: Vec<String> = buildpacks.iter().map(|b| b.name.clone()).collect();
    groups.push(MULTI_GROUP.into());
    let mut fixtures = Vec::new();
    let mut warnings = Vec::new();
    for group in groups.iter().filter(|g| only.is_empty() || only.contains(g)) {
        let dir = root.join(group);
        let mut apps: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
            Err(_) => {
                if group != MULTI_GROUP {
                    warnings.push(format!("buildpack {group} has no fixtures ({} is missing)", dir.display()));
                }
                continue;
            }
        };
        apps.sort();
        for app in apps {
            fixtures.push(Fixture::load(&app)?);
        }
    }
    Ok((fixtures, warnings))
}

/// How a fixture came out.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub fixture: String,
    pub group: String,
    /// The buildpacks that detected the app, as they named themselves.
    pub detected: Vec<String>,
    pub build_ms: Option<u64>,
    pub slug_size: Option<u64>,
    pub start_ms: Option<u64>,
    pub test_ms: Option<u64>,
    /// The step that failed, its message and the last lines of its log.
    pub failure: Option<Failure>,
    /// `passed`, `failed as expected` or `failed`.
    pub result: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub step: StepName,
    pub message: String,
    pub log_tail: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    ExpectedFailure,
    Failed,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.result != Verdict::Failed
    }

    fn result_text(&self) -> String {
        match (&self.result, &self.failure) {
            (Verdict::Passed, _) => "passed".into(),
            (Verdict::ExpectedFailure, Some(f)) => format!("passed (failed at {} as expected)", f.step),
            (Verdict::Failed, Some(f)) => format!("FAILED at {}", f.step),
            (_, None) => "FAILED".into(),
        }
    }
}

/// Everything a matrix run needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    pub fixtures: Vec<Fixture>,
    pub defaults: Vec<DefaultBuildpack>,
    /// A third-party buildpack (already fetched) to run instead of detection: (name, root).
    pub external: Option<(String, PathBuf)>,
    pub jobs: usize,
    pub build_image: String,
    pub run_image: String,
    pub ca_bundle: Option<PathBuf>,
    pub timeout: Duration,
}

/// A fixture's progress, shown live on a terminal.
trait Reporter: Send + Sync {
    fn step(&self, index: usize, what: &str);
    fn finished(&self, index: usize, outcome: &Outcome);
}

struct PlainReporter;

impl Reporter for PlainReporter {
    fn step(&self, _index: usize, _what: &str) {}
    fn finished(&self, _index: usize, o: &Outcome) {
        println!("{:<8} {:<34} {}", if o.ok() { "ok" } else { "FAILED" }, o.fixture, summary_line(o));
    }
}

struct LiveReporter {
    bars: Vec<indicatif::ProgressBar>,
}

impl LiveReporter {
    fn new(fixtures: &[Fixture]) -> LiveReporter {
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:<34} {msg} {elapsed:.dim}")
            .expect("valid template");
        let bars = fixtures
            .iter()
            .map(|f| {
                let bar = multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(f.id.clone());
                bar.set_message("waiting");
                bar
            })
            .collect();
        LiveReporter { bars }
    }
}

impl Reporter for LiveReporter {
    fn step(&self, index: usize, what: &str) {
        let bar = &self.bars[index];
        bar.reset_elapsed();
        bar.enable_steady_tick(Duration::from_millis(150));
        bar.set_message(what.to_string());
    }
    fn finished(&self, index: usize, o: &Outcome) {
        let mark = if o.ok() { "✓" } else { "✗" };
        let bar = &self.bars[index];
        bar.set_style(indicatif::ProgressStyle::with_template("  {prefix:<34} {msg}").expect("valid template"));
        bar.finish_with_message(format!("{mark} {}", summary_line(o)));
    }
}

fn summary_line(o: &Outcome) -> String {
    let mut parts = vec![o.result_text()];
    if let Some(ms) = o.build_ms {
        parts.push(format!("build {}", output::duration(Duration::from_millis(ms))));
    }
    if let Some(s) = o.slug_size {
        parts.push(format!("slug {}", output::size(s)));
    }
    if let Some(ms) = o.start_ms {
        parts.push(format!("start {}", output::duration(Duration::from_millis(ms))));
    }
    if let Some(ms) = o.test_ms {
        parts.push(format!("tests {}", output::duration(Duration::from_millis(ms))));
    }
    if let Some(f) = o.failure.as_ref().filter(|_| !o.ok()) {
        parts.push(f.message.clone());
    }
    parts.join(", ")
}

/// Runs every fixture; returns the outcomes in fixture order. Ctrl-C (or SIGTERM) stops the
/// run, removes what it made and returns an error.
pub async fn run(engine: Arc<Engine>, opts: Options) -> Result<Vec<Outcome>> {
    for image in [&opts.build_image, &opts.run_image] {
        if !engine.image_exists(image).await? {
            bail!("the stack image {image} is missing: make it with `slipway stack build` (or `make stack-image`)");
        }
    }
    let run_id = format!("{:08x}", (crate::unique_id() & 0xffff_ffff) as u32);
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("CI").is_none();
    let reporter: Arc<dyn Reporter> =
        if interactive { Arc::new(LiveReporter::new(&opts.fixtures)) } else { Arc::new(PlainReporter) };
    output::set_quiet();
    let opts = Arc::new(opts);
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..opts.fixtures.len() {
        let (engine, opts, slots, reporter, run_id) =
            (engine.clone(), opts.clone(), slots.clone(), reporter.clone(), run_id.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("the semaphore is never closed");
            let job = Job { engine: &engine, opts: &opts, fixture: &opts.fixtures[index], index, run_id: &run_id };
            let outcome = job.run(reporter.as_ref()).await;
            reporter.finished(index, &outcome);
            (index, outcome)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; opts.fixtures.len()];
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let interrupted = loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok((i, o))) => outcomes[i] = Some(o),
                Some(Err(e)) => bail!("a matrix job failed: {e}"),
                None => break false,
            },
            _ = tokio::signal::ctrl_c() => break true,
            _ = term.recv() => break true,
        }
    };
    if interrupted {
        tasks.shutdown().await;
        let mut removed = cleanup(&engine, &run_id).await;
        // A request the engine had already taken when its task stopped may still land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        removed.add(cleanup(&engine, &run_id).await);
        return Err(Interrupted { removed }.into());
    }
    cleanup(&engine, &run_id).await;
    Ok(outcomes.into_iter().map(|o| o.expect("every job reported")).collect())
}

/// A run stopped by Ctrl-C or SIGTERM, after removing what it made.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: the matrix run stopped and removed what it had made ({removed})")]
pub struct Interrupted {
    pub removed: Removed,
}

/// What a cleanup removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Removed {
    pub containers: usize,
    pub images: usize,
    pub volumes: usize,
}

impl Removed {
    fn add(&mut self, other: Removed) {
        self.containers += other.containers;
        self.images += other.images;
        self.volumes += other.volumes;
    }
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} containers, {} images, {} volumes", self.containers, self.images, self.volumes)
    }
}

/// Removes every container, image and volume labelled with this run.
pub async fn cleanup(engine: &Engine, run_id: &str) -> Removed {
    use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder};
    let label = format!("{LABEL_MATRIX}={run_id}");
    let filter = std::collections::HashMap::from([("label".to_string(), vec![label.clone()])]);
    let mut removed = Removed::default();
    let opts = ListContainersOptionsBuilder::default().all(true).filters(&filter).build();
    for c in engine.api.list_containers(Some(opts)).await.unwrap_or_default() {
        if let Some(id) = c.id {
            engine.remove_container(&id).await;
            removed.containers += 1;
        }
    }
    // The containers are gone, so no image is still in use.
    for (id, _, _) in engine.images_with_label(&label).await.unwrap_or_default() {
        if engine.remove_image_quietly(&id).await {
            removed.images += 1;
        }
    }
    let opts = ListVolumesOptionsBuilder::default().filters(&filter).build();
    let volumes = engine.api.list_volumes(Some(opts)).await.ok().and_then(|v| v.volumes).unwrap_or_default();
    for v in volumes {
        if engine.remove_volume(&v.name).await {
            removed.volumes += 1;
        }
    }
    removed
}

struct Job<'a> {
    engine: &'a Engine,
    opts: &'a Options,
    fixture: &'a Fixture,
    index: usize,
    run_id: &'a str,
}

/// A step's failure on the way through a fixture.
struct StepError {
    step: StepName,
    message: String,
    log: String,
}

fn tail(log: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

/// The buildpacks a build log says detected the app (`-----> NAME app detected`).
fn detected_in(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.trim_end().strip_prefix("-----> ")?.strip_suffix(" app detected").map(str::to_string))
        .collect()
}

impl Job<'_> {
    fn labels(&self) -> Vec<(String, String)> {
        vec![(LABEL_MATRIX.to_string(), self.run_id.to_string())]
    }

    /// An app name of our own for this fixture: `matrix-RUN-N`.
    fn app(&self) -> String {
        format!("matrix-{}-{}", self.run_id, self.index)
    }

    async fn run(&self, reporter: &dyn Reporter) -> Outcome {
        let mut outcome = Outcome {
            fixture: self.fixture.id.clone(),
            group: self.fixture.group.clone(),
            detected: Vec::new(),
            build_ms: None,
            slug_size: None,
            start_ms: None,
            test_ms: None,
            failure: None,
            result: Verdict::Passed,
        };
        let work = match tempfile::Builder::new().prefix("slipway-matrix-").tempdir() {
            Ok(w) => w,
            Err(e) => {
                outcome.failure = Some(Failure { step: StepName::Build, message: e.to_string(), log_tail: vec![] });
                outcome.result = Verdict::Failed;
                return outcome;
            }
        };
        let spec = &self.fixture.spec;
        let mut error_seen = false;
        if let Err(e) = self.steps(reporter, &mut outcome, work.path()).await {
            // The text a fixture expects may be the buildpack's own line in the log.
            error_seen =
                spec.error.as_ref().is_none_or(|x| e.message.contains(x.as_str()) || e.log.contains(x.as_str()));
            outcome.failure = Some(Failure { step: e.step, message: e.message, log_tail: tail(&e.log, 15) });
        }
        outcome.result = match (&mut outcome.failure, spec.expect_failure) {
            (None, None) => Verdict::Passed,
            (Some(f), Some(step)) if f.step == step && error_seen => Verdict::ExpectedFailure,
            (None, Some(step)) => {
                outcome.failure = Some(Failure {
                    step,
                    message: format!("expected to fail at {step}, but every step passed"),
                    log_tail: vec![],
                });
                Verdict::Failed
            }
            (Some(f), Some(step)) => {
                let wanted = spec.error.as_ref().map(|e| format!(" with {e:?}")).unwrap_or_default();
                f.message = format!("expected to fail at {step}{wanted}; failed at {}: {}", f.step, f.message);
                Verdict::Failed
            }
            (Some(_), None) => Verdict::Failed,
        };
        outcome
    }

    async fn steps(&self, reporter: &dyn Reporter, outcome: &mut Outcome, work: &Path) -> Result<(), StepError> {
        let fixture = self.fixture;
        let app = self.app();
        let log = Arc::new(Mutex::new(String::new()));
        let slug = work.join("slug.tgz");
        let build = ContainerBuild {
            buildpacks: self.opts.external.iter().map(|(_, dir)| dir.display().to_string()).collect(),
            config: fixture.spec.env.clone(),
            cache: Cache::Volume,
            image: self.opts.build_image.clone(),
            timeout: self.opts.timeout,
            ca_bundle: self.opts.ca_bundle.clone(),
            defaults: self.opts.defaults.clone(),
            labels: self.labels(),
            capture: Some(log.clone()),
            ..ContainerBuild::new(fixture.dir.clone(), &app, slug.clone())
        };

        // Detect and build: one container, as a deploy runs it.
        reporter.step(self.index, "building");
        let t = Instant::now();
        let built = crate::container::build(self.engine, &build).await;
        let build_log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        outcome.detected = detected_in(&build_log);
        if let Err(e) = built {
            let message = crate::error_chain(e.as_ref());
            let step = if message.starts_with("no buildpack detected") || outcome.detected.is_empty() {
                StepName::Detect
            } else {
                StepName::Build
            };
            return Err(StepError { step, message, log: build_log });
        }
        outcome.build_ms = Some(t.elapsed().as_millis() as u64);
        outcome.slug_size = std::fs::metadata(&slug).ok().map(|m| m.len());
        self.check_detection(&outcome.detected, &build_log)?;

        // Start web from a release image, as the runner would.
        reporter.step(self.index, "starting web");
        let tag = format!("slipway-matrix/{app}:latest");
        let image =
            crate::image::from_slug(self.engine, &slug, &self.opts.run_image, &app, "matrix", &tag, &self.labels())
                .await;
        if let Err(e) = image {
            return Err(StepError { step: StepName::Build, message: crate::error_chain(e.as_ref()), log: build_log });
        }
        outcome.start_ms = Some(self.start_and_request(&app, &tag).await?.as_millis() as u64);

        // Test mode, when the buildpack that built the app has it.
        if fixture.spec.test && self.has_test_mode(&outcome.detected) {
            reporter.step(self.index, "running tests");
            log.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let t = Instant::now();
            let test = ContainerBuild { test: true, output: work.join("unused"), ..build.clone() };
            let tested = crate::container::build(self.engine, &test).await;
            let test_log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Err(e) = tested {
                return Err(StepError { step: StepName::Test, message: crate::error_chain(e.as_ref()), log: test_log });
            }
            outcome.test_ms = Some(t.elapsed().as_millis() as u64);
        }
        Ok(())
    }

    fn check_detection(&self, detected: &[String], log: &str) -> Result<(), StepError> {
        if log.contains("its bin/detect did not match") {
            return Err(StepError {
                step: StepName::Detect,
                message: "the buildpack's bin/detect did not match this app".into(),
                log: log.to_string(),
            });
        }
        let expected = match (&self.fixture.spec.buildpacks, &self.opts.external) {
            (Some(list), _) => list.clone(),
            (None, Some(_)) => return Ok(()),
            // A fixture in a buildpack's directory must be built by that buildpack; others
            // (broken apps, say) by whichever detects them.
            (None, None) if self.opts.defaults.iter().any(|d| d.name == self.fixture.group) => {
                vec![self.fixture.group.clone()]
            }
            (None, None) => return Ok(()),
        };
        let same = expected.len() == detected.len() && expected.iter().zip(detected).all(|(a, b)| same_buildpack(a, b));
        if !same {
            return Err(StepError {
                step: StepName::Detect,
                message: format!(
                    "expected {} to build it, but {} detected it",
                    expected.join(" + "),
                    detected.join(" + ")
                ),
                log: log.to_string(),
            });
        }
        Ok(())
    }

    /// Whether the last buildpack that built the app has `bin/test-compile` and `bin/test`.
    fn has_test_mode(&self, detected: &[String]) -> bool {
        let root = match &self.opts.external {
            Some((_, dir)) => Some(dir.clone()),
            None => detected.last().and_then(|name| {
                self.opts.defaults.iter().find(|d| same_buildpack(&d.name, name)).and_then(|d| match &d.source {
                    crate::source::Source::Local(dir) => Some(dir.clone()),
                    _ => None,
                })
            }),
        };
        root.is_some_and(|r| r.join("bin/test-compile").is_file() && r.join("bin/test").is_file())
    }

    /// Starts `web` with its port on 127.0.0.1, then requests the fixture's path until it
    /// answers; returns the time from start to the first answer.
    async fn start_and_request(&self, app: &str, image: &str) -> Result<Duration, StepError> {
        let spec = &self.fixture.spec;
        let fail = |step, message: String, log: String| StepError { step, message, log };
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend(["PORT=5000".to_string(), "DYNO=web.1".to_string()]);
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["/start".into(), "web".into()]),
            env: Some(env),
            exposed_ports: Some(vec!["5000/tcp".into()]),
            labels: Some(
                [
                    (LABEL_MANAGED.to_string(), "true".to_string()),
                    (LABEL_ROLE.to_string(), "run".to_string()),
                    (LABEL_APP.to_string(), app.to_string()),
                    (LABEL_MATRIX.to_string(), self.run_id.to_string()),
                ]
                .into(),
            ),
            host_config: Some(HostConfig {
                port_bindings: Some(docker::loopback_port(5000, 0)),
                init: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = format!("slipway-matrix-{app}.web");
        let id =
            self.engine.create(&name, body).await.map_err(|e| fail(StepName::Start, e.to_string(), String::new()))?;
        let result = self.request(&id, spec).await;
        self.engine.remove_container(&id).await;
        result
    }

    async fn request(&self, id: &str, spec: &Spec) -> Result<Duration, StepError> {
        let fail = |step, message: String, log: String| StepError { step, message, log };
        let t = Instant::now();
        if let Err(e) = self.engine.api.start_container(id, None).await {
            return Err(fail(StepName::Start, crate::error_chain(&e), String::new()));
        }
        let Some(port) = self.engine.published_port(id, 5000).await else {
            // A web that exits at once has no published port by the time we look.
            let message = match self.exit_code(id).await {
                Some(code) => format!("web exited with status {code} before answering"),
                None => "the container's port was not published".into(),
            };
            return Err(fail(StepName::Start, message, self.logs(id).await));
        };
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| fail(StepName::Request, e.to_string(), String::new()))?;
        let url = format!("http://127.0.0.1:{port}/{}", spec.path.trim_start_matches('/'));
        let deadline = Duration::from_secs(spec.boot_timeout);
        loop {
            if let Ok(response) = client.get(&url).send().await {
                let took = t.elapsed();
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let expected = self.fixture.expected_body();
                if !status.is_success() {
                    let message = format!("GET {} answered {status}", spec.path);
                    return Err(fail(StepName::Request, message, self.logs(id).await));
                }
                if text.trim() != expected.trim() {
                    let message =
                        format!("GET {} answered {:?}, expected {:?}", spec.path, clip(text.trim()), expected.trim());
                    return Err(fail(StepName::Request, message, self.logs(id).await));
                }
                return Ok(took);
            }
            if let Some(code) = self.exit_code(id).await {
                let message = format!("web exited with status {code} before answering");
                return Err(fail(StepName::Start, message, self.logs(id).await));
            }
            if t.elapsed() > deadline {
                let message = format!("web did not answer GET {} within {}s", spec.path, spec.boot_timeout);
                return Err(fail(StepName::Start, message, self.logs(id).await));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The container's exit status, once it has stopped.
    async fn exit_code(&self, id: &str) -> Option<i64> {
        let state = self.engine.api.inspect_container(id, None).await.ok()?.state?;
        match state.running {
            Some(false) => Some(state.exit_code.unwrap_or(-1)),
            _ => None,
        }
    }

    async fn logs(&self, id: &str) -> String {
        let opts =
            bollard::query_parameters::LogsOptionsBuilder::default().stdout(true).stderr(true).tail("40").build();
        let mut stream = self.engine.api.logs(id, Some(opts));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(120).collect::<String>())
    } else {
        s.to_string()
    }
}

// ---- Reports ----

fn ms(v: Option<u64>) -> String {
    v.map(|ms| output::duration(Duration::from_millis(ms))).unwrap_or_else(|| "-".into())
}

fn table_rows(outcomes: &[Outcome]) -> Vec<[String; 8]> {
    outcomes
        .iter()
        .map(|o| {
            [
                o.group.clone(),
                o.fixture.rsplit('/').next().unwrap_or(&o.fixture).to_string(),
                if o.detected.is_empty() { "-".into() } else { o.detected.join(" + ") },
                ms(o.build_ms),
                o.slug_size.map(output::size).unwrap_or_else(|| "-".into()),
                ms(o.start_ms),
                ms(o.test_ms),
                o.result_text(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 8] = ["buildpack", "fixture", "detected", "build", "slug", "start", "tests", "result"];

/// The summary table for a terminal, then each failure's cause and last log lines.
pub fn summary(outcomes: &[Outcome], wall: Duration) -> String {
    let rows = table_rows(outcomes);
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&HEADERS.map(String::from));
    for row in &rows {
        out.push_str(&line(row));
    }
    for o in outcomes.iter().filter(|o| !o.ok()) {
        if let Some(f) = &o.failure {
            out.push_str(&format!("\n{} failed at {}: {}\n", o.fixture, f.step, f.message));
            for l in &f.log_tail {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    out.push_str(&format!(
        "\n{} fixtures: {} passed, {failed} failed in {}\n",
        outcomes.len(),
        outcomes.len() - failed,
        output::duration(wall)
    ));
    out
}

/// The same table in Markdown, with failures' logs folded.
pub fn markdown(outcomes: &[Outcome], wall: Duration) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = format!("| {} |\n|{}\n", HEADERS.join(" | "), "---|".repeat(HEADERS.len()));
    for row in table_rows(outcomes) {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    out.push_str(&format!(
        "\n{} fixtures: {} passed, {failed} failed in {}.\n",
        outcomes.len(),
        outcomes.len() - failed,
        output::duration(wall)
    ));
    for o in outcomes.iter().filter(|o| !o.ok()) {
        if let Some(f) = &o.failure {
            out.push_str(&format!(
                "\n<details><summary>{} failed at {}: {}</summary>\n\n```\n{}\n```\n</details>\n",
                o.fixture,
                f.step,
                cell(&f.message),
                f.log_tail.join("\n")
            ));
        }
    }
    out
}

/// JUnit XML: a test suite per buildpack, a test case per fixture.
pub fn junit(outcomes: &[Outcome], wall: Duration) -> Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("slipway matrix");
    report.set_time(wall);
    let mut suites: Vec<TestSuite> = Vec::new();
    for o in outcomes {
        let status = match (&o.failure, o.ok()) {
            (Some(f), false) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("failed at {}: {}", f.step, f.message));
                s.set_type(f.step.to_string());
                s.set_description(f.log_tail.join("\n"));
                s
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(o.fixture.clone(), status);
        case.set_classname(format!("matrix.{}", o.group));
        let total = o.build_ms.unwrap_or(0) + o.start_ms.unwrap_or(0) + o.test_ms.unwrap_or(0);
        case.set_time(Duration::from_millis(total));
        case.set_system_out(summary_line(o));
        match suites.iter_mut().find(|s| s.name.as_str() == o.group) {
            Some(suite) => {
                suite.add_test_case(case);
            }
            None => {
                let mut suite = TestSuite::new(o.group.clone());
                suite.add_test_case(case);
                suites.push(suite);
            }
        }
    }
    report.add_test_suites(suites);
    report.to_string().context("cannot write the JUnit report")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(id: &str, failure: Option<(StepName, &str)>, result: Verdict) -> Outcome {
        Outcome {
            fixture: id.into(),
            group: id.split('/').next().unwrap().into(),
            detected: vec!["Python".into()],
            build_ms: Some(1500),
            slug_size: Some(2_000_000),
            start_ms: Some(300),
            test_ms: None,
            failure: failure.map(|(step, m)| Failure { step, message: m.into(), log_tail: vec!["last | line".into()] }),
            result,
        }
    }

    #[test]
    fn spec_defaults_and_unknown_keys() {
        let spec: Spec = toml::from_str("").unwrap();
        assert_eq!(spec, Spec::default());
        let spec: Spec = toml::from_str("expect_failure = \"start\"\nerror = \"boom\"\n[env]\nA = \"1\"").unwrap();
        assert_eq!(spec.expect_failure, Some(StepName::Start));
        assert_eq!(spec.env["A"], "1");
        let err = toml::from_str::<Spec>("bodyy = \"x\"").unwrap_err().to_string();
        assert!(err.contains("unknown field `bodyy`"), "{err}");
        let err = toml::from_str::<Spec>("expect_failure = \"deploy\"").unwrap_err().to_string();
        assert!(err.contains("unknown variant `deploy`"), "{err}");
    }

    #[test]
    fn buildpack_names_compare_loosely() {
        assert!(same_buildpack("Node.js", "nodejs"));
        assert!(same_buildpack("PHP", "php"));
        assert!(!same_buildpack("Python", "null"));
    }

    #[test]
    fn detection_is_read_from_the_log() {
        let log = "-----> Fetching\n-----> Node.js app detected\n       x\n-----> Python app detected\n";
        assert_eq!(detected_in(log), vec!["Node.js", "Python"]);
    }

    #[test]
    fn discover_lists_groups_in_buildpack_order_and_loads_specs() {
        let root = tempfile::tempdir().unwrap();
        for (group, app) in [("null", "b"), ("null", "a"), ("python", "flask"), ("multi", "both"), ("other", "x")] {
            std::fs::create_dir_all(root.path().join(group).join(app)).unwrap();
        }
        std::fs::write(root.path().join("null/a/test.toml"), "body = \"hello\"").unwrap();
        let bp = |name: &str| DefaultBuildpack {
            name: name.into(),
            version: None,
            source: crate::source::Source::Local(root.path().join(name)),
        };
        let defaults = vec![bp("python"), bp("null"), bp("go")];
        let (fixtures, warnings) = discover(root.path(), &defaults, &[]).unwrap();
        let ids: Vec<&str> = fixtures.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["python/flask", "null/a", "null/b", "multi/both"]);
        assert_eq!(fixtures[1].expected_body(), "hello");
        assert_eq!(fixtures[2].expected_body(), "b");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("buildpack go has no fixtures"));
        let (only, _) = discover(root.path(), &defaults, &["null".into()]).unwrap();
        assert_eq!(only.len(), 2);
        let err = discover(root.path(), &defaults, &["ruby".into()]).unwrap_err().to_string();
        assert!(err.contains("unknown buildpack \"ruby\""), "{err}");
    }

    #[test]
    fn error_without_expected_failure_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test.toml"), "error = \"x\"").unwrap();
        let err = Fixture::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`error` needs `expect_failure`"), "{err}");
    }

    #[test]
    fn reports_name_the_failing_step() {
        let outcomes = vec![
            outcome("python/flask", None, Verdict::Passed),
            outcome("broken/crash", Some((StepName::Start, "web exited with status 1")), Verdict::Failed),
            outcome("nodejs/engines", Some((StepName::Build, "no version")), Verdict::ExpectedFailure),
        ];
        let text = summary(&outcomes, Duration::from_secs(3));
        assert!(text.contains("FAILED at start"), "{text}");
        assert!(text.contains("passed (failed at build as expected)"), "{text}");
        assert!(text.contains("3 fixtures: 2 passed, 1 failed"), "{text}");
        let md = markdown(&outcomes, Duration::from_secs(3));
        assert!(
            md.starts_with("| buildpack | fixture | detected | build | slug | start | tests | result |\n|---|"),
            "{md}"
        );
        assert!(md.contains("<summary>broken/crash failed at start: web exited with status 1</summary>"), "{md}");
        assert!(md.contains("```\nlast | line\n```"), "{md}");
        let xml = junit(&outcomes, Duration::from_secs(3)).unwrap();
        assert!(xml.contains("<testsuite name=\"broken\""), "{xml}");
        assert!(xml.contains("failed at start: web exited with status 1"), "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    }
}
