//! The command line. Host commands (`build`, `start`, `test`) work in temp dirs as the invoking
//! user; herokuish's surface (`buildpack`, `procfile`, `slug`, `paths`, `version`) uses
//! herokuish's paths and, started as root, drops to the app user. Called as `/build`,
//! `/start TYPE`, `/exec CMD` or `herokuish`, the binary behaves like herokuish.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::defaults::{self, DefaultBuildpack};
use crate::envdir::{self, Vars};
use crate::exec::{self, Ended, ExecError};
use crate::output;
use crate::paths::Paths;
use crate::pipeline::{self, BuildOptions, Mode};
use crate::process::{self, ProcessEnv};
use crate::slug;
use crate::smoke;
use crate::source::Source;
use crate::user;

#[derive(Parser, Debug)]
#[command(name = "slipway", version, about = "A Docker-powered mini-Heroku for one host", max_term_width = 100)]
struct Cli {
    /// Default buildpacks list to use instead of the one built into slipway
    #[arg(long, global = true, env = "SLIPWAY_BUILDPACKS_TOML", value_name = "FILE")]
    buildpacks_toml: Option<PathBuf>,
    /// Where the runner keeps its state [default: /var/lib/slipway as root, else ~/.local/share/slipway]
    #[arg(long, global = true, env = "SLIPWAY_DATA", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address the router (nginx) listens on, remembered [default: 0.0.0.0:80 as root, else 127.0.0.1:8080]
    #[arg(long, global = true, env = "SLIPWAY_ROUTER_LISTEN", value_name = "ADDR:PORT")]
    router_listen: Option<String>,
    /// The system user that owns the app repos and receives pushes
    #[arg(long, global = true, env = "SLIPWAY_GIT_USER", default_value = "slipway")]
    git_user: String,
    #[command(subcommand)]
    command: Command,
}

/// Where builds run: the stack images, the CA bundle, the compile timeout.
#[derive(clap::Args, Debug)]
struct BuildEnvArgs {
    /// CA bundle handed to build containers [default: SSL_CERT_FILE or the system bundle]
    #[arg(long, env = "SLIPWAY_CA_BUNDLE", value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// The stack image buildpacks run in
    #[arg(long, env = "SLIPWAY_BUILD_IMAGE", default_value = crate::stack::BUILD_IMAGE)]
    build_image: String,
    /// The stack image release images are made on
    #[arg(long, env = "SLIPWAY_RUN_IMAGE", default_value = crate::stack::RUN_IMAGE)]
    run_image: String,
    /// Stop a buildpack script after this many seconds
    #[arg(long, env = "SLIPWAY_COMPILE_TIMEOUT", default_value_t = 900, value_name = "SECS")]
    timeout: u64,
}

#[derive(Parser, Debug)]
struct BuildArgs {
    /// The app's source directory
    dir: PathBuf,
    /// Where to write the slug [default: ./NAME.slug.tgz]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Buildpack to use instead of auto-detection (repeat to run several in order)
    #[arg(short = 'b', long = "buildpack", value_name = "URL")]
    buildpacks: Vec<String>,
    /// Config var for the build, given to buildpacks through ENV_DIR (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Keep the buildpack cache here between builds [default: a fresh temp dir]
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Build on this host instead of in a build-image container
    #[arg(long)]
    local: bool,
    /// The app's name (cache volume, image name) [default: the directory's name]
    #[arg(long)]
    app: Option<String>,
    /// Start with an empty buildpack cache (container builds keep one per app)
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Memory limit of the build container, e.g. 2G
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// CPU limit of the build container, e.g. 1.5
    #[arg(long)]
    cpus: Option<f64>,
    /// Pass the -e config vars to a Dockerfile build as build args
    #[arg(long)]
    build_args: bool,
    /// Name of the release image [default: slipway-app/APP:latest]
    #[arg(long, value_name = "NAME:TAG")]
    image: Option<String>,
    /// Do not make a release image (container builds)
    #[arg(long)]
    no_image: bool,
    #[command(flatten)]
    images: BuildEnvArgs,
    /// Refuse slugs larger than this (compressed)
    #[arg(long, env = "SLIPWAY_SLUG_MAX_SIZE", default_value = "1G", value_name = "SIZE")]
    max_size: String,
    /// The stack name given to buildpacks
    #[arg(long, env = "STACK", default_value = pipeline::DEFAULT_STACK)]
    stack: String,
    /// Print a machine-readable summary as the last line
    #[arg(long)]
    json: bool,
}

#[derive(Parser, Debug)]
struct MatrixArgs {
    /// Fixture app directories to run [default: every buildpack's fixtures under --fixtures]
    dirs: Vec<PathBuf>,
    /// Where the fixtures live: FIXTURES/<buildpack>/<app>/
    #[arg(long, default_value = "fixtures", value_name = "DIR")]
    fixtures: PathBuf,
    /// Only this buildpack's fixtures (repeatable)
    #[arg(short = 'b', long = "buildpack", value_name = "NAME")]
    buildpacks: Vec<String>,
    /// Run a third-party buildpack (git URL#ref, tarball, directory) against the fixture
    /// directories given
    #[arg(long, value_name = "URL#REF", requires = "dirs")]
    external: Option<String>,
    /// Fixtures run at once [default: the number of cores]
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Write a JUnit XML report here
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown report here
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write the outcomes as JSON here
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[command(flatten)]
    images: BuildEnvArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build an app directory into a slug on this host
    Build(Box<BuildArgs>),
    /// The buildpack test matrix: every fixture detected, built, started and requested in the
    /// stack images, in parallel, with a report
    Matrix(Box<MatrixArgs>),
    /// Run a process type of a release image, its port published on 127.0.0.1
    RunImage {
        image: String,
        #[arg(default_value = "web")]
        process_type: String,
        /// Host port on 127.0.0.1 [default: any free one]
        #[arg(short, long)]
        port: Option<u16>,
        /// Config var for the process (repeatable)
        #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Start it, print its container id and URL, and return
        #[arg(short, long)]
        detach: bool,
    },
    /// Run a process type from a slug (or a release image), with PORT set (web: 5000)
    Start {
        slug: PathBuf,
        #[arg(default_value = "web")]
        process_type: String,
        #[arg(short, long, env = "PORT")]
        port: Option<u16>,
        /// Config var for the process (repeatable)
        #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
    },
    /// Build an app, start `web`, and check that GET PATH answers EXPECTED (herokuish's test)
    Test {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Expected body [default: the directory's name]
        expected: Option<String>,
        #[arg(long, default_value = "/")]
        path: String,
        /// Buildpack to use instead of auto-detection
        #[arg(short = 'b', long = "buildpack", value_name = "URL")]
        buildpacks: Vec<String>,
    },
    /// herokuish: build, detect, install, list and test buildpacks
    #[command(subcommand)]
    Buildpack(BuildpackCommand),
    /// Language runtimes for buildpacks: `runtime node RANGE --into DIR --cache-dir DIR`
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// herokuish: start, exec or parse Procfile processes
    #[command(subcommand)]
    Procfile(ProcfileCommand),
    /// herokuish: generate, import, export and inspect slugs
    #[command(subcommand)]
    Slug(SlugCommand),
    /// The stack images (run and build), made from a debootstrapped Debian
    #[command(subcommand)]
    Stack(StackCommand),
    #[command(name = "apps:create", about = "Create an app")]
    AppsCreate { app: String },
    #[command(name = "apps:list", about = "List the apps")]
    AppsList,
    #[command(
        name = "apps:destroy",
        about = "Remove an app and everything it has (containers, images, volumes, routes, state)"
    )]
    AppsDestroy {
        app: String,
        /// Do not ask (required when not on a terminal)
        #[arg(long)]
        force: bool,
    },
    #[command(name = "apps:info", about = "Show an app's release, buildpack and URLs")]
    AppsInfo { app: String },
    #[command(name = "config:set", about = "Set config vars; makes a new release and restarts the processes")]
    ConfigSet {
        /// The app, or --global
        app: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        vars: Vec<String>,
        #[arg(long)]
        no_restart: bool,
    },
    #[command(name = "config:unset", about = "Unset config vars; makes a new release and restarts the processes")]
    ConfigUnset {
        app: String,
        #[arg(required = true)]
        keys: Vec<String>,
        #[arg(long)]
        no_restart: bool,
    },
    #[command(name = "config:get", about = "Print one config var")]
    ConfigGet { app: String, key: String },
    #[command(name = "config:show", about = "Print an app's config vars")]
    ConfigShow { app: String },
    #[command(about = "Build a directory or tarball and deploy it with zero downtime")]
    Deploy { app: String, source: PathBuf },
    #[command(name = "ps:scale", about = "Set how many containers each process type runs, e.g. web=2 worker=1")]
    PsScale {
        app: String,
        #[arg(required = true, value_name = "TYPE=COUNT")]
        counts: Vec<String>,
    },
    #[command(name = "ps:restart", about = "Restart the processes with zero downtime")]
    PsRestart { app: String },
    #[command(name = "ps:stop", about = "Stop the processes")]
    PsStop { app: String },
    #[command(name = "ps:start", about = "Start the processes of the current release")]
    PsStart { app: String },
    #[command(name = "ps:report", about = "Show the processes")]
    PsReport { app: String },
    #[command(about = "List the releases")]
    Releases { app: String },
    #[command(about = "Go back to an earlier release (default: the one before the current)")]
    Rollback { app: String, release: Option<String> },
    #[command(about = "Show the processes' logs")]
    Logs {
        app: String,
        /// Follow
        #[arg(short = 't', long)]
        tail: bool,
        #[arg(short = 'n', long)]
        num: Option<usize>,
        #[arg(short = 'p', long = "ps")]
        process_type: Option<String>,
    },
    #[command(about = "Run a one-off command in a container of the current release")]
    Run {
        app: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    #[command(name = "domains:add")]
    DomainsAdd { app: String, domain: String },
    #[command(name = "domains:remove")]
    DomainsRemove { app: String, domain: String },
    #[command(name = "domains:report")]
    DomainsReport { app: String },
    #[command(name = "domains:set-global", about = "Apps answer at APP.DOMAIN")]
    DomainsSetGlobal { domain: String },
    #[command(name = "checks:disable")]
    ChecksDisable { app: String },
    #[command(name = "checks:enable")]
    ChecksEnable { app: String },
    #[command(name = "checks:skip", about = "Only wait for the web port, skip app.json checks")]
    ChecksSkip { app: String },
    #[command(name = "resource:limit", about = "Memory/CPU limits for the app's containers (from the next restart)")]
    ResourceLimit {
        app: String,
        #[arg(long)]
        memory: Option<String>,
        #[arg(long)]
        cpu: Option<String>,
        #[arg(long)]
        process_type: Option<String>,
    },
    #[command(
        name = "storage:mount",
        about = "Mount a host directory into the app's containers (from the next restart)"
    )]
    StorageMount { app: String, mount: String },
    #[command(
        name = "settings:set",
        about = "Set a platform setting: keep-releases N, stop-timeout SECS, git.auto-create true|false"
    )]
    SettingsSet { key: String, value: String },
    #[command(name = "settings:show", about = "Show the platform settings")]
    SettingsShow,
    #[command(name = "ssh-keys:add", about = "Let a key push (and run app commands over ssh)")]
    SshKeysAdd {
        name: String,
        /// The public key file, or - for standard input [default: -]
        keyfile: Option<PathBuf>,
    },
    #[command(name = "ssh-keys:remove")]
    SshKeysRemove { name: String },
    #[command(name = "ssh-keys:list")]
    SshKeysList,
    #[command(name = "builds:list", about = "The builds of an app (every push is one)")]
    BuildsList { app: String },
    #[command(name = "builds:output", about = "A build's full log (default: the latest)")]
    BuildsOutput { app: String, id: Option<i64> },
    #[command(name = "builds:cancel", about = "Stop the running build; its push is rejected")]
    BuildsCancel { app: String },
    #[command(about = "Set up git push: the git user, its data dir, and an sshd of slipway's own")]
    Install {
        /// Start a dedicated sshd on 127.0.0.1:PORT (its own host key and config under the data dir)
        #[arg(long)]
        sshd_port: Option<u16>,
        /// Address for that sshd
        #[arg(long, default_value = "127.0.0.1")]
        sshd_address: String,
    },
    #[command(name = "ssh-command", hide = true)]
    SshDispatch { key: String },
    #[command(name = "git-hook", hide = true)]
    GitHook { app: String },
    /// herokuish: print the paths in use (each overridable by its variable)
    Paths,
    /// Print the version
    Version,
}

#[derive(Subcommand, Debug)]
enum StackCommand {
    /// Build the run and build images (nothing happens when they are up to date)
    Build {
        /// Engine binary to put in the images [default: this binary]
        #[arg(long, env = "SLIPWAY_ENGINE_BINARY")]
        engine: Option<PathBuf>,
        /// Rebuild even when the images are up to date
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = "bookworm")]
        suite: String,
        #[arg(long, env = "SLIPWAY_DEBIAN_MIRROR", default_value = "http://deb.debian.org/debian")]
        mirror: String,
    },
}

#[derive(Subcommand, Debug)]
enum RuntimeCommand {
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
}

#[derive(Subcommand, Debug)]
enum BuildpackCommand {
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
    },
}

#[derive(Subcommand, Debug)]
enum ProcfileCommand {
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
enum SlugCommand {
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
pub fn main(mut args: Vec<OsString>) -> i32 {
    let invoked = args.first().and_then(|a| Path::new(a).file_name()).map(|n| n.to_string_lossy().into_owned());
    let inject: &[&str] = match invoked.as_deref() {
        Some("build") => &["buildpack", "build"],
        Some("start") => &["procfile", "start"],
        Some("exec") => &["procfile", "exec"],
        _ => &[],
    };
    if !inject.is_empty() {
        args.splice(1..1, inject.iter().map(OsString::from));
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if let Some(ExecError::Interrupted { .. }) = err.downcast_ref::<ExecError>() {
                output::warn("Interrupted: stopped.");
                return 130;
            }
            output::warn(format!("Error: {}", crate::error_chain(err.as_ref())));
            1
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let toml = cli.buildpacks_toml.as_deref();
    let data_dir = cli.data_dir.clone().unwrap_or_else(crate::state::default_data_dir);
    if touches_platform_state(&cli.command) {
        become_data_owner(&data_dir)?;
    }
    if let Some(listen) = &cli.router_listen {
        // Remembered for every later command, hooks run by sshd included.
        crate::state::State::open(&data_dir)?.set_setting("", "router.listen", Some(listen))?;
    }
    match cli.command {
        Command::Build(args) => build(*args, toml),
        Command::Matrix(args) => matrix(*args, toml),
        Command::Start { slug, process_type, port, env } => {
            if slug.is_file() {
                start(&slug, &process_type, port, &env)
            } else {
                let image = slug.to_string_lossy().into_owned();
                block_on(crate::runimage::run(&image, &process_type, port.unwrap_or(5000), &parse_env(&env)?, false))
            }
        }
        Command::RunImage { image, process_type, port, env, detach } => {
            block_on(crate::runimage::run(&image, &process_type, port.unwrap_or(0), &parse_env(&env)?, detach))
        }
        Command::Test { dir, expected, path, buildpacks } => test(&dir, expected, &path, buildpacks, toml),
        Command::Buildpack(cmd) => buildpack(cmd, toml),
        Command::Runtime(RuntimeCommand::Node { range, into, cache_dir }) => {
            let installed = crate::noderuntime::install(&range, &into, &cache_dir, &mut |l| output::detail(l))?;
            let origin = if installed.from_cache { "from the build cache" } else { "downloaded" };
            output::header(format!("Using Node.js {} for engines.node {range:?} ({origin})", installed.version));
            Ok(0)
        }
        Command::Procfile(cmd) => procfile(cmd),
        Command::Slug(cmd) => slug_command(cmd),
        Command::Stack(StackCommand::Build { engine, force, suite, mirror }) => {
            let engine_binary = match engine {
                Some(p) => p,
                None => std::env::current_exe().context("cannot find this binary")?,
            };
            let opts = crate::stack::StackOptions { engine_binary, suite, mirror, force };
            block_on(async {
                let engine = crate::docker::Engine::connect().await?;
                crate::stack::build(&engine, &opts).await
            })?;
            Ok(0)
        }
        Command::Paths => {
            print!("{}", Paths::from_env().render());
            Ok(0)
        }
        Command::Version => {
            println!("slipway {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::SshDispatch { key } => crate::gitpush::ssh_command(&data_dir, &key),
        Command::GitHook { app } => crate::gitpush::pre_receive(&data_dir, &app),
        Command::SshKeysAdd { name, keyfile } => {
            let keys = crate::keys::AuthorizedKeys::for_user(&cli.git_user)?;
            let text = crate::keys::read_key_source(keyfile.as_deref())?;
            let exe = std::env::current_exe()?;
            let command = format!("{} --data-dir {} ssh-command", exe.display(), data_dir.display());
            let entry = keys.add(&name, &text, &command)?;
            output::header(format!("Added key {name} ({}) for {}", entry.key.fingerprint(), cli.git_user));
            Ok(0)
        }
        Command::SshKeysRemove { name } => {
            crate::keys::AuthorizedKeys::for_user(&cli.git_user)?.remove(&name)?;
            output::header(format!("Removed key {name}"));
            Ok(0)
        }
        Command::SshKeysList => {
            for e in crate::keys::AuthorizedKeys::for_user(&cli.git_user)?.entries()? {
                println!("{:<20} {} {}", e.name, e.key.kind, e.key.fingerprint());
            }
            Ok(0)
        }
        Command::BuildsList { app } => {
            let state = crate::state::State::open(&data_dir)?;
            state.require_app(&app)?;
            println!("=== {app} builds");
            for (id, release, started, finished, status, rev) in state.deploys(&app)? {
                let took = finished.map(|f| format!("{}s", f - started)).unwrap_or_else(|| "-".into());
                let rev = rev.map(|r| r[..r.len().min(10)].to_string()).unwrap_or_default();
                let release = release.map(|r| format!("v{r}")).unwrap_or_default();
                println!("{id:<6} {status:<10} {took:<6} {release:<6} {rev}");
            }
            Ok(0)
        }
        Command::BuildsOutput { app, id } => {
            let state = crate::state::State::open(&data_dir)?;
            state.require_app(&app)?;
            let (_, _, log) = state.deploy_log(&app, id)?.with_context(|| format!("app '{app}' has no such build"))?;
            print!("{log}");
            Ok(0)
        }
        Command::BuildsCancel { app } => {
            let state = crate::state::State::open(&data_dir)?;
            state.require_app(&app)?;
            crate::gitpush::cancel(&state, &app)?;
            Ok(0)
        }
        Command::Install { sshd_port, sshd_address } => {
            crate::install::install(&data_dir, &cli.git_user, sshd_port, &sshd_address)
        }
        runner_command => block_on(platform_cmd(runner_command, data_dir, cli.router_listen)),
    }
}

/// Whether a command reads or writes the platform's data dir (and so must run as its owner).
fn touches_platform_state(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Build(_)
            | Command::Matrix(_)
            | Command::Start { .. }
            | Command::RunImage { .. }
            | Command::Test { .. }
            | Command::Buildpack(_)
            | Command::Runtime(_)
            | Command::Procfile(_)
            | Command::Slug(_)
            | Command::Stack(_)
            | Command::Paths
            | Command::Version
            | Command::Install { .. }
            | Command::SshKeysAdd { .. }
            | Command::SshKeysRemove { .. }
            | Command::SshKeysList
    )
}

/// Started as root on a data dir that belongs to the git user (after `slipway install`):
/// runs again as that user, so files root would create (the database's journal, router
/// config, locks) stay writable by the hooks sshd runs as that user. Dokku's `dokku` command
/// does the same.
fn become_data_owner(data_dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(data_dir) else { return Ok(()) };
    if meta.uid() == 0 {
        return Ok(());
    }
    // SAFETY: getpwuid's result is read at once.
    let (name, home, gid) = unsafe {
        let pw = libc::getpwuid(meta.uid());
        if pw.is_null() {
            return Ok(());
        }
        (
            std::ffi::CStr::from_ptr((*pw).pw_name).to_owned(),
            std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned(),
            (*pw).pw_gid,
        )
    };
    let uid = meta.uid();
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    // The data dir as resolved here: the default differs for a non-root user.
    cmd.args(std::env::args_os().skip(1)).env("HOME", home).env("SLIPWAY_DATA", data_dir);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::initgroups(name.as_ptr(), gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let err = cmd.exec();
    bail!("cannot switch to the data dir's owner: {err}")
}

/// The runner's commands (`apps:*`, `config:*`, `ps:*`, `deploy`, ...).
async fn platform_cmd(cmd: Command, data_dir: PathBuf, listen: Option<String>) -> Result<i32> {
    use crate::platform;
    use crate::state::State;
    // Commands that only read or write state do not need Docker.
    let state_only = || State::open(&data_dir);
    match cmd {
        Command::AppsCreate { app } => {
            state_only()?.create_app(&app)?;
            output::header(format!("Created app {app}; deploy it with `slipway deploy {app} DIR` or git push"));
            return Ok(0);
        }
        Command::AppsList => {
            println!("=== apps");
            for app in state_only()?.apps()? {
                println!("{app}");
            }
            return Ok(0);
        }
        Command::ConfigGet { app, key } => {
            let s = state_only()?;
            let cfg = if app == "--global" { s.config("")? } else { s.require_app(&app).map(|_| s.config(&app))?? };
            match cfg.get(&key) {
                Some(v) => println!("{v}"),
                None => bail!("{app} has no config var {key}"),
            }
            return Ok(0);
        }
        Command::ConfigShow { app } => {
            let s = state_only()?;
            let cfg = if app == "--global" { s.config("")? } else { s.require_app(&app).map(|_| s.config(&app))?? };
            println!("=== {app} config vars");
            for (k, v) in cfg {
                println!("{k}: {v}");
            }
            return Ok(0);
        }
        Command::Releases { app } => {
            print!("{}", platform::report_releases(&state_only()?, &app)?);
            return Ok(0);
        }
        Command::DomainsReport { app } => {
            let s = state_only()?;
            s.require_app(&app)?;
            let global = s.setting("", "domain")?.unwrap_or_else(|| "slipway.localhost".into());
            println!(
                "=== {app} domains
{app}.{global} (global)"
            );
            for d in s.domains(&app)? {
                println!("{d}");
            }
            return Ok(0);
        }
        Command::SettingsSet { key, value } => {
            let valid = match key.as_str() {
                "keep-releases" => value.parse::<u32>().is_ok_and(|n| n >= 1),
                "stop-timeout" => value.parse::<u32>().is_ok(),
                "git.auto-create" => value == "true" || value == "false",
                _ => bail!("unknown setting {key:?}: the settings are keep-releases, stop-timeout, git.auto-create"),
            };
            if !valid {
                bail!("{value:?} is not a valid value for {key} (keep-releases: 1 or more; stop-timeout: seconds; git.auto-create: true or false)");
            }
            state_only()?.set_setting("", &key, Some(&value))?;
            output::header(format!("{key} = {value}"));
            return Ok(0);
        }
        Command::SettingsShow => {
            let s = state_only()?;
            let listen = crate::router::default_listen();
            let defaults = [
                ("keep-releases", "5"),
                ("stop-timeout", "30"),
                ("git.auto-create", "true"),
                ("domain", "slipway.localhost"),
                ("router.listen", listen.as_str()),
            ];
            for (key, default) in defaults {
                let value = s.setting("", key)?;
                println!(
                    "{key:<16} {}{}",
                    value.as_deref().unwrap_or(default),
                    if value.is_none() { " (default)" } else { "" }
                );
            }
            return Ok(0);
        }
        Command::DomainsSetGlobal { domain } => {
            state_only()?.set_setting("", "domain", Some(&domain))?;
            output::header(format!("Apps answer at APP.{domain} from their next deploy or restart"));
            return Ok(0);
        }
        Command::ChecksDisable { ref app } | Command::ChecksEnable { ref app } | Command::ChecksSkip { ref app } => {
            let s = state_only()?;
            s.require_app(app)?;
            let value = match cmd {
                Command::ChecksDisable { .. } => Some("disabled"),
                Command::ChecksSkip { .. } => Some("skipped"),
                _ => None,
            };
            s.set_setting(app, "checks", value)?;
            output::header(format!("Checks for {app}: {}", value.unwrap_or("enabled")));
            return Ok(0);
        }
        Command::ResourceLimit { app, memory, cpu, process_type } => {
            let s = state_only()?;
            s.require_app(&app)?;
            let kind = process_type.unwrap_or_else(|| "_all".into());
            if let Some(m) = &memory {
                slug::parse_size(m)?;
                s.set_setting(&app, &format!("resource.{kind}.memory"), Some(m))?;
            }
            if let Some(c) = &cpu {
                c.parse::<f64>().map_err(|_| anyhow::anyhow!("--cpu takes a number of CPUs, e.g. 0.5"))?;
                s.set_setting(&app, &format!("resource.{kind}.cpu"), Some(c))?;
            }
            output::header(format!("Limits for {app} ({kind}) apply from the next deploy or `ps:restart {app}`"));
            return Ok(0);
        }
        Command::StorageMount { app, mount } => {
            let s = state_only()?;
            s.require_app(&app)?;
            let Some((host, inside)) = mount.split_once(':') else { bail!("expected HOST_DIR:CONTAINER_DIR") };
            if !Path::new(host).is_absolute() || !Path::new(inside).is_absolute() {
                bail!("both directories must be absolute paths");
            }
            std::fs::create_dir_all(host).with_context(|| format!("cannot create {host}"))?;
            s.set_setting(&app, &format!("storage.{inside}"), Some(&mount))?;
            output::header(format!("{host} is mounted at {inside} from the next deploy or `ps:restart {app}`"));
            return Ok(0);
        }
        _ => {}
    }
    let mut r = crate::runner::Runner::open(&data_dir, listen).await?;
    match cmd {
        Command::AppsDestroy { app, force } => {
            r.state.require_app(&app)?;
            if !force {
                bail!("this removes app '{app}' and everything it has; run `slipway apps:destroy {app} --force` to confirm");
            }
            let _lock = r.lock(&app)?;
            r.destroy(&app).await?;
            output::header(format!("Destroyed {app}"));
        }
        Command::AppsInfo { app } => print!("{}", platform::app_info(&r, &app).await?),
        Command::ConfigSet { app, vars, no_restart } => {
            let vars: Vars = parse_env(&vars)?;
            let scope = if app == "--global" { "" } else { r.state.require_app(&app).map(|_| app.as_str())? };
            let tx = r.state.transaction()?;
            State::set_config(&tx, scope, &vars)?;
            tx.commit()?;
            let keys: Vec<&str> = vars.keys().map(String::as_str).collect();
            output::header(format!(
                "Set {} for {}",
                keys.join(", "),
                if scope.is_empty() { "all apps" } else { scope }
            ));
            if !scope.is_empty() {
                let _lock = r.lock(scope)?;
                r.new_config_release(scope, &format!("Set {}", keys.join(", ")), !no_restart).await?;
            }
        }
        Command::ConfigUnset { app, keys, no_restart } => {
            let scope = if app == "--global" { "" } else { r.state.require_app(&app).map(|_| app.as_str())? };
            let tx = r.state.transaction()?;
            State::unset_config(&tx, scope, &keys)?;
            tx.commit()?;
            output::header(format!("Unset {}", keys.join(", ")));
            if !scope.is_empty() {
                let _lock = r.lock(scope)?;
                r.new_config_release(scope, &format!("Unset {}", keys.join(", ")), !no_restart).await?;
            }
        }
        Command::Deploy { app, source } => {
            let v = platform::deploy(&mut r, &app, &source, std::env::var("SOURCE_VERSION").ok()).await?;
            print!("{}", platform::app_info(&r, &app).await?);
            output::header(format!("Deployed {app} v{v}"));
        }
        Command::PsScale { app, counts } => {
            r.state.require_app(&app)?;
            let counts = platform::parse_scale(&counts)?;
            let _lock = r.lock(&app)?;
            r.scale(&app, &counts).await?;
        }
        Command::PsRestart { app } | Command::PsStart { app } => {
            r.state.require_app(&app)?;
            let _lock = r.lock(&app)?;
            if r.new_config_release(&app, "Restart", true).await?.is_none() {
                bail!("app '{app}' has not been deployed yet; deploy it with `slipway deploy {app} DIR`");
            }
        }
        Command::PsStop { app } => {
            r.state.require_app(&app)?;
            let _lock = r.lock(&app)?;
            let counts = r.state.formation(&app)?.into_keys().map(|k| (k, 0)).collect();
            let saved = r.state.formation(&app)?;
            r.scale(&app, &counts).await?;
            let tx = r.state.transaction()?;
            State::set_formation(&tx, &app, &saved)?;
            tx.commit()?;
        }
        Command::PsReport { app } => print!("{}", platform::ps_report(&r, &app).await?),
        Command::Rollback { app, release } => {
            let v = platform::rollback(&mut r, &app, release.as_deref()).await?;
            output::header(format!("Rolled {app} back: now v{v}"));
        }
        Command::Logs { app, tail, num, process_type } => {
            platform::logs(&r, &app, tail, num, process_type.as_deref()).await?
        }
        Command::Run { app, command } => {
            r.state.require_app(&app)?;
            let release =
                r.state.current_release(&app)?.with_context(|| format!("app '{app}' has not been deployed yet"))?;
            let env_dir = r.write_env_dir(&release)?;
            let code = r.one_off(&release, command, &env_dir, true).await?;
            return Ok(code as i32);
        }
        Command::DomainsAdd { app, domain } => {
            r.state.require_app(&app)?;
            r.state.add_domain(&app, &domain)?;
            refresh_routes(&mut r, &app).await?;
            output::header(format!("{domain} now routes to {app}"));
        }
        Command::DomainsRemove { app, domain } => {
            r.state.require_app(&app)?;
            r.state.remove_domain(&app, &domain)?;
            refresh_routes(&mut r, &app).await?;
            output::header(format!("{domain} no longer routes to {app}"));
        }
        other => bail!("unexpected command {other:?}"),
    }
    Ok(0)
}

/// Rewrites an app's router entry for its current web containers (after a domain change).
async fn refresh_routes(r: &mut crate::runner::Runner, app: &str) -> Result<()> {
    let ports: Vec<u16> = r.containers(app).await?.iter().filter(|c| c.kind == "web").filter_map(|c| c.port).collect();
    if !ports.is_empty() || r.router.has_app(app) {
        r.router.set_app(app, &r.hosts(app)?, &ports)?;
    }
    Ok(())
}

/// Runs host orchestration (the Docker side) on a tokio runtime.
fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

fn parse_env(items: &[String]) -> Result<Vars> {
    items.iter().map(|s| envdir::parse_assignment(s)).collect()
}

/// A scratch dir readable by the app user (tempfile makes 0700 dirs).
fn workspace() -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("slipway-build-").tempdir().context("cannot create a temp dir")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn app_name(dir: &Path) -> String {
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
        timeout: Some(pipeline::DEFAULT_TIMEOUT),
        user: None,
        mode: Mode::Build,
    })
}

/// An app name from a directory name: lowercase letters, digits and `-`.
fn sanitize_app_name(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if s.is_empty() {
        "app".into()
    } else {
        s
    }
}

fn build(args: BuildArgs, toml: Option<&Path>) -> Result<i32> {
    if args.local {
        build_local(args, toml)
    } else {
        block_on(build_in_container(args))
    }
}

async fn build_in_container(args: BuildArgs) -> Result<i32> {
    let started = Instant::now();
    let config = parse_env(&args.env)?;
    let dir =
        args.dir.canonicalize().with_context(|| format!("app directory {} does not exist", args.dir.display()))?;
    let app = sanitize_app_name(&args.app.clone().unwrap_or_else(|| app_name(&dir)));
    let tag = args.image.clone().unwrap_or_else(|| format!("{}:latest", crate::image::repository(&app)));
    let source_version = std::env::var("SOURCE_VERSION").ok().or_else(|| pipeline::git_revision(&dir));
    let engine = crate::docker::Engine::connect().await?;
    let mut summary = serde_json::json!({ "app": app });
    if args.buildpacks.is_empty() && crate::dockerfile::applies(&dir, &config)? {
        let b = crate::dockerfile::DockerfileBuild {
            dir: &dir,
            app: &app,
            tag: &tag,
            config: &config,
            build_args: args.build_args,
            source_version: source_version.as_deref(),
        };
        let port = crate::dockerfile::build(&engine, &b).await?;
        let size = engine.image_size(&tag).await?;
        output::header(format!("Image: {tag} ({}), listening on PORT {port}", output::size(size)));
        summary["image"] = tag.clone().into();
        summary["image_size"] = size.into();
        summary["port"] = port.into();
        summary["buildpacks"] = serde_json::json!([{"name": "Dockerfile", "source": "Dockerfile"}]);
    } else {
        let output_path = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("{app}.slug.tgz")));
        let cache = match (&args.cache_dir, args.no_cache) {
            (Some(d), _) => crate::container::Cache::HostDir(d.clone()),
            (None, true) => crate::container::Cache::None,
            (None, false) => crate::container::Cache::Volume,
        };
        let b = crate::container::ContainerBuild {
            buildpacks: args.buildpacks.clone(),
            config,
            cache,
            image: args.images.build_image.clone(),
            timeout: Duration::from_secs(args.images.timeout),
            memory: args.memory.as_deref().map(slug::parse_size).transpose()?,
            cpus: args.cpus,
            ca_bundle: args.images.ca_bundle.clone().or_else(crate::container::default_ca_bundle),
            source_version,
            max_size: slug::parse_size(&args.max_size)?,
            ..crate::container::ContainerBuild::new(dir.clone(), &app, output_path.clone())
        };
        let report = crate::container::build(&engine, &b).await?;
        output::header(format!("Slug: {} ({})", output_path.display(), output::size(report.slug_size)));
        let mut phases = report.phases;
        if !args.no_image {
            let t = Instant::now();
            crate::image::from_slug(&engine, &output_path, &args.images.run_image, &app, "latest", &tag, &[]).await?;
            phases.push(("image".into(), t.elapsed()));
            let size = engine.image_size(&tag).await?;
            summary["image"] = tag.clone().into();
            summary["image_size"] = size.into();
        }
        let inspection = slug::inspect(&output_path)?;
        summary["slug"] = serde_json::to_value(&output_path)?;
        summary["slug_size"] = report.slug_size.into();
        summary["buildpacks"] = serde_json::to_value(inspection.metadata.map(|m| m.buildpacks).unwrap_or_default())?;
        summary["process_types"] =
            serde_json::to_value(inspection.process_types.into_iter().collect::<std::collections::BTreeMap<_, _>>())?;
        summary["durations_ms"] = phases
            .iter()
            .map(|(n, d)| (n.clone(), serde_json::Value::from(d.as_millis() as u64)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    summary["total_ms"] = (started.elapsed().as_millis() as u64).into();
    output::header(format!("Done in {}", output::duration(started.elapsed())));
    if args.json {
        println!("{summary}");
    }
    Ok(0)
}

fn matrix(args: MatrixArgs, toml: Option<&Path>) -> Result<i32> {
    use crate::matrix::{self, Fixture};
    let started = Instant::now();
    let defaults = defaults::load(toml)?;
    let ws = workspace()?;
    let external = match &args.external {
        Some(spec) => {
            let source = Source::parse(spec, &std::env::current_dir()?)?;
            let root = source.fetch(&ws.path().join("external")).with_context(|| format!("buildpack {spec}"))?;
            Some((source.short_name(), root))
        }
        None => None,
    };
    let fixtures = if args.dirs.is_empty() {
        let (fixtures, warnings) = matrix::discover(&args.fixtures, &defaults, &args.buildpacks)?;
        warnings.iter().for_each(output::warn);
        fixtures
    } else {
        args.dirs.iter().map(|d| Fixture::load(d)).collect::<Result<Vec<_>>>()?
    };
    if fixtures.is_empty() {
        bail!(
            "no fixtures to run: add apps under {}/<buildpack>/ or name fixture directories",
            args.fixtures.display()
        );
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    match &external {
        Some((name, _)) => {
            output::header(format!("Testing buildpack {name} on {} fixtures, {jobs} at a time", fixtures.len()))
        }
        None => output::header(format!("Running {} fixtures, {jobs} at a time", fixtures.len())),
    }
    let opts = matrix::Options {
        fixtures,
        defaults,
        external,
        jobs,
        build_image: args.images.build_image,
        run_image: args.images.run_image,
        ca_bundle: args.images.ca_bundle.or_else(crate::container::default_ca_bundle),
        timeout: Duration::from_secs(args.images.timeout),
    };
    let outcomes = block_on(async {
        let engine = std::sync::Arc::new(crate::docker::Engine::connect().await?);
        matrix::run(engine, opts).await
    });
    let outcomes = match outcomes {
        Err(e) if e.is::<matrix::Interrupted>() => {
            eprintln!();
            output::warn(e.to_string());
            return Ok(130);
        }
        other => other?,
    };
    let wall = started.elapsed();
    print!("\n{}", matrix::summary(&outcomes, wall));
    let write = |path: &Path, text: String| -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(p) = &args.junit {
        write(p, matrix::junit(&outcomes, wall)?)?;
    }
    if let Some(p) = &args.markdown {
        write(p, matrix::markdown(&outcomes, wall))?;
    }
    if let Some(p) = &args.json {
        write(p, serde_json::to_string_pretty(&outcomes)?)?;
    }
    Ok(if outcomes.iter().all(|o| o.ok()) { 0 } else { 1 })
}

fn build_local(args: BuildArgs, toml: Option<&Path>) -> Result<i32> {
    let max_size = slug::parse_size(&args.max_size)?;
    let config = parse_env(&args.env)?;
    let ws = workspace()?;
    let mut opts = host_options(&args.dir, ws.path(), args.buildpacks, toml)?;
    if let Some(c) = args.cache_dir {
        opts.cache_dir = c;
    }
    opts.stack = args.stack;
    opts.timeout = Some(Duration::from_secs(args.images.timeout));
    envdir::write(&opts.env_dir, &config)?;
    let output = args.output.unwrap_or_else(|| PathBuf::from(format!("{}.slug.tgz", app_name(&args.dir))));
    let mut report = pipeline::build(&opts)?;
    let t = Instant::now();
    let stats = slug::generate(&opts.build_dir, &output, max_size)?;
    report.phases.push(("slug".into(), t.elapsed()));
    report.total += t.elapsed();
    output::header(format!("Compressed slug: {} ({})", output.display(), output::size(stats.compressed)));
    report.print_summary();
    if args.json {
        let summary = serde_json::json!({
            "slug": output,
            "slug_size": stats.compressed,
            "unpacked_size": stats.unpacked,
            "buildpacks": report.metadata.buildpacks,
            "process_types": report.metadata.process_types,
            "stack": report.metadata.stack,
            "durations_ms": report.phases.iter().map(|(n, d)| (n.clone(), d.as_millis() as u64)).collect::<std::collections::BTreeMap<_, _>>(),
            "in_buildpacks_ms": report.in_buildpacks.as_millis() as u64,
            "total_ms": report.total.as_millis() as u64,
        });
        println!("{summary}");
    }
    Ok(0)
}

fn start(slug_path: &Path, process_type: &str, port: Option<u16>, env: &[String]) -> Result<i32> {
    let mut vars = parse_env(env)?;
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

fn test(dir: &Path, expected: Option<String>, path: &str, explicit: Vec<String>, toml: Option<&Path>) -> Result<i32> {
    let expected = expected.unwrap_or_else(|| app_name(dir));
    let ws = workspace()?;
    let opts = host_options(dir, ws.path(), explicit, toml)?;
    pipeline::build(&opts)?.print_summary();
    let command = process::procfile_command(&opts.build_dir, "web")?;
    let port = smoke::free_port()?;
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
        Ok(0)
    } else {
        output::warn(format!("Test failed: GET {path} answered {:?}, expected {:?}", body.trim(), expected.trim()));
        Ok(1)
    }
}

/// The defaults in herokuish mode: installed buildpacks first, else the list.
fn herokuish_defaults(paths: &Paths, toml: Option<&Path>) -> Result<Vec<DefaultBuildpack>> {
    let installed = defaults::installed(&paths.buildpacks);
    if installed.is_empty() {
        defaults::load(toml)
    } else {
        Ok(installed)
    }
}

fn herokuish_options(paths: &Paths, toml: Option<&Path>, ws: &Path, mode: Mode) -> Result<BuildOptions> {
    let source_dir = if paths.import.is_dir() { paths.import.clone() } else { paths.app.clone() };
    Ok(BuildOptions {
        source_dir,
        build_dir: paths.build.clone(),
        cache_dir: paths.cache.clone(),
        env_dir: paths.env.clone(),
        fetch_dir: ws.join("buildpacks"),
        home: paths.app.clone(),
        explicit: Vec::new(),
        defaults: herokuish_defaults(paths, toml)?,
        stack: std::env::var("STACK").unwrap_or_else(|_| pipeline::DEFAULT_STACK.into()),
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

fn buildpack(cmd: BuildpackCommand, toml: Option<&Path>) -> Result<i32> {
    let paths = Paths::from_env();
    match cmd {
        BuildpackCommand::Build { buildpacks, slug: slug_path, max_size } => {
            let max_size = slug::parse_size(&max_size)?;
            let ws = workspace()?;
            let mut opts = herokuish_options(&paths, toml, ws.path(), Mode::Build)?;
            opts.explicit = buildpacks;
            std::fs::create_dir_all(&paths.app)?;
            if let Some(u) = &opts.user {
                if !u.owns(&paths.app) {
                    u.chown(&paths.app)?;
                }
            }
            let mut report = pipeline::build(&opts)?;
            crate::fsutil::move_contents(&opts.build_dir, &paths.app, opts.user.as_ref())?;
            if let Some(out) = slug_path {
                let t = Instant::now();
                let stats = slug::generate(&paths.app, &out, max_size)?;
                report.phases.push(("slug".into(), t.elapsed()));
                report.total += t.elapsed();
                output::header(format!("Compressed slug: {}", output::size(stats.compressed)));
            }
            report.print_summary();
            Ok(0)
        }
        BuildpackCommand::Test { buildpacks } => {
            let ws = workspace()?;
            let mut opts = herokuish_options(&paths, toml, ws.path(), Mode::Test)?;
            opts.explicit = buildpacks;
            pipeline::build(&opts)?.print_summary();
            Ok(0)
        }
        BuildpackCommand::Detect { dir } => {
            let dir = dir.unwrap_or(paths.app.clone());
            let defaults = herokuish_defaults(&paths, toml)?;
            let ws = workspace()?;
            let env = crate::buildpack::ScriptEnv { timeout: Some(Duration::from_secs(60)), ..Default::default() };
            for (i, d) in defaults.iter().enumerate() {
                let root = d.source.fetch(&ws.path().join(i.to_string()))?;
                let bp = crate::buildpack::Buildpack::new(root, d.source.describe());
                if let Some(name) = bp.detect(&dir, &env)? {
                    println!("{name}");
                    return Ok(0);
                }
            }
            output::warn(format!("No buildpack detected {}", dir.display()));
            Ok(1)
        }
        BuildpackCommand::Install { url, reference, name } => {
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
                crate::fsutil::copy_tree(&root, &dest, None, |p, _| p == Path::new(".git"))?;
                output::header(format!("Installed buildpack {name} from {}", source.describe()));
            }
            Ok(0)
        }
        BuildpackCommand::List => {
            for d in herokuish_defaults(&paths, toml)? {
                let version = d.version.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
                println!("{:<12} {:<10} {}", d.name, version, d.source.describe());
            }
            Ok(0)
        }
    }
}

fn herokuish_process_env(paths: &Paths, process_type: Option<&str>) -> Result<ProcessEnv> {
    let mut vars = Vars::new();
    if std::env::var_os("PORT").is_none() {
        vars.insert("PORT".into(), "5000".into());
    }
    if let (Some(t), None) = (process_type, std::env::var_os("DYNO")) {
        vars.insert("DYNO".into(), format!("{t}.1"));
    }
    Ok(ProcessEnv {
        app_dir: paths.app.clone(),
        env_dir: Some(paths.env.clone()),
        vars,
        user: user::unprivileged()?,
        system_profile: true,
    })
}

fn procfile(cmd: ProcfileCommand) -> Result<i32> {
    let paths = Paths::from_env();
    match cmd {
        ProcfileCommand::Start { process_type } => {
            let command = process::procfile_command(&paths.app, &process_type)?;
            let pe = herokuish_process_env(&paths, Some(&process_type))?;
            let err = pe.shell(&command)?.exec();
            bail!("cannot start {process_type}: {err}")
        }
        ProcfileCommand::Exec { command } => {
            let pe = herokuish_process_env(&paths, None)?;
            let err = pe.command(&command)?.exec();
            bail!("cannot run {}: {err}", command[0])
        }
        ProcfileCommand::Parse { process_type } => {
            match process_type {
                Some(t) => println!("{}", process::procfile_command(&paths.app, &t)?),
                None => match crate::procfile::Procfile::read(&paths.app)? {
                    Some(p) => print!("{p}"),
                    None => bail!("{} has no Procfile", paths.app.display()),
                },
            }
            Ok(0)
        }
    }
}

fn slug_command(cmd: SlugCommand) -> Result<i32> {
    let paths = Paths::from_env();
    match cmd {
        SlugCommand::Generate { app, output, max_size } => {
            let app = app.unwrap_or(paths.app);
            let out = output.unwrap_or(paths.slug);
            let stats = slug::generate(&app, &out, slug::parse_size(&max_size)?)?;
            output::header(format!("Slug: {} ({})", out.display(), output::size(stats.compressed)));
            Ok(0)
        }
        SlugCommand::Import { source, max_unpacked } => {
            let file = slug::open_input(source.as_deref())?;
            let opts =
                slug::ImportOptions { max_unpacked: slug::parse_size(&max_unpacked)?, owner: user::unprivileged()? };
            slug::import_file(&file, &paths.app, &opts)?;
            Ok(0)
        }
        SlugCommand::Export { url } => {
            if !paths.slug.is_file() {
                slug::generate(&paths.app, &paths.slug, slug::DEFAULT_MAX_SIZE)?;
            }
            slug::export(&paths.slug, url.as_deref())?;
            Ok(0)
        }
        SlugCommand::Inspect { slug: path, json } => {
            let inspection = slug::inspect(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inspection)?);
            } else {
                print!("{}", inspection.render());
            }
            Ok(0)
        }
    }
}
