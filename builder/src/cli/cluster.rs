//! `scheduler:*`, `registry:*` and `cluster:*` as clap types, mapped onto
//! `platform::commands::cluster`. Over SSH, only `scheduler:report APP` is for developer keys:
//! where apps run and which hosts join is an admin's call.

use anyhow::Result;
use clap::Subcommand;

use crate::platform::access::Need;
use crate::platform::commands::{cluster as cmd, Format, Platform, GLOBAL};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    #[command(
        name = "scheduler:set",
        about = "Choose what runs an app (or --global: every app) from its next deploy: docker-local or swarm"
    )]
    SchedulerSet {
        app: String,
        /// The property: selected
        property: String,
        /// docker-local or swarm (none: unset)
        value: Option<String>,
    },
    #[command(name = "scheduler:report", about = "The scheduler an app (or --global) runs on")]
    SchedulerReport {
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "registry:set", about = "Where swarm nodes pull release images from: --global server HOST:PORT")]
    RegistrySet {
        scope: String,
        /// The property: server
        property: String,
        /// HOST:PORT (none: the local registry)
        value: Option<String>,
    },
    #[command(name = "registry:report", about = "The registry swarm apps' release images go to")]
    RegistryReport {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "cluster:join-token", about = "The command another host runs to join the swarm as a worker")]
    ClusterJoinToken,
    #[command(name = "cluster:list", about = "The swarm's nodes: state, availability, labels")]
    ClusterList {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "cluster:remove", about = "Drain a node (its tasks move) and take it out of the swarm")]
    ClusterRemove { node: String },
}

impl ClusterCommand {
    /// What it touches, for the caller's access check over SSH.
    pub fn need(&self) -> Need {
        match self {
            Self::SchedulerReport { app, .. } if app != GLOBAL => Need::App(app.clone()),
            _ => Need::Admin,
        }
    }

    pub async fn run(self, p: &Platform) -> Result<i32> {
        match self {
            Self::SchedulerSet { app, property, value } => cmd::set(p, &app, &property, value.as_deref())?,
            Self::SchedulerReport { app, format } => cmd::report(p, &app, format)?,
            Self::RegistrySet { scope, property, value } => cmd::registry_set(p, &scope, &property, value.as_deref())?,
            Self::RegistryReport { format } => cmd::registry_report(p, format)?,
            Self::ClusterJoinToken => cmd::join_token(p).await?,
            Self::ClusterList { format } => cmd::list(format).await?,
            Self::ClusterRemove { node } => cmd::remove(&node).await?,
        }
        Ok(0)
    }
}

/// On this host only: making it a swarm manager, and the daemon's route sync.
#[derive(Subcommand, Debug)]
pub enum ClusterHostCommand {
    #[command(name = "cluster:init", about = "Make this host's Docker engine a swarm manager")]
    ClusterInit {
        /// This host's address that the other nodes reach
        #[arg(long)]
        advertise_addr: Option<String>,
    },
    #[command(name = "scheduler:sync-routes", hide = true)]
    SchedulerSyncRoutes,
}

impl ClusterHostCommand {
    pub async fn run(self, p: &Platform) -> Result<i32> {
        match self {
            Self::ClusterInit { advertise_addr } => cmd::init(advertise_addr.as_deref()).await?,
            Self::SchedulerSyncRoutes => cmd::sync_routes(p).await?,
        }
        Ok(0)
    }
}
