//! The build pipeline: source dir -> build dir -> buildpacks -> compiled app.
//!
//! 1. **Prepare**: copy the source into the build dir, leaving out the top-level `.git` and what
//!    `.slugignore` names (BEFORE compile, as on Heroku); check the Procfile early; load `.env`.
//! 2. **Select**: `--buildpack` flags, else `BUILDPACK_URL`, else `.buildpacks` (all of them run,
//!    in order), else every default buildpack's `bin/detect`, first match wins.
//! 3. **Compile**: each selected buildpack's `bin/compile BUILD CACHE ENV`, output passed through
//!    live; its `export` file is sourced for the next one.
//! 4. **Release**: the last buildpack's `bin/release` is applied (`release.rs`), and the build's
//!    metadata is written to `.slipway/build.json` for `slug inspect` and the runner.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::buildpack::{self, Buildpack, ScriptEnv};
use crate::engine::defaults::DefaultBuildpack;
use crate::engine::envdir;
use crate::engine::fsutil;
use crate::engine::procfile::Procfile;
use crate::engine::release::Release;
use crate::engine::result::BuildResult;
use crate::engine::source::Source;
use crate::engine::user::AppUser;
use crate::output;

/// Where the build's metadata lives inside the compiled app.
pub const METADATA_PATH: &str = ".slipway/build.json";

/// The stack name given to buildpacks when the environment does not set `STACK`.
pub const DEFAULT_STACK: &str = "slipway-trixie";

/// Heroku's compile limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A normal build, or Heroku CI's test build (`bin/test-compile`, then `bin/test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Build,
    Test,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub source_dir: PathBuf,
    pub build_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub env_dir: PathBuf,
    /// Where buildpacks that are not local directories are fetched to.
    pub fetch_dir: PathBuf,
    /// `HOME` for the buildpacks.
    pub home: PathBuf,
    /// Buildpacks named on the command line; they override everything else.
    pub explicit: Vec<String>,
    pub defaults: Vec<DefaultBuildpack>,
    pub stack: String,
    /// The Heroku stack `stack` stands in for (`heroku-24`), the `STACK` buildpacks that are not
    /// slipway's own see (from the image's SLIPWAY_HEROKU_STACK).
    pub heroku_stack: Option<String>,
    pub source_version: Option<String>,
    pub timeout: Option<Duration>,
    /// Run buildpacks as this user (inside the stack image, when started as root).
    pub user: Option<AppUser>,
    pub mode: Mode,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UsedBuildpack {
    pub name: String,
    pub source: String,
}

/// What a build leaves in `.slipway/build.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    pub slipway_version: String,
    pub stack: String,
    pub buildpacks: Vec<UsedBuildpack>,
    pub process_types: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BuildReport {
    pub metadata: Metadata,
    pub phases: Vec<(String, Duration)>,
    /// Time spent inside buildpack scripts; the rest is the engine's own overhead.
    pub in_buildpacks: Duration,
    pub total: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "no buildpack detected this app (tried: {tried}). Add the files a buildpack looks for, \
     or choose one with BUILDPACK_URL, a .buildpacks file or --buildpack"
)]
pub struct NothingDetected {
    pub tried: String,
}

struct Selection {
    specs: Vec<String>,
    why: &'static str,
}

/// Runs the build (see the module docs).
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    build_recorded(opts, &mut BuildResult::default())
}

/// Runs the build, recording in `rec` what the host needs to know, as it happens (so a failed
/// build still says which buildpacks detected the app).
pub fn build_recorded(opts: &BuildOptions, rec: &mut BuildResult) -> Result<BuildReport> {
    let started = Instant::now();
    let mut phases: Vec<(String, Duration)> = Vec::new();
    let mut in_buildpacks = Duration::ZERO;
    let user = opts.user.as_ref();

    // 1. Prepare
    let t = Instant::now();
    output::header(format!("Building on the {} stack", opts.stack));
    let (mut env, config, dotenv) = prepare(opts)?;
    phases.push(("prepare".into(), t.elapsed()));

    // 2. Select
    let t = Instant::now();
    let selection = select(opts, &config, &dotenv)?;
    let buildpacks = match &selection {
        Some(sel) => fetch_selected(opts, sel, &env, rec)?,
        None => vec![detect_default(opts, &env, rec)?],
    };
    let detect_time = t.elapsed();
    phases.push(("detect".into(), detect_time));
    in_buildpacks += detect_time;

    // 3. Compile
    let many = buildpacks.len() > 1;
    for (i, bp) in buildpacks.iter().enumerate() {
        if many {
            output::header(format!("Buildpack {} of {}: {}", i + 1, buildpacks.len(), bp.name));
        }
        let t = Instant::now();
        match opts.mode {
            Mode::Build => bp.compile(&opts.build_dir, &opts.cache_dir, &opts.env_dir, &env)?,
            Mode::Test if bp.has("test-compile") => {
                bp.test_compile(&opts.build_dir, &opts.cache_dir, &opts.env_dir, &env)?
            }
            Mode::Test => bail!("buildpack {} has no bin/test-compile, so it cannot run tests", bp.name),
        }
        let exported = bp.exported(&env)?;
        env.vars.extend(exported);
        let took = t.elapsed();
        in_buildpacks += took;
        phases.push((format!("compile ({})", bp.name), took));
    }

    let last = buildpacks.last().expect("at least one buildpack was selected");
    if opts.mode == Mode::Test {
        if !last.has("test") {
            bail!("buildpack {} has no bin/test", last.name);
        }
        output::header(format!("Running tests with {}", last.name));
        let t = Instant::now();
        last.test(&opts.build_dir, &opts.env_dir, &env)?;
        phases.push(("test".into(), t.elapsed()));
        output::header("Tests passed");
    }

    // 4. Release
    let t = Instant::now();
    let procfile = match last.release(&opts.build_dir, &env)? {
        Some(yaml) => {
            let release = Release::parse(&yaml)?;
            release.apply(&yaml, &opts.build_dir)?
        }
        None => Procfile::read(&opts.build_dir)?.unwrap_or_default(),
    };
    let release_time = t.elapsed();
    in_buildpacks += release_time;
    let metadata = Metadata {
        slipway_version: env!("CARGO_PKG_VERSION").into(),
        stack: opts.stack.clone(),
        buildpacks: buildpacks
            .iter()
            .map(|b| UsedBuildpack { name: b.name.clone(), source: b.source.clone() })
            .collect(),
        process_types: procfile.processes.iter().map(|p| (p.name.clone(), p.command.clone())).collect(),
        source_version: opts.source_version.clone(),
    };
    write_metadata(&opts.build_dir, &metadata, user)?;
    rec.metadata = Some(metadata.clone());
    phases.push(("release".into(), t.elapsed()));

    if procfile.processes.is_empty() {
        output::warn("This app has no process types: add a Procfile (e.g. `web: ./server`) so it can be started.");
    } else {
        output::header(format!(
            "Discovering process types\n       Procfile declares types -> {}",
            procfile.names().join(", ")
        ));
    }
    Ok(BuildReport { metadata, phases, in_buildpacks, total: started.elapsed() })
}

/// Step 1: the source copied into the build dir, the dirs made, the buildpacks' environment.
/// Returns it, the config vars and the app's `.env`.
fn prepare(opts: &BuildOptions) -> Result<(ScriptEnv, envdir::Vars, envdir::Vars)> {
    let user = opts.user.as_ref();
    if !opts.source_dir.is_dir() {
        bail!("app directory {} does not exist", opts.source_dir.display());
    }
    if let Some(p) = Procfile::read(&opts.source_dir)? {
        for w in &p.warnings {
            output::warn(w);
        }
    }
    fsutil::clear_dir(&opts.build_dir)?;
    copy_source(&opts.source_dir, &opts.build_dir, user)?;
    for dir in [&opts.cache_dir, &opts.env_dir, &opts.home, &opts.fetch_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if let Some(u) = user {
        for dir in [&opts.cache_dir, &opts.home] {
            if !u.owns(dir) {
                u.chown(dir)?;
            }
        }
    }
    let dotenv = envdir::read_dotenv(&opts.build_dir)?;
    let config = envdir::read(&opts.env_dir)?;
    let mut env = ScriptEnv { vars: BTreeMap::new(), user: opts.user.clone(), timeout: opts.timeout };
    env.vars.extend(dotenv.clone());
    env.vars.insert("STACK".into(), opts.stack.clone());
    env.vars.insert("HOME".into(), opts.home.to_string_lossy().into_owned());
    env.vars.insert("REQUEST_ID".into(), request_id());
    // Buildpacks may call the engine's helpers (`$SLIPWAY runtime node RANGE ...`).
    if let Ok(exe) = std::env::current_exe() {
        env.vars.insert("SLIPWAY".into(), exe.to_string_lossy().into_owned());
    }
    if let Some(v) = &opts.source_version {
        env.vars.insert("SOURCE_VERSION".into(), v.clone());
    }
    // The first-party buildpacks' shared helpers (`buildpacks/lib/buildpack.sh`); set last so
    // that an app's `.env` cannot point it elsewhere.
    let lib = opts.fetch_dir.join("buildpack-lib.sh");
    std::fs::write(&lib, crate::engine::defaults::BUILDPACK_LIB).context("cannot write the buildpack helpers")?;
    env.vars.insert("SLIPWAY_BUILDPACK_LIB".into(), lib.to_string_lossy().into_owned());
    Ok((env, config, dotenv))
}

impl BuildReport {
    /// `-----> Build finished in 1.20s (prepare 4ms, detect 10ms, compile (static) 1.1s, ...)`
    pub fn print_summary(&self) {
        let parts: Vec<String> = self.phases.iter().map(|(n, d)| format!("{n} {}", output::duration(*d))).collect();
        output::header(format!("Build finished in {} ({})", output::duration(self.total), parts.join(", ")));
    }
}

fn copy_source(source: &Path, build: &Path, user: Option<&AppUser>) -> Result<()> {
    let ignore_file = source.join(".slugignore");
    let slugignore = if ignore_file.is_file() {
        let mut b = ignore::gitignore::GitignoreBuilder::new(source);
        if let Some(err) = b.add(&ignore_file) {
            bail!(".slugignore is not valid: {err}");
        }
        Some(b.build().context(".slugignore is not valid")?)
    } else {
        None
    };
    fsutil::copy_tree(source, build, user, |rel, is_dir| {
        rel == Path::new(".git") || slugignore.as_ref().is_some_and(|g| g.matched(rel, is_dir).is_ignore())
    })
    .context("cannot copy the app into the build dir")
}

/// Explicit choices, in precedence order; `None` means auto-detect.
fn select(opts: &BuildOptions, config: &envdir::Vars, dotenv: &envdir::Vars) -> Result<Option<Selection>> {
    if !opts.explicit.is_empty() {
        return Ok(Some(Selection { specs: opts.explicit.clone(), why: "--buildpack" }));
    }
    app_choice(&opts.build_dir, config, dotenv)
}

/// What the app itself chooses: BUILDPACK_URL (the environment, then config, then `.env`), else
/// `.buildpacks`.
fn app_choice(app_dir: &Path, config: &envdir::Vars, dotenv: &envdir::Vars) -> Result<Option<Selection>> {
    let url = std::env::var("BUILDPACK_URL")
        .ok()
        .or_else(|| config.get("BUILDPACK_URL").cloned())
        .or_else(|| dotenv.get("BUILDPACK_URL").cloned())
        .filter(|u| !u.trim().is_empty());
    if let Some(url) = url {
        return Ok(Some(Selection { specs: vec![url], why: "BUILDPACK_URL" }));
    }
    if let Some(lines) = buildpack::read_dot_buildpacks(app_dir)? {
        if lines.is_empty() {
            bail!(".buildpacks lists no buildpack: add one source a line, or remove the file to auto-detect");
        }
        return Ok(Some(Selection { specs: lines, why: ".buildpacks" }));
    }
    Ok(None)
}

/// herokuish's `buildpack detect` for an app that chooses its buildpacks (BUILDPACK_URL,
/// `.buildpacks`): each one fetched under `fetch_dir` and named as its bin/detect says (its
/// directory's name when it does not match: a chosen buildpack runs anyway). None when the app
/// chooses nothing.
pub fn detect_chosen(
    app_dir: &Path,
    defaults: &[DefaultBuildpack],
    fetch_dir: &Path,
    env: &ScriptEnv,
    heroku_stack: Option<String>,
) -> Result<Option<Vec<String>>> {
    let dotenv = envdir::read_dotenv(app_dir)?;
    let Some(sel) = app_choice(app_dir, &envdir::Vars::new(), &dotenv)? else { return Ok(None) };
    let mut names = Vec::new();
    for (i, spec) in sel.specs.iter().enumerate() {
        let source = resolve(spec, defaults, app_dir)?;
        let mut bp = fetch_into(&source, fetch_dir, env.user.as_ref(), i)
            .with_context(|| format!("buildpack {spec:?} (from {})", sel.why))?;
        bp.stack = stack_for(&source, defaults, &heroku_stack);
        names.push(bp.detect(app_dir, env)?.unwrap_or_else(|| bp.name.clone()));
    }
    Ok(Some(names))
}

/// A default buildpack's name, or a source; a relative path is relative to `base` (the current
/// directory on the command line; the app in `.buildpacks`, `.env` or config).
fn resolve(spec: &str, defaults: &[DefaultBuildpack], base: &Path) -> Result<Source> {
    if let Some(d) = defaults.iter().find(|d| d.name == spec) {
        return Ok(d.source.clone());
    }
    Source::parse(spec, base)
}

/// The `STACK` a chosen buildpack's scripts get instead of the build's: the Heroku stack, unless
/// it is one of slipway's own (a default).
fn stack_for(source: &Source, defaults: &[DefaultBuildpack], heroku_stack: &Option<String>) -> Option<String> {
    if defaults.iter().any(|d| d.source == *source) {
        None
    } else {
        heroku_stack.clone()
    }
}

fn fetch(source: &Source, opts: &BuildOptions, index: usize) -> Result<Buildpack> {
    fetch_into(source, &opts.fetch_dir, opts.user.as_ref(), index)
}

fn fetch_into(source: &Source, fetch_dir: &Path, user: Option<&AppUser>, index: usize) -> Result<Buildpack> {
    let dest = fetch_dir.join(format!("{index:02}-{}", source.short_name()));
    let _ = std::fs::remove_dir_all(&dest);
    let dir = source.fetch(&dest)?;
    if let (Some(u), false) = (user, matches!(source, Source::Local(_))) {
        for entry in walkdir::WalkDir::new(&dest) {
            u.chown(entry?.path())?;
        }
    }
    let mut bp = Buildpack::new(dir, source.describe());
    bp.name = source.short_name();
    Ok(bp)
}

fn fetch_selected(
    opts: &BuildOptions,
    sel: &Selection,
    env: &ScriptEnv,
    rec: &mut BuildResult,
) -> Result<Vec<Buildpack>> {
    let mut out = Vec::new();
    for (i, spec) in sel.specs.iter().enumerate() {
        let base = if sel.why == "--buildpack" { std::env::current_dir()? } else { opts.build_dir.clone() };
        let source =
            resolve(spec, &opts.defaults, &base).with_context(|| format!("buildpack {spec:?} (from {})", sel.why))?;
        let mut bp = fetch(&source, opts, i)?;
        bp.stack = stack_for(&source, &opts.defaults, &opts.heroku_stack);
        match bp.detect(&opts.build_dir, env)? {
            Some(name) => {
                bp.name = name;
                output::header(format!("{} app detected", bp.name));
                rec.detected.push(bp.name.clone());
            }
            None => {
                rec.undetected.push(bp.name.clone());
                output::header(format!(
                    "Using buildpack {} (set by {}; its bin/detect did not match, running it anyway)",
                    bp.name, sel.why
                ))
            }
        }
        out.push(bp);
    }
    Ok(out)
}

/// The default buildpacks whose bin/detect matches `app_dir`, in the default order, each named
/// as its bin/detect said (fetched under `fetch_dir`). With `first_only`, it stops at the first.
pub fn detect_defaults(
    defaults: &[DefaultBuildpack],
    app_dir: &Path,
    fetch_dir: &Path,
    env: &ScriptEnv,
    first_only: bool,
) -> Result<Vec<Buildpack>> {
    let mut matches: Vec<Buildpack> = Vec::new();
    for (i, d) in defaults.iter().enumerate() {
        let mut bp = fetch_into(&d.source, fetch_dir, env.user.as_ref(), i)?;
        bp.name = d.name.clone();
        bp.source = match &d.version {
            Some(v) => format!("{}@{v} (default)", d.name),
            None => d.source.describe(),
        };
        if let Some(name) = bp.detect(app_dir, env)? {
            bp.name = name;
            matches.push(bp);
            if first_only {
                break;
            }
        }
    }
    Ok(matches)
}

fn detect_default(opts: &BuildOptions, env: &ScriptEnv, rec: &mut BuildResult) -> Result<Buildpack> {
    let matches = detect_defaults(&opts.defaults, &opts.build_dir, &opts.fetch_dir, env, false)?;
    let mut matches = matches.into_iter();
    let Some(chosen) = matches.next() else {
        let tried: Vec<&str> = opts.defaults.iter().map(|d| d.name.as_str()).collect();
        return Err(NothingDetected { tried: tried.join(", ") }.into());
    };
    output::header(format!("{} app detected", chosen.name));
    rec.detected.push(chosen.name.clone());
    let others: Vec<String> = matches.map(|b| b.name).collect();
    if !others.is_empty() {
        output::detail(format!(
            "{} also matched; {} comes first in the default order (choose with BUILDPACK_URL or .buildpacks)",
            others.join(", "),
            chosen.name
        ));
    }
    Ok(chosen)
}

fn write_metadata(app_dir: &Path, metadata: &Metadata, user: Option<&AppUser>) -> Result<()> {
    let dir = app_dir.join(".slipway");
    std::fs::create_dir_all(&dir)?;
    let path = app_dir.join(METADATA_PATH);
    std::fs::write(&path, serde_json::to_string_pretty(metadata)? + "\n").context("cannot write build metadata")?;
    if let Some(u) = user {
        u.chown(&dir)?;
        u.chown(&path)?;
    }
    Ok(())
}

fn request_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{:016x}{:08x}", nanos as u64, std::process::id())
}

/// The git sha of a source checkout, when it is one.
pub fn git_revision(dir: &Path) -> Option<String> {
    if !dir.join(".git").exists() {
        return None;
    }
    let out = std::process::Command::new("git").arg("-C").arg(dir).args(["rev-parse", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testutil::{fake_buildpack, write_script};

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        opts: BuildOptions,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let app = root.join("app");
        std::fs::create_dir_all(&app).unwrap();
        let opts = BuildOptions {
            source_dir: app,
            build_dir: root.join("build"),
            cache_dir: root.join("cache"),
            env_dir: root.join("env"),
            fetch_dir: root.join("fetched"),
            home: root.join("home"),
            explicit: Vec::new(),
            defaults: Vec::new(),
            stack: "test-stack".into(),
            heroku_stack: None,
            source_version: Some("abc123".into()),
            timeout: Some(Duration::from_secs(30)),
            user: None,
            mode: Mode::Build,
        };
        Fixture { _tmp: tmp, root, opts }
    }

    fn default_from(bp: &Buildpack) -> DefaultBuildpack {
        DefaultBuildpack { name: bp.name.clone(), version: None, source: Source::Local(bp.dir.clone()) }
    }

    #[test]
    fn dot_buildpacks_runs_all_in_order_passing_exports_and_last_release_wins() {
        let f = fixture();
        let bps = f.root.join("bps");
        let one = fake_buildpack(
            &bps,
            "one",
            "exit 1", // explicit buildpacks run even when they do not detect
            "echo one > \"$1/one.txt\"",
            Some("export ONE_HOME=/app/.one\nexport PATH=\"/app/.one/bin:$PATH\"\n"),
        );
        write_script(&one.dir.join("bin/release"), "echo 'default_process_types: {web: from-one}'");
        let two = fake_buildpack(
            &bps,
            "two",
            "echo Two",
            "set -e; [ -n \"$ONE_HOME\" ]; echo \"$ONE_HOME|${PATH%%:*}|$STACK|$SOURCE_VERSION|$HOME|${SECRET:-unset}|$(cat $3/SECRET)|$FROM_DOTENV|${#REQUEST_ID}\" > \"$1/two.txt\"",
            None,
        );
        write_script(&two.dir.join("bin/release"), "printf -- '---\\ndefault_process_types:\\n  web: from-two\\n'");
        std::fs::write(
            f.opts.source_dir.join(".buildpacks"),
            format!("# two buildpacks\n{}\n\n{}\n", one.dir.display(), two.dir.display()),
        )
        .unwrap();
        std::fs::write(f.opts.source_dir.join(".env"), "export FROM_DOTENV=dotenv-value\n").unwrap();
        envdir::write(&f.opts.env_dir, &[("SECRET".to_string(), "s3cret".to_string())].into()).unwrap();

        let report = build(&f.opts).unwrap();
        let b = &f.opts.build_dir;
        assert_eq!(std::fs::read_to_string(b.join("one.txt")).unwrap(), "one\n");
        let two_saw = std::fs::read_to_string(b.join("two.txt")).unwrap();
        let fields: Vec<&str> = two_saw.trim().split('|').collect();
        assert_eq!(
            fields[..8],
            [
                "/app/.one",
                "/app/.one/bin",
                "test-stack",
                "abc123",
                &*f.opts.home.to_string_lossy(),
                "unset",
                "s3cret",
                "dotenv-value"
            ]
        );
        assert!(fields[8].parse::<usize>().unwrap() >= 16, "REQUEST_ID is set");
        assert_eq!(std::fs::read_to_string(b.join("Procfile")).unwrap(), "web: from-two\n");
        let names: Vec<_> = report.metadata.buildpacks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["one", "Two"]);
        assert_eq!(report.metadata.process_types["web"], "from-two");
        let written: Metadata = serde_json::from_str(&std::fs::read_to_string(b.join(METADATA_PATH)).unwrap()).unwrap();
        assert_eq!(written, report.metadata);
    }

    #[test]
    fn detection_takes_the_first_match_in_order() {
        let mut f = fixture();
        let bps = f.root.join("bps");
        let never = fake_buildpack(&bps, "never", "exit 1", "exit 99", None);
        let first = fake_buildpack(&bps, "first", "echo First", "touch \"$1/first-ran\"", None);
        let second = fake_buildpack(&bps, "second", "echo Second", "touch \"$1/second-ran\"", None);
        f.opts.defaults = vec![default_from(&never), default_from(&first), default_from(&second)];
        let report = build(&f.opts).unwrap();
        assert_eq!(report.metadata.buildpacks[0].name, "First");
        assert!(f.opts.build_dir.join("first-ran").exists());
        assert!(!f.opts.build_dir.join("second-ran").exists());
    }

    #[test]
    fn nothing_detected_names_what_was_tried() {
        let mut f = fixture();
        let never = fake_buildpack(&f.root.join("bps"), "never", "exit 1", "", None);
        f.opts.defaults = vec![default_from(&never)];
        let err = build(&f.opts).unwrap_err();
        assert!(err.downcast_ref::<NothingDetected>().is_some(), "{err}");
        assert!(err.to_string().contains("tried: never"), "{err}");
    }

    #[test]
    fn buildpack_url_beats_dot_buildpacks_and_explicit_beats_both() {
        let mut f = fixture();
        let bps = f.root.join("bps");
        let a = fake_buildpack(&bps, "a", "", "touch \"$1/a-ran\"", None);
        let b = fake_buildpack(&bps, "b", "", "touch \"$1/b-ran\"", None);
        let c = fake_buildpack(&bps, "c", "", "touch \"$1/c-ran\"", None);
        std::fs::write(f.opts.source_dir.join(".buildpacks"), format!("{}\n", a.dir.display())).unwrap();
        envdir::write(&f.opts.env_dir, &[("BUILDPACK_URL".to_string(), b.dir.display().to_string())].into()).unwrap();
        build(&f.opts).unwrap();
        assert!(f.opts.build_dir.join("b-ran").exists() && !f.opts.build_dir.join("a-ran").exists());
        f.opts.explicit = vec![c.dir.display().to_string()];
        build(&f.opts).unwrap();
        assert!(f.opts.build_dir.join("c-ran").exists() && !f.opts.build_dir.join("b-ran").exists());
    }

    #[test]
    fn slugignore_is_applied_before_compile() {
        let mut f = fixture();
        let app = &f.opts.source_dir;
        std::fs::create_dir_all(app.join("docs/deep")).unwrap();
        std::fs::create_dir_all(app.join("src/docs")).unwrap();
        std::fs::create_dir_all(app.join(".git")).unwrap();
        for file in
            ["docs/deep/a.md", "src/docs/keep.md", "art.psd", "src/art.psd", "keep.txt", "notes.log", "src/debug.log"]
        {
            std::fs::write(app.join(file), "x").unwrap();
        }
        std::fs::write(app.join(".slugignore"), "# comment\n/docs\n*.psd\nsrc/*.log\n").unwrap();
        // The compile step sees the tree already trimmed.
        let bp = fake_buildpack(
            &f.root.join("bps"),
            "lister",
            "",
            "cd \"$1\" && find . -type f | sort > /tmp/.x-$$ && mv /tmp/.x-$$ seen.txt",
            None,
        );
        f.opts.explicit = vec![bp.dir.display().to_string()];
        build(&f.opts).unwrap();
        let seen = std::fs::read_to_string(f.opts.build_dir.join("seen.txt")).unwrap();
        let files: Vec<&str> = seen.lines().collect();
        assert_eq!(files, ["./.slugignore", "./keep.txt", "./notes.log", "./src/docs/keep.md"]);
    }

    #[test]
    fn compile_failure_and_timeout_are_errors_naming_the_buildpack() {
        let mut f = fixture();
        let bps = f.root.join("bps");
        let failing = fake_buildpack(&bps, "failing", "", "echo boom >&2; exit 7", None);
        f.opts.explicit = vec![failing.dir.display().to_string()];
        let err = build(&f.opts).unwrap_err().to_string();
        assert_eq!(err, "failing bin/compile failed: exit status 7");
        let slow = fake_buildpack(&bps, "slow", "", "sleep 30", None);
        f.opts.explicit = vec![slow.dir.display().to_string()];
        f.opts.timeout = Some(Duration::from_millis(300));
        let err = build(&f.opts).unwrap_err().to_string();
        assert!(err.starts_with("slow bin/compile did not finish within"), "{err}");
    }

    #[test]
    fn test_mode_runs_test_compile_then_test() {
        let mut f = fixture();
        let bp = fake_buildpack(&f.root.join("bps"), "tested", "", "exit 1", None);
        write_script(&bp.dir.join("bin/test-compile"), "touch \"$1/test-compiled\"");
        write_script(&bp.dir.join("bin/test"), "[ -f \"$1/test-compiled\" ] && [ -d \"$2\" ]");
        f.opts.explicit = vec![bp.dir.display().to_string()];
        f.opts.mode = Mode::Test;
        build(&f.opts).unwrap();
        write_script(&bp.dir.join("bin/test"), "exit 3");
        let err = build(&f.opts).unwrap_err().to_string();
        assert_eq!(err, "tested bin/test failed: exit status 3");
    }
}
