//! Builds in containers (the default for `slipway build`): the engine runs inside the build
//! image, driven through the Docker API.
//!
//! 1. A container is created from the build image, with the per-app cache volume at CACHE_PATH,
//!    the host's CA bundle and proxy settings, and memory/CPU limits.
//! 2. The source (and any local `--buildpack` directories, and the config vars as ENV_PATH
//!    files) are streamed in as one tar; config values never appear in the container's config.
//! 3. The engine runs `buildpack build --slug`; its log is passed through live.
//! 4. The slug is copied out; the container is removed on every path, Ctrl-C included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};

use crate::containers::docker::{Engine, TarStream, LABEL_APP, LABEL_MANAGED, LABEL_ROLE};
use crate::engine::envdir::Vars;
use crate::engine::exec::ExecError;
use crate::engine::result::BuildResult;
use crate::output;
use crate::output::progress::Step;

/// Where the buildpack cache lives between builds of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cache {
    /// The named volume `slipway-cache-APP` (the default).
    Volume,
    /// A directory on this host.
    HostDir(PathBuf),
    /// A fresh, empty cache.
    None,
}

#[derive(Debug, Clone)]
pub struct ContainerBuild {
    pub app_dir: PathBuf,
    pub app: String,
    pub output: PathBuf,
    pub buildpacks: Vec<String>,
    pub config: Vars,
    pub cache: Cache,
    pub image: String,
    pub timeout: Duration,
    /// Bytes.
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub ca_bundle: Option<PathBuf>,
    pub source_version: Option<String>,
    pub max_size: u64,
    /// Run the buildpacks' test mode (`bin/test-compile`, `bin/test`) instead; no slug.
    pub test: bool,
    /// Default buildpacks to detect with, sent along instead of the ones built into the image's
    /// engine (`slipway matrix` tests the working copy's buildpacks).
    pub defaults: Vec<crate::engine::defaults::DefaultBuildpack>,
    /// More labels for the container and the cache volume.
    pub labels: Vec<(String, String)>,
    /// Collect the build log here instead of passing it through to the terminal.
    pub capture: Option<std::sync::Arc<std::sync::Mutex<String>>>,
}

impl ContainerBuild {
    /// A build of `app_dir` with the defaults: the default stack's build image, the app's cache
    /// volume, the host's CA bundle, SLIPWAY_COMPILE_TIMEOUT (900 s).
    pub fn new(app_dir: PathBuf, app: &str, output: PathBuf) -> ContainerBuild {
        let timeout = std::env::var("SLIPWAY_COMPILE_TIMEOUT").ok().and_then(|t| t.parse().ok()).unwrap_or(900);
        ContainerBuild {
            app_dir,
            app: app.to_string(),
            output,
            buildpacks: Vec::new(),
            config: Vars::new(),
            cache: Cache::Volume,
            image: crate::containers::stack::Stack::default_stack().build_image(),
            timeout: Duration::from_secs(timeout),
            memory: None,
            cpus: None,
            ca_bundle: default_ca_bundle(),
            source_version: None,
            max_size: crate::engine::slug::DEFAULT_MAX_SIZE,
            test: false,
            defaults: Vec::new(),
            labels: Vec::new(),
            capture: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ContainerBuildReport {
    pub slug_size: u64,
    /// SHA-256 of the slug, taken while it was copied out.
    pub slug_digest: String,
    pub phases: Vec<(String, Duration)>,
    /// What the engine reported: detected buildpacks, process types, phase timings.
    pub result: BuildResult,
}

/// The most processes and threads a build container may run.
pub const BUILD_PIDS_LIMIT: i64 = 8192;

/// Where the engine writes its [`BuildResult`] in the build container.
const RESULT_PATH: &str = crate::engine::result::CONTAINER_PATH;

/// A build that failed in its container. The message is the engine's own; the result (when
/// the engine got to write one) says what kind of failure it was.
#[derive(Debug, thiserror::Error)]
pub enum BuildFailed {
    #[error("{}", .result.error.as_ref().map(|e| e.message.as_str()).unwrap_or("the build failed"))]
    Engine { result: BuildResult },
    #[error("the build ran out of memory (limit {limit}): raise it with `slipway build --memory`, or on a platform `slipway settings:set build-memory-limit SIZE`")]
    OutOfMemory { limit: String, result: Option<BuildResult> },
    #[error("the build failed in its container (exit status {code}); see the log above{}", if .result.is_none() { STALE_HINT } else { "" })]
    Crashed { code: i64, result: Option<BuildResult> },
}

/// Said when the engine left no result: an engine older than this slipway writes none.
const STALE_HINT: &str =
    " (the engine left no result: if the build image is older than this slipway, rebuild it with `slipway stack build`)";

impl BuildFailed {
    pub fn result(&self) -> Option<&BuildResult> {
        match self {
            BuildFailed::Engine { result } => Some(result),
            BuildFailed::OutOfMemory { result, .. } | BuildFailed::Crashed { result, .. } => result.as_ref(),
        }
    }
}

/// The host's CA bundle: the setting, else `SSL_CERT_FILE`, else Debian's bundle.
pub fn default_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("SLIPWAY_CA_BUNDLE")
        .or_else(|| std::env::var_os("SSL_CERT_FILE"))
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt")))
        .filter(|p| p.is_file())
}

/// Where build containers find the bundle, and the variables tools read it from.
const CA_IN_CONTAINER: &str = "/etc/ssl/certs/ca-certificates.crt";
pub const CA_VARIABLES: [&str; 6] =
    ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"];
pub const PROXY_VARIABLES: [&str; 6] =
    ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"];

pub fn cache_volume(app: &str) -> String {
    format!("slipway-cache-{app}")
}

fn append_file<W: std::io::Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    Ok(tar.append_data(&mut h, path, data)?)
}

/// The tar streamed into the container at /tmp: `app/`, `env/`, `custom-buildpacks/NN-name/`,
/// `defaults/` (the default buildpacks and their `buildpacks.toml`), written on a blocking
/// thread as it is sent. Returns it and the buildpack specs as the engine inside should see
/// them.
fn upload_tar(b: &ContainerBuild) -> Result<(TarStream, Vec<String>)> {
    let mut trees: Vec<(PathBuf, PathBuf)> = vec![(b.app_dir.clone(), PathBuf::from("app"))];
    let mut specs = Vec::new();
    for (i, spec) in b.buildpacks.iter().enumerate() {
        // Only an absolute path is a directory of this host (`buildpacks:set` stores them so);
        // anything else is for the engine to fetch.
        let local = Path::new(spec);
        if local.is_absolute() && local.is_dir() {
            let dir_name = local.canonicalize()?.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = format!("{i:02}-{}", dir_name.unwrap_or_default());
            trees.push((local.to_path_buf(), Path::new("custom-buildpacks").join(&name)));
            specs.push(format!("/tmp/custom-buildpacks/{name}"));
        } else {
            specs.push(spec.clone());
        }
    }
    let mut entries = Vec::new();
    for (i, d) in b.defaults.iter().enumerate() {
        let source = match &d.source {
            crate::engine::source::Source::Local(dir) => {
                let name = format!("{i:02}-{}", d.name);
                trees.push((dir.clone(), Path::new("defaults").join(&name)));
                format!("/tmp/defaults/{name}")
            }
            other => other.describe(),
        };
        // Installed buildpacks have no version; the list needs one.
        let version = d.version.clone().unwrap_or(semver::Version::new(0, 0, 0));
        entries.push(crate::engine::defaults::Entry { name: d.name.clone(), source, version });
    }
    let defaults_toml = if entries.is_empty() { None } else { Some(crate::engine::defaults::to_toml(entries)?) };
    let config = b.config.clone();
    let tar = TarStream::new(move |tar| {
        for (dir, prefix) in &trees {
            crate::engine::slug::append_tree(tar, dir, prefix)?;
        }
        for (k, v) in &config {
            append_file(tar, &format!("env/{k}"), v.as_bytes())?;
        }
        if let Some(text) = &defaults_toml {
            append_file(tar, "defaults/buildpacks.toml", text.as_bytes())?;
        }
        Ok(())
    });
    Ok((tar, specs))
}

pub async fn build(engine: &Engine, b: &ContainerBuild) -> Result<ContainerBuildReport> {
    if !engine.image_exists(&b.image).await? {
        bail!("the build image {} is missing: make it with `slipway stack build` (or `make stack-image`)", b.image);
    }
    let (upload, specs) = upload_tar(b)?;
    let mut env = vec![format!("SLIPWAY_COMPILE_TIMEOUT={}", b.timeout.as_secs())];
    if let Some(v) = &b.source_version {
        env.push(format!("SOURCE_VERSION={v}"));
    }
    let mut binds = Vec::new();
    if let Some(ca) = &b.ca_bundle {
        let ca = ca.canonicalize().with_context(|| format!("CA bundle {} does not exist", ca.display()))?;
        binds.push(format!("{}:{CA_IN_CONTAINER}:ro", ca.display()));
        env.extend(CA_VARIABLES.iter().map(|v| format!("{v}={CA_IN_CONTAINER}")));
    }
    for var in PROXY_VARIABLES {
        if let Ok(v) = std::env::var(var) {
            env.push(format!("{var}={v}"));
        }
    }
    match &b.cache {
        Cache::Volume => {
            let name = cache_volume(&b.app);
            let mut labels: HashMap<String, String> =
                [(LABEL_MANAGED.to_string(), "true".to_string()), (LABEL_APP.to_string(), b.app.clone())].into();
            labels.extend(b.labels.iter().cloned());
            let req = VolumeCreateRequest { name: Some(name.clone()), labels: Some(labels), ..Default::default() };
            engine.api.create_volume(req).await.with_context(|| format!("cannot create the cache volume {name}"))?;
            binds.push(format!("{name}:/tmp/cache"));
        }
        Cache::HostDir(dir) => {
            std::fs::create_dir_all(dir)?;
            let dir = dir.canonicalize()?;
            std::os::unix::fs::chown(
                &dir,
                Some(crate::engine::user::DEFAULT_ID),
                Some(crate::engine::user::DEFAULT_ID),
            )
            .ok();
            binds.push(format!("{}:/tmp/cache", dir.display()));
        }
        Cache::None => {}
    }
    let mut cmd: Vec<String> = vec!["/usr/local/bin/slipway".into()];
    if !b.defaults.is_empty() {
        cmd.extend(["--buildpacks-toml".into(), "/tmp/defaults/buildpacks.toml".into()]);
    }
    if b.test {
        cmd.extend(["buildpack".into(), "test".into()]);
        cmd.extend(["--result".into(), RESULT_PATH.into()]);
    } else {
        cmd.extend(["buildpack", "build", "--slug", "/tmp/slug.tgz", "--max-size"].map(String::from));
        cmd.push(b.max_size.to_string());
        cmd.extend(["--result".into(), RESULT_PATH.into()]);
    }
    for spec in &specs {
        cmd.extend(["--buildpack".to_string(), spec.clone()]);
    }
    let memory = b.memory.map(|m| m as i64);
    let body = ContainerCreateBody {
        image: Some(b.image.clone()),
        cmd: Some(cmd),
        env: Some(env),
        labels: Some(
            [
                (LABEL_MANAGED.to_string(), "true".to_string()),
                (LABEL_ROLE.to_string(), "build".to_string()),
                (LABEL_APP.to_string(), b.app.clone()),
            ]
            .into_iter()
            .chain(b.labels.iter().cloned())
            .collect(),
        ),
        host_config: Some(HostConfig {
            binds: Some(binds),
            memory,
            memory_swap: memory,
            nano_cpus: b.cpus.map(|c| (c * 1e9) as i64),
            // Compilers and package managers fork a lot, but a fork bomb stops here.
            pids_limit: Some(BUILD_PIDS_LIMIT),
            log_config: Some(crate::containers::docker::rotated_logs(Default::default())),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!("slipway-build-{}-{:x}", b.app, crate::units::unique_id());
    let id = engine.create(&name, body).await?;
    let report = run(engine, b, &id, upload).await;
    engine.remove_container(&id).await;
    report
}

async fn run(engine: &Engine, b: &ContainerBuild, id: &str, upload: TarStream) -> Result<ContainerBuildReport> {
    let mut phases = Vec::new();
    let step = Step::start("Uploading the source");
    engine.upload(id, "/tmp", upload, false).await?;
    phases.push(("upload".into(), step.done("Uploaded the source")));

    let t = Instant::now();
    let follow = engine.start_and_follow(id, |bytes, is_err| {
        use std::io::Write;
        if let Some(capture) = &b.capture {
            capture.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(bytes));
        } else if is_err {
            let _ = std::io::stderr().write_all(bytes);
        } else {
            let _ = std::io::stdout().write_all(bytes);
            let _ = std::io::stdout().flush();
        }
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = tokio::select! {
        r = tokio::time::timeout(b.timeout + Duration::from_secs(60), follow) => r,
        _ = tokio::signal::ctrl_c() => return Err(ExecError::Interrupted { what: "the build".into() }.into()),
        _ = term.recv() => return Err(ExecError::Interrupted { what: "the build".into() }.into()),
    };
    let (code, oom) = match outcome {
        Ok(r) => r?,
        Err(_) => bail!("the build did not finish within {}s and was stopped", b.timeout.as_secs()),
    };
    phases.push((if b.test { "test" } else { "build" }.into(), t.elapsed()));
    // What the engine says happened; missing when the engine itself was killed.
    let result = engine.read_small_file(id, RESULT_PATH).await.and_then(|r| BuildResult::parse(&r).ok());
    // The kernel kills the largest process of the container: the engine itself, or (more often)
    // the buildpack step, which the engine then reports as killed by signal 9.
    let killed = result.as_ref().and_then(|r| r.error.as_ref()).is_some_and(|e| e.killed());
    if oom || (b.memory.is_some() && (code == 137 || killed)) {
        let limit = b.memory.map(output::size).unwrap_or_else(|| "the host's".into());
        return Err(BuildFailed::OutOfMemory { limit, result }.into());
    }
    if code != 0 {
        return Err(match result {
            Some(result) if result.error.is_some() => BuildFailed::Engine { result },
            result => BuildFailed::Crashed { code, result },
        }
        .into());
    }
    let result = result.context("the build finished, but the engine left no result (is the build image current?)")?;
    if b.test {
        return Ok(ContainerBuildReport { slug_size: 0, slug_digest: String::new(), phases, result });
    }
    let t = Instant::now();
    let (slug_size, slug_digest) = engine.download_file(id, "/tmp/slug.tgz", &b.output).await?;
    phases.push(("download".into(), t.elapsed()));
    Ok(ContainerBuildReport { slug_size, slug_digest, phases, result })
}
