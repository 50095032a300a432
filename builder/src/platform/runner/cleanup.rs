//! The runner's clean-up: old containers stopped after a switch, hygiene after each rollout
//! (old release images, exited one-offs, and on swarm old secrets and registry tags), and
//! everything of an app on `apps:destroy`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use bollard::query_parameters::{ListContainersOptionsBuilder, StopContainerOptionsBuilder};

use super::{label, Runner, Running};
use crate::containers::docker::{LABEL_APP, LABEL_ROLE};
use crate::output;
use crate::platform::scheduler;
use crate::platform::settings::GlobalSettings;
use crate::platform::state::ReleaseStatus;

impl Runner {
    /// Stops old containers after the router moved away: SIGTERM, SIGKILL after the timeout.
    pub(crate) async fn retire(&self, old: &[Running]) {
        if old.is_empty() {
            return;
        }
        // Requests that reached the old containers just before the switch get to finish.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let timeout = match GlobalSettings::load(&self.state) {
            Ok(g) => g.stop_timeout as i32,
            Err(e) => {
                output::warn(format!("cannot read the stop timeout ({e:#}); stopping the old containers at once"));
                0
            }
        };
        let stops = old.iter().map(|c| async move {
            let opts = StopContainerOptionsBuilder::default().t(timeout).build();
            let _ = self.engine.api.stop_container(&c.id, Some(opts)).await;
            self.engine.remove_container(&c.id).await;
        });
        futures_util::future::join_all(stops).await;
    }

    /// Keeps the newest N release images (setting `keep-releases`, default 5); removes older
    /// ones, exited one-offs and orphaned build containers.
    pub async fn hygiene(&self, app: &str) -> Result<()> {
        let keep = GlobalSettings::load(&self.state)?.keep_releases;
        let releases = self.state.releases(app)?;
        let kept: Vec<&str> = releases
            .iter()
            .filter(|r| r.status == ReleaseStatus::Succeeded)
            .take(keep)
            .map(|r| r.image.as_str())
            .collect();
        for r in &releases {
            if !kept.contains(&r.image.as_str()) && self.engine.image_exists(&r.image).await.unwrap_or(false) {
                self.engine.remove_image_quietly(&r.image).await;
            }
        }
        let filters = HashMap::from([
            ("label", vec![format!("{LABEL_APP}={app}")]),
            ("status", vec!["exited".to_string(), "created".to_string(), "dead".to_string()]),
        ]);
        let opts = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        for c in self.engine.api.list_containers(Some(opts)).await.unwrap_or_default() {
            if label(&c, LABEL_ROLE).as_deref() != Some("process") {
                if let Some(id) = c.id {
                    self.engine.remove_container(&id).await;
                }
            }
        }
        self.engine.remove_dangling(Some(app)).await?;
        // Only for an app that is (or is going) on swarm: others never touch the registry.
        let on_swarm = scheduler::selected(&self.state, app)? == scheduler::Scheduler::Swarm
            || self.running_on(app).await? == scheduler::Scheduler::Swarm;
        if on_swarm {
            let versions = |keep: bool| -> Vec<i64> {
                releases.iter().filter(|r| kept.contains(&r.image.as_str()) == keep).map(|r| r.version).collect()
            };
            scheduler::swarm::spec::remove_secrets(&self.engine, app, &versions(true)).await;
            scheduler::swarm::registry::untag_local(self, app, &versions(false)).await;
            if let Err(e) = scheduler::swarm::registry::hygiene(self, app, &versions(true), &versions(false)).await {
                output::warn(format!("the swarm's registry keeps old images of {app}: {e:#}"));
            }
        }
        Ok(())
    }

    /// Removes everything of an app: containers, images, cache volume, router entry, state.
    pub async fn destroy(&mut self, app: &str) -> Result<()> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={app}")])]);
        let opts = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        for c in self.engine.api.list_containers(Some(opts)).await.context("cannot list containers")? {
            if let Some(id) = c.id {
                self.engine.remove_container(&id).await;
            }
        }
        for (id, _, _) in self.engine.images_with_label(&format!("{LABEL_APP}={app}")).await? {
            self.engine.remove_image_quietly(&id).await;
        }
        self.engine.remove_volume(&crate::containers::build::cache_volume(app)).await;
        if scheduler::swarm_mark(&self.state.data_dir).exists() {
            if let Err(e) = scheduler::swarm::remove_app(self, app, true).await {
                output::warn(format!("{e:#}: remove what is left of {app} on the swarm with `docker service rm`"));
            }
        }
        self.router.remove_app(app).await?;
        let _ = std::fs::remove_dir_all(self.state.data_dir.join("apps").join(app));
        self.state.destroy_app(app)?;
        Ok(())
    }
}
