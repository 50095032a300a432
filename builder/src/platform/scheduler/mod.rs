//! Process schedulers (Dokku's `scheduler:*`): what runs an app's process types.
//!
//! - `docker-local`, the default: containers on this host's Docker engine, rolled out by the
//!   [runner](super::runner).
//! - `swarm`: Docker Swarm services, one per process type, on every node of the swarm, their
//!   images pulled from a registry ([`swarm`]).
//!
//! The seam is the runner's entry points that act on processes. A rollout asks [`selected`]
//! (the setting: a rollout is what moves an app from one scheduler to the other); everything
//! else (`ps:scale`, `ps:restore`, `ps:report`, `logs`, one-off runs, routing, hygiene,
//! `apps:destroy`) asks [`running_on`], where the app runs now, so that changing the setting
//! changes nothing until the next rollout. An app on swarm goes to [`swarm`]. A third
//! scheduler (Kubernetes) would be a variant of [`Scheduler`] and a module beside `swarm`
//! with the same functions.

pub mod swarm;

use std::path::Path;

use anyhow::{bail, Result};

use super::state::State;

/// The setting's key, per app and (scope "") for every app.
const KEY: &str = "scheduler";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    DockerLocal,
    Swarm,
}

impl Scheduler {
    pub const ALL: [Scheduler; 2] = [Scheduler::DockerLocal, Scheduler::Swarm];

    pub fn name(self) -> &'static str {
        match self {
            Scheduler::DockerLocal => "docker-local",
            Scheduler::Swarm => "swarm",
        }
    }

    pub fn named(name: &str) -> Result<Scheduler> {
        match Scheduler::ALL.into_iter().find(|s| s.name() == name) {
            Some(s) => Ok(s),
            None => bail!("{name:?} is not a scheduler: choose docker-local or swarm"),
        }
    }
}

/// The scheduler an app runs on: its own setting, else the global one, else docker-local.
pub fn selected(state: &State, app: &str) -> Result<Scheduler> {
    for scope in [app, ""] {
        if let Some(name) = state.setting(scope, KEY)? {
            return Scheduler::named(&name);
        }
    }
    Ok(Scheduler::DockerLocal)
}

/// Where the app's processes run now: on swarm while it has services there (only looked up
/// once some app was put on swarm), else on this host.
pub async fn running_on(engine: &crate::containers::docker::Engine, state: &State, app: &str) -> Result<Scheduler> {
    if !swarm_mark(&state.data_dir).exists() {
        return Ok(Scheduler::DockerLocal);
    }
    Ok(if swarm::services_of(engine, app).await?.is_empty() { Scheduler::DockerLocal } else { Scheduler::Swarm })
}

/// The setting of a scope (an app, or "" for every app), when it has one of its own.
pub fn setting(state: &State, scope: &str) -> Result<Option<Scheduler>> {
    state.setting(scope, KEY)?.map(|n| Scheduler::named(&n)).transpose()
}

/// Sets (or with None, unsets) the scheduler of a scope. Choosing swarm leaves a mark in the
/// data dir: the daemon keeps swarm apps' routes in step with their tasks while it is there.
pub fn set(state: &State, scope: &str, scheduler: Option<Scheduler>) -> Result<()> {
    if scheduler == Some(Scheduler::Swarm) {
        std::fs::write(swarm_mark(&state.data_dir), "an app runs on swarm\n")?;
    }
    state.set_setting(scope, KEY, scheduler.map(Scheduler::name))
}

/// The mark [`set`] leaves once an app (or every app) is put on swarm.
pub fn swarm_mark(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("swarm-in-use")
}

/// The apps on swarm.
pub fn swarm_apps(state: &State) -> Result<Vec<String>> {
    let mut apps = Vec::new();
    for app in state.apps()? {
        if selected(state, &app)? == Scheduler::Swarm {
            apps.push(app);
        }
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_takes_its_own_setting_then_the_global_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        state.create_app("shop").unwrap();
        assert_eq!(selected(&state, "shop").unwrap(), Scheduler::DockerLocal);
        set(&state, "", Some(Scheduler::Swarm)).unwrap();
        assert_eq!(selected(&state, "shop").unwrap(), Scheduler::Swarm);
        assert!(swarm_mark(dir.path()).exists());
        set(&state, "shop", Some(Scheduler::DockerLocal)).unwrap();
        assert_eq!(selected(&state, "shop").unwrap(), Scheduler::DockerLocal);
        assert!(swarm_apps(&state).unwrap().is_empty());
        assert!(Scheduler::named("k3s").unwrap_err().to_string().contains("docker-local or swarm"));
    }
}
