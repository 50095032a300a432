//! `slipway matrix`: the shared buildpack test matrix (SPEC section 5).
//!
//! For every fixture app (`fixtures/<buildpack>/<app>/`), in the stack images through the Docker
//! path, as a deploy would: detect (the expected buildpack must be picked), build, start `web`
//! with its port published on 127.0.0.1, request the fixture's path and compare the body with
//! the expected text; buildpacks with `bin/test-compile` and `bin/test` also run in test mode.
//! Fixtures run in parallel, each with its own cache volume and container names; everything a
//! run makes carries the label `io.slipway.matrix=RUN` and is removed at the end, Ctrl-C included.
//!
//! A fixture says what to expect in an optional `test.toml` ([`Spec`]); [`fixture`] finds
//! them, [`job`] runs one, [`report`] shows the outcomes.

pub mod fixture;
pub mod job;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use fixture::{discover, Fixture, StepName};
use job::Job;
pub use report::{junit, markdown, summary};
use report::{LiveReporter, PlainReporter, Reporter};

use crate::containers::docker::Engine;
use crate::engine::defaults::DefaultBuildpack;
use crate::output;

/// The label on every container, image and volume a matrix run makes.
pub const LABEL_MATRIX: &str = "io.slipway.matrix";

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

    pub fn result_text(&self) -> String {
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

/// Runs every fixture; returns the outcomes in fixture order. Ctrl-C (or SIGTERM) stops the
/// run, removes what it made and returns an error.
pub async fn run(engine: Arc<Engine>, opts: Options) -> Result<Vec<Outcome>> {
    for image in [&opts.build_image, &opts.run_image] {
        if !engine.image_exists(image).await? {
            bail!("the stack image {image} is missing: make it with `slipway stack build` (or `make stack-image`)");
        }
    }
    let run_id = format!("{:08x}", (crate::units::unique_id() & 0xffff_ffff) as u32);
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

/// `slipway matrix`'s request: which fixtures, which buildpack, where the reports go.
pub struct Command {
    /// Fixture directories named on the command line [default: every buildpack's fixtures].
    pub dirs: Vec<PathBuf>,
    pub fixtures_root: PathBuf,
    /// Only these groups.
    pub only: Vec<String>,
    /// A third-party buildpack (git URL#ref, tarball, directory) to run on `dirs`.
    pub external: Option<String>,
    pub jobs: Option<usize>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub defaults: Vec<DefaultBuildpack>,
    pub build_image: String,
    pub run_image: String,
    /// The stack the images are (the fixtures' expectations on it apply).
    pub stack: &'static crate::containers::stack::Stack,
    pub ca_bundle: Option<PathBuf>,
    pub timeout: Duration,
}

/// Runs a matrix command end to end; returns the exit code (130 when interrupted).
pub fn run_command(cmd: Command) -> Result<i32> {
    let started = Instant::now();
    let ws = crate::engine::local::workspace()?;
    let external = match &cmd.external {
        Some(spec) => {
            let source = crate::engine::source::Source::parse(spec, &std::env::current_dir()?)?;
            let root = source.fetch(&ws.path().join("external")).with_context(|| format!("buildpack {spec}"))?;
            Some((source.short_name(), root))
        }
        None => None,
    };
    let fixtures = if cmd.dirs.is_empty() {
        let (fixtures, warnings) = discover(&cmd.fixtures_root, &cmd.defaults, &cmd.only, cmd.stack.name)?;
        warnings.iter().for_each(output::warn);
        fixtures
    } else {
        cmd.dirs.iter().map(|d| Fixture::load(d, cmd.stack.name)).collect::<Result<Vec<_>>>()?
    };
    if fixtures.is_empty() {
        bail!(
            "no fixtures to run: add apps under {}/<buildpack>/ or name fixture directories",
            cmd.fixtures_root.display()
        );
    }
    let jobs = cmd.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    match &external {
        Some((name, _)) => output::header(format!(
            "Testing buildpack {name} on {} fixtures on the {} stack, {jobs} at a time",
            fixtures.len(),
            cmd.stack.name
        )),
        None => output::header(format!(
            "Running {} fixtures on the {} stack, {jobs} at a time",
            fixtures.len(),
            cmd.stack.name
        )),
    }
    let opts = Options {
        fixtures,
        defaults: cmd.defaults,
        external,
        jobs,
        build_image: cmd.build_image,
        run_image: cmd.run_image,
        ca_bundle: cmd.ca_bundle,
        timeout: cmd.timeout,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let outcomes = runtime.block_on(async { run(Arc::new(Engine::connect().await?), opts).await });
    let outcomes = match outcomes {
        Err(e) if e.is::<Interrupted>() => {
            eprintln!();
            output::warn(e.to_string());
            return Ok(130);
        }
        other => other?,
    };
    let wall = started.elapsed();
    print!("\n{}", summary(&outcomes, wall));
    let write = |path: &Path, text: String| -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(p) = &cmd.junit {
        write(p, junit(&outcomes, wall)?)?;
    }
    if let Some(p) = &cmd.markdown {
        write(p, markdown(&outcomes, wall))?;
    }
    if let Some(p) = &cmd.json {
        write(p, serde_json::to_string_pretty(&outcomes)?)?;
    }
    Ok(if outcomes.iter().all(|o| o.ok()) { 0 } else { 1 })
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

#[cfg(test)]
mod tests {
    use super::fixture::{same_buildpack, Spec};
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
    fn discover_lists_groups_in_buildpack_order_and_loads_specs() {
        let root = tempfile::tempdir().unwrap();
        for (group, app) in [("null", "b"), ("null", "a"), ("python", "flask"), ("multi", "both"), ("other", "x")] {
            std::fs::create_dir_all(root.path().join(group).join(app)).unwrap();
        }
        std::fs::write(root.path().join("null/a/test.toml"), "body = \"hello\"").unwrap();
        let bp = |name: &str| DefaultBuildpack {
            name: name.into(),
            version: None,
            source: crate::engine::source::Source::Local(root.path().join(name)),
        };
        let defaults = vec![bp("python"), bp("null"), bp("go")];
        let (fixtures, warnings) = discover(root.path(), &defaults, &[], "slipway-trixie").unwrap();
        let ids: Vec<&str> = fixtures.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["python/flask", "null/a", "null/b", "multi/both"]);
        assert_eq!(fixtures[1].expected_body(), "hello");
        assert_eq!(fixtures[2].expected_body(), "b");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("buildpack go has no fixtures"));
        let (only, _) = discover(root.path(), &defaults, &["null".into()], "slipway-trixie").unwrap();
        assert_eq!(only.len(), 2);
        let err = discover(root.path(), &defaults, &["ruby".into()], "slipway-trixie").unwrap_err().to_string();
        assert!(err.contains("unknown buildpack \"ruby\""), "{err}");
    }

    #[test]
    fn error_without_expected_failure_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test.toml"), "error = \"x\"").unwrap();
        let err = Fixture::load(dir.path(), "slipway-trixie").unwrap_err().to_string();
        assert!(err.contains("`error` needs `expect_failure`"), "{err}");
    }

    #[test]
    fn a_fixture_expects_differently_on_another_stack() {
        let dir = tempfile::tempdir().unwrap();
        let spec = "body = \"new\"\n[on.bookworm]\nexpect_failure = \"build\"\nerror = \"has it\"\n";
        std::fs::write(dir.path().join("test.toml"), spec).unwrap();
        let on_trixie = Fixture::load(dir.path(), "slipway-trixie").unwrap();
        assert_eq!((on_trixie.spec.expect_failure, on_trixie.expected_body()), (None, "new".to_string()));
        let on_bookworm = Fixture::load(dir.path(), "slipway-bookworm").unwrap();
        assert_eq!(on_bookworm.spec.expect_failure, Some(StepName::Build));
        assert_eq!(on_bookworm.spec.error.as_deref(), Some("has it"));
        std::fs::write(dir.path().join("test.toml"), "[on.heroku-24]\nbody = \"x\"\n").unwrap();
        let err = format!("{:#}", Fixture::load(dir.path(), "slipway-trixie").unwrap_err());
        assert!(err.contains("there is no stack \"heroku-24\""), "{err}");
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
