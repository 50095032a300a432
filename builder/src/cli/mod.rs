//! The command line. Host commands (`build`, `start`, `test`) work in temp dirs as the invoking
//! user; herokuish's surface (`buildpack`, `procfile`, `slug`, `paths`, `version`) uses
//! herokuish's paths and, started as root, drops to the app user. Called as `/build`,
//! `/start TYPE`, `/exec CMD` or `herokuish`, the binary behaves like herokuish.
//!
//! This folder holds clap types and argument mapping only: [`build`] (`build`, `matrix`),
//! [`engine`] (herokuish's surface, `runtime`, `stack`, `start`), [`apps`] (the platform's
//! commands, over `platform::commands`), [`services`] (`postgres:*`, `redis:*`).

pub mod apps;
pub mod build;
pub mod cluster;
pub mod engine;
pub mod services;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};

use crate::engine::envdir::{self, Vars};
use crate::engine::exec::ExecError;
use crate::engine::paths::Paths;
use crate::gitpush::dispatch::{self, Request};
use crate::output;
use crate::platform::access::Caller;
use crate::platform::commands::Platform;
use apps::{AppCommand, HostCommand, KeyCommand};
use build::{BuildArgs, MatrixArgs};
use engine::{BuildpackCommand, ProcfileCommand, RuntimeCommand, SlugCommand, StackCommand};

#[derive(Parser, Debug)]
#[command(name = "slipway", version, about = "A Docker-powered mini-Heroku for one host", max_term_width = 100)]
pub(crate) struct Cli {
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
    /// herokuish: print the paths in use (each overridable by its variable)
    Paths,
    /// Print the version and the default buildpacks' versions
    Version,
    /// herokuish's `test [PATH] [EXPECTED]` (what `herokuish test` runs)
    #[command(hide = true)]
    HerokuishTest { path: Option<String>, expected: Option<String> },
    /// As root: the platform's long-running parts for this data dir (the router, its workers
    /// outside the docker group, slipway's sshd, app restore, the cron scheduler). Runs until
    /// stopped; `slipway install` starts it and keeps it running at boot
    Daemon {
        /// Stop the running daemon of this data dir (and the router and sshd it runs)
        #[arg(long)]
        stop: bool,
    },
    /// Inside a Dockerfile app's container: config vars from DIR's files, then exec the command
    #[command(hide = true)]
    EnvExec {
        dir: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
    #[command(flatten)]
    App(AppCommand),
    #[command(flatten)]
    Host(HostCommand),
    #[command(flatten)]
    Keys(KeyCommand),
}

/// What a key may run over SSH: the app commands and nothing else; no global option exists
/// here (no data dir, no router address, no buildpacks list).
#[derive(Parser, Debug)]
#[command(name = "slipway", no_binary_name = true, disable_help_subcommand = true, disable_version_flag = true)]
struct SshCli {
    #[command(subcommand)]
    command: AppCommand,
}

pub fn main(mut args: Vec<OsString>) -> i32 {
    let invoked = args.first().and_then(|a| Path::new(a).file_name()).map(|n| n.to_string_lossy().into_owned());
    let inject: &[&str] = match invoked.as_deref() {
        Some("build") => &["buildpack", "build"],
        Some("start") => &["procfile", "start"],
        Some("exec") => &["procfile", "exec"],
        _ => &[],
    };
    // `herokuish test [PATH] [EXPECTED]` is herokuish's (slipway's own `test DIR` differs).
    if invoked.as_deref() == Some("herokuish") && args.get(1).is_some_and(|a| a == "test") {
        args[1] = OsString::from("herokuish-test");
    }
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
            // The engine in the build container printed this error as its last line already.
            let engine_said_it = matches!(
                err.downcast_ref::<crate::containers::build::BuildFailed>(),
                Some(crate::containers::build::BuildFailed::Engine { .. })
            );
            if engine_said_it && err.chain().count() == 1 {
                return 1;
            }
            output::warn(format!("Error: {}", crate::output::error_chain(err.as_ref())));
            1
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let toml = cli.buildpacks_toml.as_deref();
    let data_dir = cli.data_dir.clone().unwrap_or_else(crate::platform::state::default_data_dir);
    if matches!(cli.command, Command::App(_) | Command::Host(_)) {
        crate::sys::become_owner_of(&data_dir)?;
        if let Some(listen) = &cli.router_listen {
            // Remembered for every later command, hooks run by sshd included.
            let state = crate::platform::state::State::open(&data_dir)?;
            crate::platform::settings::GlobalSettings::set(
                &state,
                crate::platform::settings::Global::RouterListen,
                listen,
            )?;
        }
    }
    // A deploy a push started records the pushing key (the hook passes it on).
    let actor = std::env::var("SLIPWAY_PUSHER").unwrap_or_else(|_| crate::sys::user_name() + " (cli)");
    let platform =
        Platform { data_dir: data_dir.clone(), router_listen: cli.router_listen.clone(), actor, caller: None };
    match cli.command {
        Command::Build(args) => build::build(*args, toml),
        Command::Matrix(args) => build::matrix(*args, toml),
        Command::Start { slug, process_type, port, env } => engine::start(slug, &process_type, port, &env),
        Command::RunImage { image, process_type, port, env, detach } => {
            block_on(crate::containers::run::run(&image, &process_type, port.unwrap_or(0), &parse_env(&env)?, detach))
        }
        Command::Test { dir, expected, path, buildpacks } => {
            Ok(if crate::engine::local::test(&dir, expected, &path, buildpacks, toml)? { 0 } else { 1 })
        }
        Command::Buildpack(cmd) => engine::buildpack(cmd, toml),
        Command::Runtime(cmd) => engine::runtime(cmd),
        Command::Procfile(cmd) => engine::procfile(cmd),
        Command::Slug(cmd) => engine::slug(cmd),
        Command::Stack(cmd) => engine::stack(cmd),
        Command::Paths => {
            print!("{}", Paths::from_env().render());
            Ok(0)
        }
        Command::Version => {
            crate::engine::herokuish::version(toml)?;
            Ok(0)
        }
        Command::HerokuishTest { path, expected } => crate::engine::herokuish::test_app(path, expected, toml),
        Command::Daemon { stop: true } => crate::platform::daemon::boot::stop(&data_dir),
        Command::Daemon { stop: false } => {
            let sshds = crate::gitpush::sshd::installed_for(&data_dir);
            let services = sshds.into_iter().map(|s| Box::new(s) as Box<dyn crate::platform::daemon::Service>);
            crate::platform::daemon::run(&data_dir, services.collect())
        }
        Command::EnvExec { dir, command } => Err(crate::engine::process::env_exec(&dir, &command)),
        Command::App(cmd) => block_on(apps::run_app(&platform, cmd)),
        Command::Host(cmd) => block_on(apps::run_host(&platform, cmd)),
        Command::Keys(cmd) => apps::run_keys(cmd, &cli.git_user, &data_dir),
    }
}

/// `ssh-command KEY`: git's requests are handled by the dispatcher; an app command is parsed
/// with [`SshCli`] (no global options) and runs here, as the same function the CLI calls.
async fn ssh_dispatch(p: &Platform, caller: Caller) -> Result<i32> {
    let argv = match dispatch::dispatch(&p.data_dir, &caller, &ssh_commands())? {
        Request::Greeted(code) => return Ok(code),
        Request::Command(argv) => argv,
    };
    let command = match parse_ssh_command(&argv) {
        Ok(command) => command,
        Err(e) => {
            let _ = e.print();
            return Ok(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Every argument is parsed and the caller's access checked before anything runs.
    caller.check(&p.state()?, &apps::need(&command)?)?;
    let p = Platform { actor: caller.key.clone(), caller: Some(caller), ..p.clone() };
    apps::run_app(&p, command).await
}

/// The names of the commands a key may run over SSH.
pub(crate) fn ssh_commands() -> Vec<String> {
    ssh_grammar().get_subcommands().map(|c| c.get_name().to_string()).collect()
}

/// The grammar of an SSH command line: [`SshCli`]'s, the app commands and no global option.
pub(crate) fn ssh_grammar() -> clap::Command {
    SshCli::command()
}

/// An allowed command's argv (from [`dispatch::parse`]) as an app command.
pub(crate) fn parse_ssh_command(argv: &[String]) -> Result<AppCommand, clap::Error> {
    SshCli::try_parse_from(argv).map(|cli| cli.command)
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
