//! One fixture's run, step by step: build (detect included) in a build container, the release
//! image, `web` started with its port on 127.0.0.1, the request, then test mode.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fixture::{same_buildpack, Fixture, Spec, StepName};
use super::report::Reporter;
use super::{Failure, Options, Outcome, Verdict, LABEL_MATRIX};
use crate::containers::build::{BuildFailed, Cache, ContainerBuild};
use crate::containers::docker::Engine;
use crate::containers::image::ReleaseImage;
use crate::containers::process::{ProcessSpec, APP_PORT};
use crate::engine::result::{BuildResult, FailureKind};

pub struct Job<'a> {
    pub engine: &'a Engine,
    pub opts: &'a Options,
    pub fixture: &'a Fixture,
    pub index: usize,
    pub run_id: &'a str,
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

impl Job<'_> {
    fn labels(&self) -> Vec<(String, String)> {
        vec![(LABEL_MATRIX.to_string(), self.run_id.to_string())]
    }

    /// An app name of our own for this fixture: `matrix-RUN-N`.
    fn app(&self) -> String {
        format!("matrix-{}-{}", self.run_id, self.index)
    }

    pub async fn run(&self, reporter: &dyn Reporter) -> Outcome {
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
        let built = crate::containers::build::build(self.engine, &build).await;
        let build_log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let report = match built {
            Ok(report) => report,
            Err(e) => {
                // What the engine reported decides the step, not the log's wording.
                let result = e.downcast_ref::<BuildFailed>().and_then(BuildFailed::result);
                outcome.detected = result.map(|r| r.detected.clone()).unwrap_or_default();
                // Detect failed when nothing detected the app; without a result (the engine was
                // killed, or the host gave up on it) the build is what failed.
                let at_detect = result.is_some_and(|r| {
                    let nothing =
                        r.error.as_ref().is_some_and(|f| matches!(f.kind, FailureKind::NothingDetected { .. }));
                    nothing || (r.detected.is_empty() && r.undetected.is_empty())
                });
                let step = if at_detect { StepName::Detect } else { StepName::Build };
                let message = crate::output::error_chain(e.as_ref());
                return Err(StepError { step, message, log: build_log });
            }
        };
        outcome.detected = report.result.detected.clone();
        outcome.build_ms = Some(t.elapsed().as_millis() as u64);
        outcome.slug_size = Some(report.slug_size);
        self.check_detection(&report.result, &build_log)?;
        let Some(metadata) = report.result.metadata.clone() else {
            let message = "the engine's result has no build metadata".to_string();
            return Err(StepError { step: StepName::Build, message, log: build_log });
        };

        // Start web from a release image, as the runner would.
        reporter.step(self.index, "starting web");
        let tag = format!("slipway-matrix/{app}:latest");
        let labels = self.labels();
        let release =
            ReleaseImage { app: &app, release: "matrix", tag: &tag, metadata: &metadata, extra_labels: &labels };
        let image = crate::containers::image::from_slug(self.engine, &slug, &self.opts.run_image, &release).await;
        if let Err(e) = image {
            return Err(StepError {
                step: StepName::Build,
                message: crate::output::error_chain(e.as_ref()),
                log: build_log,
            });
        }
        outcome.start_ms = Some(self.start_and_request(&app, &tag).await?.as_millis() as u64);

        // Test mode, when the buildpack that built the app has it.
        if fixture.spec.test && self.has_test_mode(&outcome.detected) {
            reporter.step(self.index, "running tests");
            log.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let t = Instant::now();
            let test = ContainerBuild { test: true, output: work.join("unused"), ..build.clone() };
            let tested = crate::containers::build::build(self.engine, &test).await;
            let test_log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Err(e) = tested {
                return Err(StepError {
                    step: StepName::Test,
                    message: crate::output::error_chain(e.as_ref()),
                    log: test_log,
                });
            }
            outcome.test_ms = Some(t.elapsed().as_millis() as u64);
        }
        Ok(())
    }

    fn check_detection(&self, result: &BuildResult, log: &str) -> Result<(), StepError> {
        let detected = &result.detected;
        if !result.undetected.is_empty() {
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
                    crate::engine::source::Source::Local(dir) => Some(dir.clone()),
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
        let kind = spec.process.as_str();
        let web = kind == "web";
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend(["PORT=5000".to_string(), format!("DYNO={kind}.1")]);
        let mut labels = ProcessSpec::base_labels("run", app);
        labels.insert(LABEL_MATRIX.to_string(), self.run_id.to_string());
        let process = ProcessSpec {
            name: format!("slipway-matrix-{app}.{kind}"),
            image: image.to_string(),
            cmd: Some(vec!["/start".into(), kind.into()]),
            env,
            publish: web.then_some((APP_PORT, 0)),
            labels,
            ..Default::default()
        };
        let id = process.create(self.engine).await.map_err(|e| fail(StepName::Start, e.to_string(), String::new()))?;
        let result = if web { self.request(&id, spec).await } else { self.watch(&id, spec).await };
        self.engine.remove_container(&id).await;
        result
    }

    async fn request(&self, id: &str, spec: &Spec) -> Result<Duration, StepError> {
        let fail = |step, message: String, log: String| StepError { step, message, log };
        let t = Instant::now();
        if let Err(e) = self.engine.api.start_container(id, None).await {
            return Err(fail(StepName::Start, crate::output::error_chain(&e), String::new()));
        }
        let Some(port) = self.engine.published_port(id, APP_PORT).await else {
            // A web that exits at once has no published port by the time we look.
            let message = match self.exit_code(id).await {
                Some(code) => format!("web exited with status {code} before answering"),
                None => "the container's port was not published".into(),
            };
            return Err(fail(StepName::Start, message, self.engine.log_tail(id, 40).await));
        };
        let deadline = Duration::from_secs(spec.boot_timeout);
        loop {
            if let Ok((status, text)) = crate::net::get_async(port, &spec.path, Duration::from_secs(10)).await {
                let took = t.elapsed();
                let status = reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
                let expected = self.fixture.expected_body();
                if !status.is_success() {
                    let message = format!("GET {} answered {status}", spec.path);
                    return Err(fail(StepName::Request, message, self.engine.log_tail(id, 40).await));
                }
                if text.trim() != expected.trim() {
                    let message =
                        format!("GET {} answered {:?}, expected {:?}", spec.path, clip(text.trim()), expected.trim());
                    return Err(fail(StepName::Request, message, self.engine.log_tail(id, 40).await));
                }
                return Ok(took);
            }
            if let Some(code) = self.exit_code(id).await {
                let message = format!("web exited with status {code} before answering");
                return Err(fail(StepName::Start, message, self.engine.log_tail(id, 40).await));
            }
            if t.elapsed() > deadline {
                let message = format!("web did not answer GET {} within {}s", spec.path, spec.boot_timeout);
                return Err(fail(StepName::Start, message, self.engine.log_tail(id, 40).await));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A process without a port: it must print the expected body in its log and still be
    /// running a moment later. Returns the time until it printed.
    async fn watch(&self, id: &str, spec: &Spec) -> Result<Duration, StepError> {
        let fail = |step, message: String, log: String| StepError { step, message, log };
        let t = Instant::now();
        if let Err(e) = self.engine.api.start_container(id, None).await {
            return Err(fail(StepName::Start, crate::output::error_chain(&e), String::new()));
        }
        let expected = self.fixture.expected_body();
        let kind = &spec.process;
        loop {
            let log = self.engine.log_tail(id, 40).await;
            if log.lines().any(|l| l.trim() == expected.trim()) {
                let took = t.elapsed();
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Some(code) = self.exit_code(id).await {
                    let message = format!("{kind} printed {expected:?}, then exited with status {code}");
                    return Err(fail(StepName::Start, message, self.engine.log_tail(id, 40).await));
                }
                return Ok(took);
            }
            if let Some(code) = self.exit_code(id).await {
                let message = format!("{kind} exited with status {code} before printing {expected:?}");
                return Err(fail(StepName::Start, message, log));
            }
            if t.elapsed() > Duration::from_secs(spec.boot_timeout) {
                let message = format!("{kind} did not print {expected:?} within {}s", spec.boot_timeout);
                return Err(fail(StepName::Start, message, log));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
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
}

fn clip(s: &str) -> String {
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(120).collect::<String>())
    } else {
        s.to_string()
    }
}
