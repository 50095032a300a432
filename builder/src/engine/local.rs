//! The engine on this host, no Docker: `slipway build --local`, `slipway start SLUG` and
//! herokuish's `test` (build, start `web`, check that `GET /` answers the expected text).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::envdir::{self, Vars};
use super::exec::{self, Ended};
use super::pipeline::{self, BuildOptions, Mode};
use super::process::{self, ProcessEnv};
use super::{defaults, slug, smoke};
use crate::output;

/// A scratch dir readable by the app user (tempfile makes 0700 dirs).
pub fn workspace() -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("slipway-build-").tempdir().context("cannot create a temp dir")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// The name of the directory an app is in.
pub fn app_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "app".into())
}

/// Host-mode build options in a fresh workspace.
fn host_options(dir: &Path, ws: &Path, explicit: Vec<String>, toml: Option<&Path>) -> Result<BuildOptions> {
    let source_dir = dir.canonicalize().with_context(|| format!("app directory {} does not exist", dir.display()))?;
    Ok(BuildOptions {
        source_version: std::env::var("SOURCE_VERSION").ok().or_else(|| pipeline::git_revision(&source_dir)),
        source_dir,
        build_dir: ws.join("build"),
        cache_dir: ws.join("cache"),
        env_dir: ws.join("env"),
        fetch_dir: ws.join("buildpacks"),
        home: ws.join("home"),
        explicit,
        defaults: defaults::load(toml)?,
        stack: std::env::var("STACK").unwrap_or_else(|_| pipeline::DEFAULT_STACK.into()),
        heroku_stack: std::env::var("SLIPWAY_HEROKU_STACK").ok().filter(|s| !s.is_empty()),
        timeout: Some(pipeline::DEFAULT_TIMEOUT),
        user: None,
        mode: Mode::Build,
    })
}

/// `slipway build --local`'s request.
pub struct LocalBuild<'a> {
    pub dir: &'a Path,
    pub output: Option<PathBuf>,
    pub buildpacks: Vec<String>,
    pub config: Vars,
    pub cache_dir: Option<PathBuf>,
    pub stack: String,
    pub timeout: Duration,
    pub max_size: u64,
    pub toml: Option<&'a Path>,
    /// Print a machine-readable summary as the last line.
    pub json: bool,
}

/// Builds an app on this host into a slug.
pub fn build(b: LocalBuild<'_>) -> Result<()> {
    let ws = workspace()?;
    let mut opts = host_options(b.dir, ws.path(), b.buildpacks, b.toml)?;
    if let Some(c) = b.cache_dir {
        opts.cache_dir = c;
    }
    opts.stack = b.stack;
    opts.timeout = Some(b.timeout);
    envdir::write(&opts.env_dir, &b.config)?;
    let out = b.output.unwrap_or_else(|| PathBuf::from(format!("{}.slug.tgz", app_name(b.dir))));
    let mut report = pipeline::build(&opts)?;
    let t = Instant::now();
    let stats = slug::generate(&opts.build_dir, &out, b.max_size)?;
    report.phases.push(("slug".into(), t.elapsed()));
    report.total += t.elapsed();
    output::header(format!("Compressed slug: {} ({})", out.display(), output::size(stats.compressed)));
    report.print_summary();
    if b.json {
        let durations: std::collections::BTreeMap<_, _> =
            report.phases.iter().map(|(n, d)| (n.clone(), d.as_millis() as u64)).collect();
        let summary = serde_json::json!({
            "slug": out,
            "slug_size": stats.compressed,
            "unpacked_size": stats.unpacked,
            "buildpacks": report.metadata.buildpacks,
            "process_types": report.metadata.process_types,
            "stack": report.metadata.stack,
            "durations_ms": durations,
            "in_buildpacks_ms": report.in_buildpacks.as_millis() as u64,
            "total_ms": report.total.as_millis() as u64,
        });
        println!("{summary}");
    }
    Ok(())
}

/// `slipway start SLUG TYPE`: runs a process type from a slug; returns its exit code.
pub fn start(slug_path: &Path, process_type: &str, port: Option<u16>, mut vars: Vars) -> Result<i32> {
    let ws = workspace()?;
    let app = ws.path().join("app");
    let file = std::fs::File::open(slug_path).with_context(|| format!("cannot open slug {}", slug_path.display()))?;
    slug::import_file(&file, &app, &slug::ImportOptions::default())?;
    let command = process::procfile_command(&app, process_type)?;
    vars.insert("PORT".into(), port.unwrap_or(5000).to_string());
    vars.insert("DYNO".into(), format!("{process_type}.1"));
    let pe = ProcessEnv { app_dir: app, env_dir: None, vars, user: None, system_profile: false };
    let mut cmd = pe.shell(&command)?;
    let mut child = exec::own_group(&mut cmd).spawn().context("cannot start the process")?;
    let code = match exec::supervise(&mut child, None)? {
        Ended::Exited(s) | Ended::Interrupted(s) => {
            s.code().unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0))
        }
        Ended::TimedOut => unreachable!("no timeout was set"),
    };
    Ok(code)
}

/// `slipway test DIR [EXPECTED]`: whether `GET path` answered the expected body.
pub fn test(
    dir: &Path,
    expected: Option<String>,
    path: &str,
    explicit: Vec<String>,
    toml: Option<&Path>,
) -> Result<bool> {
    let expected = expected.unwrap_or_else(|| app_name(dir));
    let ws = workspace()?;
    let opts = host_options(dir, ws.path(), explicit, toml)?;
    pipeline::build(&opts)?.print_summary();
    let command = process::procfile_command(&opts.build_dir, "web")?;
    let port = crate::net::free_port()?;
    let pe = ProcessEnv {
        app_dir: opts.build_dir.clone(),
        env_dir: None,
        vars: Vars::new(),
        user: None,
        system_profile: false,
    };
    let mut running = smoke::start_web(&pe, &command, port)?;
    let (body, took) = smoke::wait_for_answer(&mut running, port, path, Duration::from_secs(60))?;
    if body.trim() == expected.trim() {
        output::header(format!(
            "Test passed: GET {path} answered {:?} ({} after start)",
            body.trim(),
            output::duration(took)
        ));
        Ok(true)
    } else {
        output::warn(format!("Test failed: GET {path} answered {:?}, expected {:?}", body.trim(), expected.trim()));
        Ok(false)
    }
}
