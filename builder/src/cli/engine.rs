//! The engine's commands as clap types: herokuish's surface (`buildpack`, `procfile`, `slug`),
//! `runtime`, and `stack`, mapped onto `engine::herokuish` and the containers layer. Buildpack
//! builds here add `--result FILE` (the structured result the host reads).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;

use crate::containers::stack::Stack;
use crate::engine::herokuish::{self, BuildRequest};
use crate::output;
use crate::units::parse_size;

#[derive(Subcommand, Debug)]
pub enum StackCommand {
    /// Build the stacks' run and build images (nothing happens when they are up to date)
    Build {
        /// Only this stack (repeatable; its name or Debian code name) [default: every stack]
        #[arg(long = "stack", value_name = "NAME")]
        stacks: Vec<String>,
        /// Engine binary to put in the images [default: this binary]
        #[arg(long, env = "SLIPWAY_ENGINE_BINARY")]
        engine: Option<PathBuf>,
        /// Rebuild even when the images are up to date
        #[arg(long)]
        force: bool,
        #[arg(long, env = "SLIPWAY_DEBIAN_MIRROR", default_value = "http://deb.debian.org/debian")]
        mirror: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RuntimeCommand {
    /// Install the newest Node.js satisfying an npm range (package.json's engines.node)
    Node {
        range: String,
        /// Where to unpack it (bin/node, ...)
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        /// Where downloads and the version list are kept between builds
        #[arg(long, value_name = "DIR")]
        cache_dir: PathBuf,
    },
    /// Install the newest npm satisfying an npm range (package.json's engines.npm)
    Npm {
        range: String,
        /// Where to unpack it (bin/npm-cli.js, ...)
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        /// Where downloads and the version list are kept between builds
        #[arg(long, value_name = "DIR")]
        cache_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum BuildpackCommand {
    /// Build IMPORT_PATH (or APP_PATH) into APP_PATH
    Build {
        /// Buildpack to use instead of auto-detection (repeatable; slipway's addition)
        #[arg(short = 'b', long = "buildpack", value_name = "URL")]
        buildpacks: Vec<String>,
        /// Then write the slug of APP_PATH here (slipway's addition)
        #[arg(long, value_name = "FILE")]
        slug: Option<PathBuf>,
        #[arg(long, env = "SLIPWAY_SLUG_MAX_SIZE", default_value = "1G")]
        max_size: String,
        /// Write the build's result (detected buildpacks, timings, the failure's kind) as JSON
        /// here (slipway's addition; the host reads it)
        #[arg(long, value_name = "FILE")]
        result: Option<PathBuf>,
    },
    /// Print the name of the buildpack that detects the app
    Detect { dir: Option<PathBuf> },
    /// Install a buildpack into BUILDPACK_PATH (all defaults when no URL is given)
    Install { url: Option<String>, reference: Option<String>, name: Option<String> },
    /// List the buildpacks used for detection
    List,
    /// Run the buildpack's bin/test-compile and bin/test on the app
    Test {
        /// Buildpack to use instead of auto-detection (repeatable; slipway's addition)
        #[arg(short = 'b', long = "buildpack", value_name = "URL")]
        buildpacks: Vec<String>,
        /// Write the build's result as JSON here (slipway's addition)
        #[arg(long, value_name = "FILE")]
        result: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProcfileCommand {
    /// Start a process type of the app in APP_PATH
    Start { process_type: String },
    /// Run a command with the app's environment
    Exec {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Print the command of a process type, or the whole Procfile
    Parse { process_type: Option<String> },
}

#[derive(Subcommand, Debug)]
pub enum SlugCommand {
    /// Write a slug of APP_PATH (or --app) to SLUG_PATH (or -o)
    Generate {
        #[arg(long)]
        app: Option<PathBuf>,
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(long, env = "SLIPWAY_SLUG_MAX_SIZE", default_value = "1G")]
        max_size: String,
    },
    /// Extract a slug from a file, a URL or standard input into APP_PATH
    Import {
        /// File, http(s) URL, or - for standard input [default: -]
        source: Option<String>,
        #[arg(long, default_value = "8G")]
        max_unpacked: String,
    },
    /// Write the slug to standard output, or PUT it to a URL
    Export { url: Option<String> },
    /// Print a slug's size, process types, buildpack and stack
    Inspect {
        slug: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Entry point: returns the exit code.
pub fn buildpack(cmd: BuildpackCommand, toml: Option<&Path>) -> Result<i32> {
    match cmd {
        BuildpackCommand::Build { buildpacks, slug, max_size, result } => {
            herokuish::build(BuildRequest { toml, buildpacks, slug, max_size: parse_size(&max_size)?, result })?
        }
        BuildpackCommand::Test { buildpacks, result } => {
            herokuish::test(BuildRequest { toml, buildpacks, slug: None, max_size: 0, result })?
        }
        BuildpackCommand::Detect { dir } => return Ok(if herokuish::detect(dir, toml)? { 0 } else { 1 }),
        BuildpackCommand::Install { url, reference, name } => herokuish::install(url, reference, name, toml)?,
        BuildpackCommand::List => herokuish::list(toml)?,
    }
    Ok(0)
}

pub fn procfile(cmd: ProcfileCommand) -> Result<i32> {
    match cmd {
        ProcfileCommand::Start { process_type } => herokuish::procfile_start(&process_type)?,
        ProcfileCommand::Exec { command } => herokuish::procfile_exec(&command)?,
        ProcfileCommand::Parse { process_type } => herokuish::procfile_parse(process_type.as_deref())?,
    }
    Ok(0)
}

pub fn slug(cmd: SlugCommand) -> Result<i32> {
    match cmd {
        SlugCommand::Generate { app, output, max_size } => {
            herokuish::slug_generate(app, output, parse_size(&max_size)?)?
        }
        SlugCommand::Import { source, max_unpacked } => {
            herokuish::slug_import(source.as_deref(), parse_size(&max_unpacked)?)?
        }
        SlugCommand::Export { url } => herokuish::slug_export(url.as_deref())?,
        SlugCommand::Inspect { slug, json } => herokuish::slug_inspect(&slug, json)?,
    }
    Ok(0)
}

pub fn runtime(cmd: RuntimeCommand) -> Result<i32> {
    use crate::engine::noderuntime::{install, Runtime};
    let (runtime, range, into, cache_dir) = match cmd {
        RuntimeCommand::Node { range, into, cache_dir } => (Runtime::Node, range, into, cache_dir),
        RuntimeCommand::Npm { range, into, cache_dir } => (Runtime::Npm, range, into, cache_dir),
    };
    let installed = install(runtime, &range, &into, &cache_dir, &mut |l| output::detail(l))?;
    let origin = if installed.from_cache { "from the build cache" } else { "downloaded" };
    output::header(format!(
        "Using {} {} for {} {range:?} ({origin})",
        runtime.label(),
        installed.version,
        runtime.field()
    ));
    Ok(0)
}

pub fn stack(cmd: StackCommand) -> Result<i32> {
    let StackCommand::Build { stacks, engine, force, mirror } = cmd;
    let stacks: Vec<&Stack> = if stacks.is_empty() {
        crate::containers::stack::STACKS.iter().collect()
    } else {
        stacks.iter().map(|s| Stack::named(s)).collect::<Result<_>>()?
    };
    let engine_binary = match engine {
        Some(p) => p,
        None => std::env::current_exe().context("cannot find this binary")?,
    };
    let opts = crate::containers::stack::StackOptions { engine_binary, mirror, force };
    super::block_on(async {
        let engine = crate::containers::docker::Engine::connect().await?;
        for stack in stacks {
            crate::containers::stack::build(&engine, &opts, stack).await?;
        }
        Ok(())
    })?;
    Ok(0)
}

/// `slipway start SLUG|IMAGE TYPE`: a slug file runs on this host, anything else is an image.
pub fn start(slug: PathBuf, process_type: &str, port: Option<u16>, env: &[String]) -> Result<i32> {
    let vars = super::parse_env(env)?;
    if slug.is_file() {
        crate::engine::local::start(&slug, process_type, port, vars)
    } else {
        let image = slug.to_string_lossy().into_owned();
        super::block_on(crate::containers::run::run(&image, process_type, port.unwrap_or(5000), &vars, false))
    }
}
