//! `slipway build` and `slipway matrix`: their clap types, mapped onto the engine (local
//! builds), the containers layer (container builds) and the matrix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::containers::app_build::{self, AppBuild};
use crate::containers::build::{default_ca_bundle, Cache};
use crate::containers::stack::Stack;
use crate::engine::{defaults, local, pipeline};
use crate::units::parse_size;

#[derive(clap::Args, Debug)]
pub struct BuildEnvArgs {
    /// CA bundle handed to build containers [default: SSL_CERT_FILE or the system bundle]
    #[arg(long, env = "SLIPWAY_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// The stack to build on: its images, and the STACK buildpacks see (see `slipway
    /// stack:list`) [default: slipway-trixie]
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// The image buildpacks run in [default: the stack's build image; without --stack,
    /// SLIPWAY_BUILD_IMAGE when set]
    #[arg(long, value_name = "IMAGE")]
    pub build_image: Option<String>,
    /// The image release images are made on [default: the stack's run image; without --stack,
    /// SLIPWAY_RUN_IMAGE when set]
    #[arg(long, value_name = "IMAGE")]
    pub run_image: Option<String>,
    /// Stop a buildpack script after this many seconds
    #[arg(long, env = "SLIPWAY_COMPILE_TIMEOUT", default_value_t = 900, value_name = "SECS")]
    pub timeout: u64,
}

impl BuildEnvArgs {
    /// `--stack`'s stack, else the default.
    pub fn stack(&self) -> Result<&'static Stack> {
        self.stack.as_deref().map_or(Ok(Stack::default_stack()), Stack::named)
    }

    /// The flag, else `--stack`'s image, else the environment's, else the default stack's: a
    /// stack asked for on the command line is never overridden by a variable set long ago.
    fn image(&self, flag: &Option<String>, var: &str, of_stack: fn(&Stack) -> String) -> Result<String> {
        if let Some(image) = flag {
            return Ok(image.clone());
        }
        if self.stack.is_none() {
            if let Some(image) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                return Ok(image);
            }
        }
        Ok(of_stack(self.stack()?))
    }

    pub fn build_image(&self) -> Result<String> {
        self.image(&self.build_image, "SLIPWAY_BUILD_IMAGE", Stack::build_image)
    }

    pub fn run_image(&self) -> Result<String> {
        self.image(&self.run_image, "SLIPWAY_RUN_IMAGE", Stack::run_image)
    }
}

#[derive(Parser, Debug)]
pub struct BuildArgs {
    /// The app's source directory
    pub dir: PathBuf,
    /// Where to write the slug [default: ./NAME.slug.tgz]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Buildpack to use instead of auto-detection (repeat to run several in order)
    #[arg(short = 'b', long = "buildpack", value_name = "URL")]
    pub buildpacks: Vec<String>,
    /// Config var for the build, given to buildpacks through ENV_DIR (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Keep the buildpack cache here between builds [default: a fresh temp dir]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Build on this host instead of in a build-image container
    #[arg(long)]
    pub local: bool,
    /// The app's name (cache volume, image name) [default: the directory's name]
    #[arg(long)]
    pub app: Option<String>,
    /// Start with an empty buildpack cache (container builds keep one per app)
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Memory limit of the build container, e.g. 2G
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU limit of the build container, e.g. 1.5
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Pass the -e config vars to a Dockerfile build as build args
    #[arg(long)]
    pub build_args: bool,
    /// Name of the release image [default: slipway-app/APP:latest]
    #[arg(long, value_name = "NAME:TAG")]
    pub image: Option<String>,
    /// Do not make a release image (container builds)
    #[arg(long)]
    pub no_image: bool,
    #[command(flatten)]
    pub images: BuildEnvArgs,
    /// Refuse slugs larger than this (compressed)
    #[arg(long, env = "SLIPWAY_SLUG_MAX_SIZE", default_value = "1G", value_name = "SIZE")]
    pub max_size: String,
    /// Print a machine-readable summary as the last line
    #[arg(long)]
    pub json: bool,
}

#[derive(Parser, Debug)]
pub struct MatrixArgs {
    /// Fixture app directories to run [default: every buildpack's fixtures under --fixtures]
    pub dirs: Vec<PathBuf>,
    /// Where the fixtures live: FIXTURES/<buildpack>/<app>/
    #[arg(long, default_value = "fixtures", value_name = "DIR")]
    pub fixtures: PathBuf,
    /// Only this buildpack's fixtures (repeatable)
    #[arg(short = 'b', long = "buildpack", value_name = "NAME")]
    pub buildpacks: Vec<String>,
    /// Run a third-party buildpack (git URL#ref, tarball, directory) against the fixture
    /// directories given
    #[arg(long, value_name = "URL#REF", requires = "dirs")]
    pub external: Option<String>,
    /// Fixtures run at once [default: the number of cores]
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// Write a JUnit XML report here
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown report here
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the outcomes as JSON here
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub images: BuildEnvArgs,
}

/// `slipway build DIR`: in a build container (the default) or on this host (`--local`).
pub fn build(args: BuildArgs, toml: Option<&Path>) -> Result<i32> {
    let config = super::parse_env(&args.env)?;
    let max_size = parse_size(&args.max_size)?;
    if args.local {
        local::build(local::LocalBuild {
            dir: &args.dir,
            output: args.output,
            buildpacks: args.buildpacks,
            config,
            cache_dir: args.cache_dir,
            // Any name goes on this host (it is only what buildpacks see in STACK).
            stack: match args.images.stack.or_else(|| std::env::var("STACK").ok()) {
                Some(name) => Stack::named(&name).map(|s| s.name.to_string()).unwrap_or(name),
                None => pipeline::DEFAULT_STACK.into(),
            },
            timeout: Duration::from_secs(args.images.timeout),
            max_size,
            toml,
            json: args.json,
        })?;
        return Ok(0);
    }
    let dir =
        args.dir.canonicalize().with_context(|| format!("app directory {} does not exist", args.dir.display()))?;
    let app = app_build::sanitize_app_name(&args.app.clone().unwrap_or_else(|| local::app_name(&dir)));
    let cache = match (args.cache_dir, args.no_cache) {
        (Some(d), _) => Cache::HostDir(d),
        (None, true) => Cache::None,
        (None, false) => Cache::Volume,
    };
    let request = AppBuild {
        source_version: std::env::var("SOURCE_VERSION").ok().or_else(|| pipeline::git_revision(&dir)),
        dir,
        app,
        output: args.output,
        buildpacks: args.buildpacks,
        config,
        cache,
        memory: args.memory.as_deref().map(parse_size).transpose()?,
        cpus: args.cpus,
        build_args: args.build_args,
        image: args.image,
        no_image: args.no_image,
        build_image: args.images.build_image()?,
        run_image: args.images.run_image()?,
        ca_bundle: args.images.ca_bundle.or_else(default_ca_bundle),
        timeout: Duration::from_secs(args.images.timeout),
        max_size,
    };
    let summary = super::block_on(app_build::build(request))?;
    if args.json {
        println!("{summary}");
    }
    Ok(0)
}

/// `slipway matrix`
pub fn matrix(args: MatrixArgs, toml: Option<&Path>) -> Result<i32> {
    crate::matrix::run_command(crate::matrix::Command {
        dirs: args.dirs,
        fixtures_root: args.fixtures,
        only: args.buildpacks,
        external: args.external,
        jobs: args.jobs,
        junit: args.junit,
        markdown: args.markdown,
        json: args.json,
        defaults: defaults::load(toml)?,
        build_image: args.images.build_image()?,
        run_image: args.images.run_image()?,
        stack: args.images.stack()?,
        ca_bundle: args.images.ca_bundle.or_else(default_ca_bundle),
        timeout: Duration::from_secs(args.images.timeout),
    })
}
