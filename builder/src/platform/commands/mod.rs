//! Every Dokku-style command, one function each, called by the CLI and (for the app commands)
//! by the SSH dispatcher alike. Each prints Dokku-style output and returns one error; the
//! caller prints it once. Commands that only read or write state do not need Docker.

pub mod acl;
pub mod apps;
pub mod buildpacks;
pub mod builds;
pub mod certs;
pub mod checks;
pub mod cluster;
pub mod config;
pub mod cron;
pub mod domains;
pub mod git;
pub mod letsencrypt;
pub mod logs;
pub mod ports;
pub mod ps;
pub mod releases;
pub mod report;
pub mod services;
pub mod settings;
pub mod stacks;

use std::path::PathBuf;

use anyhow::Result;

use super::access::Caller;
use super::runner::Runner;
use super::state::State;

/// Where the platform's state is, and the router address given on the command line.
#[derive(Debug, Clone)]
pub struct Platform {
    pub data_dir: PathBuf,
    /// `--router-listen`: remembered when given.
    pub router_listen: Option<String>,
    /// Who asks: an SSH key's name, or `USER (cli)` on the host; recorded with releases.
    pub actor: String,
    /// The key a command came in with over SSH (None on the host, where everyone is an admin).
    pub caller: Option<Caller>,
}

/// `--global` in place of an app name: global config.
pub const GLOBAL: &str = "--global";

/// How a report prints: Dokku's text, or JSON for scripts (`--format json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// A report as JSON, on standard output.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

impl Platform {
    pub fn state(&self) -> Result<State> {
        State::open(&self.data_dir)
    }

    /// The state, once `app` is known to exist.
    pub fn app_state(&self, app: &str) -> Result<State> {
        let state = self.state()?;
        state.require_app(app)?;
        Ok(state)
    }

    /// The runner (state, Docker and router), once `app` is known to exist.
    pub async fn runner_for(&self, app: &str) -> Result<Runner> {
        let mut r = Runner::open(&self.data_dir, self.router_listen.clone()).await?;
        r.state.require_app(app)?;
        r.actor = self.actor.clone();
        Ok(r)
    }

    /// The config scope `app` names: "" for `--global`, else the app (which must exist).
    pub fn scope<'a>(&self, state: &State, app: &'a str) -> Result<&'a str> {
        if app == GLOBAL {
            return Ok("");
        }
        state.require_app(app)?;
        Ok(app)
    }
}
