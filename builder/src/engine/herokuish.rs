//! herokuish's surface, over the engine: `buildpack build|test|detect|install|list`,
//! `procfile start|exec|parse` and `slug generate|import|export|inspect`, with herokuish's
//! paths ([`Paths`]) and, started as root, the build and the processes run as the app user.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::defaults::{self, DefaultBuildpack};
use super::envdir::Vars;
use super::local::workspace;
use super::paths::Paths;
use super::pipeline::{self, BuildOptions, Mode};
use super::process::{self, ProcessEnv};
use super::result::{BuildFailure, BuildResult};
use super::source::Source;
use super::{slug, user};
use crate::output;

/// The defaults in herokuish mode: installed buildpacks first, else the list.
/// The Heroku stack this image's stack stands in for (the image's SLIPWAY_HEROKU_STACK).
fn heroku_stack() -> Option<String> {
    std::env::var("SLIPWAY_HEROKU_STACK").ok().filter(|s| !s.is_empty())
}

fn defaults_for(paths: &Paths, toml: Option<&Path>) -> Result<Vec<DefaultBuildpack>> {
    let installed = defaults::installed(&paths.buildpacks);
    if installed.is_empty() {
        defaults::load(toml)
    } else {
        Ok(installed)
    }
}

fn options(paths: &Paths, toml: Option<&Path>, ws: &Path, mode: Mode, explicit: Vec<String>) -> Result<BuildOptions> {
    let source_dir = if paths.import.is_dir() { paths.import.clone() } else { paths.app.clone() };
    Ok(BuildOptions {
        source_dir,
        build_dir: paths.build.clone(),
        cache_dir: paths.cache.clone(),
        env_dir: paths.env.clone(),
        fetch_dir: ws.join("buildpacks"),
        home: paths.app.clone(),
        explicit,
        defaults: defaults_for(paths, toml)?,
        stack: std::env::var("STACK").unwrap_or_else(|_| pipeline::DEFAULT_STACK.into()),
        heroku_stack: heroku_stack(),
        source_version: std::env::var("SOURCE_VERSION").ok().filter(|s| !s.is_empty()),
        timeout: Some(
            std::env::var("SLIPWAY_COMPILE_TIMEOUT")
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Duration::from_secs)
                .unwrap_or(pipeline::DEFAULT_TIMEOUT),
        ),
        user: user::unprivileged()?,
        mode,
    })
}

/// What `buildpack build` and `buildpack test` are asked to do.
pub struct BuildRequest<'a> {
    pub toml: Option<&'a Path>,
    pub buildpacks: Vec<String>,
    /// Write the slug of APP_PATH here (build only).
    pub slug: Option<PathBuf>,
    pub max_size: u64,
    /// Write the [`BuildResult`] here, whatever happens.
    pub result: Option<PathBuf>,
}

/// `buildpack build`: IMPORT_PATH (or APP_PATH) built into APP_PATH, then its slug.
pub fn build(req: BuildRequest<'_>) -> Result<()> {
    recorded(&req, |rec| {
        let paths = Paths::from_env();
        let ws = workspace()?;
        let opts = options(&paths, req.toml, ws.path(), Mode::Build, req.buildpacks.clone())?;
        std::fs::create_dir_all(&paths.app)?;
        if let Some(u) = &opts.user {
            if !u.owns(&paths.app) {
                u.chown(&paths.app)?;
            }
        }
        let mut report = pipeline::build_recorded(&opts, rec)?;
        super::fsutil::move_contents(&opts.build_dir, &paths.app, opts.user.as_ref())?;
        if let Some(out) = &req.slug {
            let t = Instant::now();
            let stats = slug::generate(&paths.app, out, req.max_size)?;
            report.phases.push(("slug".into(), t.elapsed()));
            report.total += t.elapsed();
            rec.slug_size = Some(stats.compressed);
            output::header(format!("Compressed slug: {}", output::size(stats.compressed)));
        }
        for (name, took) in &report.phases {
            rec.phase(name.clone(), *took);
        }
        report.print_summary();
        Ok(())
    })
}

/// `buildpack test`: Heroku CI's test build (`bin/test-compile`, then `bin/test`).
pub fn test(req: BuildRequest<'_>) -> Result<()> {
    recorded(&req, |rec| {
        let paths = Paths::from_env();
        let ws = workspace()?;
        let opts = options(&paths, req.toml, ws.path(), Mode::Test, req.buildpacks.clone())?;
        pipeline::build_recorded(&opts, rec)?.print_summary();
        Ok(())
    })
}

/// Runs `work`, then writes what it recorded (and its failure) where the request says.
fn recorded(req: &BuildRequest<'_>, work: impl FnOnce(&mut BuildResult) -> Result<()>) -> Result<()> {
    let mut rec = BuildResult::default();
    let outcome = work(&mut rec);
    if let Some(path) = &req.result {
        if let Err(e) = &outcome {
            rec.error = Some(BuildFailure::from_error(e));
        }
        // The build's own error says more than a result that could not be written.
        if let Err(e) = rec.write(path) {
            output::warn(format!("cannot write the build result: {e:#}"));
        }
    }
    outcome
}

/// `herokuish test [PATH] [EXPECTED]`, as herokuish does it: builds the app (IMPORT_PATH, else
/// APP_PATH) into APP_PATH, starts `web` with PORT 5678 and GETs PATH (default `/`); given
/// EXPECTED, the body must be exactly that, else exit status 2.
pub fn test_app(path: Option<String>, expected: Option<String>, toml: Option<&Path>) -> Result<i32> {
    const PORT: u16 = 5678;
    let path = path.unwrap_or_else(|| "/".into());
    println!("::: BUILDING APP :::");
    build(BuildRequest { toml, buildpacks: Vec::new(), slug: None, max_size: 0, result: None })?;
    println!("::: STARTING WEB :::");
    let paths = Paths::from_env();
    let command = process::procfile_command(&paths.app, "web")?;
    let mut running = super::smoke::start_web(&process_env(&paths, Some("web"))?, &command, PORT)?;
    println!("::: CHECKING APP :::");
    let (body, _) = super::smoke::wait_for_answer(&mut running, PORT, &path, Duration::from_secs(60))?;
    if let Some(expected) = expected {
        println!("::: APP OUTPUT :::");
        println!("{}", body.trim_end_matches('\n'));
        if body.trim_end_matches('\n') != expected {
            println!("::: TEST FAILED :::");
            return Ok(2);
        }
    }
    println!("::: TEST FINISHED :::");
    Ok(0)
}

/// herokuish's `version`: the version, then the default buildpacks and theirs.
pub fn version(toml: Option<&Path>) -> Result<()> {
    println!("slipway {} (herokuish-compatible)", env!("CARGO_PKG_VERSION"));
    println!("buildpacks:");
    for d in defaults_for(&Paths::from_env(), toml)? {
        let version = d.version.map(|v| format!("v{v}")).unwrap_or_else(|| "-".into());
        println!("  {:<26} {version}", d.name);
    }
    Ok(())
}

/// `buildpack detect [DIR]`: prints the name of the first default that detects the app (by
/// default the directory `buildpack build` builds: IMPORT_PATH, else APP_PATH).
pub fn detect(dir: Option<PathBuf>, toml: Option<&Path>) -> Result<bool> {
    let paths = Paths::from_env();
    let dir = dir.unwrap_or_else(|| if paths.import.is_dir() { paths.import.clone() } else { paths.app.clone() });
    let ws = workspace()?;
    let env = super::buildpack::ScriptEnv { timeout: Some(Duration::from_secs(60)), ..Default::default() };
    let defaults = defaults_for(&paths, toml)?;
    // The buildpacks the app chooses, as `buildpack build` would use them.
    if let Some(names) = pipeline::detect_chosen(&dir, &defaults, ws.path(), &env, heroku_stack())? {
        for name in names {
            println!("{name}");
        }
        return Ok(true);
    }
    if let Some(bp) = pipeline::detect_defaults(&defaults, &dir, ws.path(), &env, true)?.first() {
        println!("{}", bp.name);
        return Ok(true);
    }
    output::warn(format!("No buildpack detected {}", dir.display()));
    Ok(false)
}

/// `buildpack install [URL [REF [NAME]]]`: into BUILDPACK_PATH (every default without a URL).
pub fn install(
    url: Option<String>,
    reference: Option<String>,
    name: Option<String>,
    toml: Option<&Path>,
) -> Result<()> {
    let paths = Paths::from_env();
    std::fs::create_dir_all(&paths.buildpacks)?;
    let to_install: Vec<(String, Source)> = match url {
        None => defaults::load(toml)?
            .into_iter()
            .enumerate()
            .map(|(i, d)| (format!("{:02}_{}", i + 1, d.name), d.source))
            .collect(),
        Some(url) => {
            let spec = match reference {
                Some(r) => format!("{url}#{r}"),
                None => url,
            };
            let source = Source::parse(&spec, &std::env::current_dir()?)?;
            vec![(name.unwrap_or_else(|| source.short_name()), source)]
        }
    };
    for (name, source) in to_install {
        let dest = paths.buildpacks.join(&name);
        if dest.exists() {
            std::fs::remove_dir_all(&dest)?;
        }
        let ws = workspace()?;
        let root = source.fetch(&ws.path().join("bp"))?;
        super::fsutil::copy_tree(&root, &dest, None, |p, _| p == Path::new(".git"))?;
        output::header(format!("Installed buildpack {name} from {}", source.describe()));
    }
    Ok(())
}

/// `buildpack list`
pub fn list(toml: Option<&Path>) -> Result<()> {
    for d in defaults_for(&Paths::from_env(), toml)? {
        let version = d.version.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        println!("{:<12} {:<10} {}", d.name, version, d.source.describe());
    }
    Ok(())
}

fn process_env(paths: &Paths, process_type: Option<&str>) -> Result<ProcessEnv> {
    let mut vars = Vars::new();
    if std::env::var_os("PORT").is_none() {
        vars.insert("PORT".into(), "5000".into());
    }
    if let (Some(t), None) = (process_type, std::env::var_os("DYNO")) {
        vars.insert("DYNO".into(), format!("{t}.1"));
    }
    // USER names who the process runs as, as login shells say.
    let user = user::unprivileged()?;
    let name = user.as_ref().map(|u| u.name.clone()).unwrap_or_else(crate::sys::user_name);
    vars.insert("USER".into(), name);
    Ok(ProcessEnv { app_dir: paths.app.clone(), env_dir: Some(paths.env.clone()), vars, user, system_profile: true })
}

/// `procfile start TYPE` (`/start TYPE`): replaces this process with the process type.
pub fn procfile_start(process_type: &str) -> Result<()> {
    let paths = Paths::from_env();
    let command = process::procfile_command(&paths.app, process_type)?;
    let err = process_env(&paths, Some(process_type))?.shell(&command)?.exec();
    bail!("cannot start {process_type}: {err}")
}

/// `procfile exec CMD...` (`/exec CMD`): replaces this process with CMD in the app's environment.
pub fn procfile_exec(command: &[String]) -> Result<()> {
    let paths = Paths::from_env();
    let err = process_env(&paths, None)?.command(command)?.exec();
    bail!("cannot run {}: {err}", command[0])
}

/// `procfile parse [TYPE]`
pub fn procfile_parse(process_type: Option<&str>) -> Result<()> {
    let paths = Paths::from_env();
    match process_type {
        Some(t) => println!("{}", process::procfile_command(&paths.app, t)?),
        None => match super::procfile::Procfile::read(&paths.app)? {
            Some(p) => print!("{p}"),
            None => bail!("{} has no Procfile", paths.app.display()),
        },
    }
    Ok(())
}

/// `slug generate [--app DIR] [-o FILE]`
pub fn slug_generate(app: Option<PathBuf>, out: Option<PathBuf>, max_size: u64) -> Result<()> {
    let paths = Paths::from_env();
    let (app, out) = (app.unwrap_or(paths.app), out.unwrap_or(paths.slug));
    let stats = slug::generate(&app, &out, max_size)?;
    output::header(format!("Slug: {} ({})", out.display(), output::size(stats.compressed)));
    Ok(())
}

/// `slug import [FILE|URL|-]`: into APP_PATH, owned by the app user.
pub fn slug_import(source: Option<&str>, max_unpacked: u64) -> Result<()> {
    let file = slug::open_input(source)?;
    let opts = slug::ImportOptions { max_unpacked, owner: user::unprivileged()? };
    slug::import_file(&file, &Paths::from_env().app, &opts)?;
    Ok(())
}

/// `slug export [URL]`: the slug (made from APP_PATH when missing) to stdout or a PUT.
pub fn slug_export(url: Option<&str>) -> Result<()> {
    let paths = Paths::from_env();
    if !paths.slug.is_file() {
        slug::generate(&paths.app, &paths.slug, slug::DEFAULT_MAX_SIZE)?;
    }
    slug::export(&paths.slug, url)
}

/// `slug inspect FILE [--json]`
pub fn slug_inspect(path: &Path, json: bool) -> Result<()> {
    let inspection = slug::inspect(path)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&inspection)?);
    } else {
        print!("{}", inspection.render());
    }
    Ok(())
}
