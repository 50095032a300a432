//! The `swarm` scheduler: an app's process types as Docker Swarm services, one per type, on
//! every node of the swarm this host manages.
//!
//! - A deploy pushes the release image to the registry ([`registry`]), stores the release's
//!   config as swarm secrets (one per variable, files under `/run/secrets` that `/start` loads as
//!   ENV_PATH: never in `docker service inspect`), then creates or updates each type's service
//!   ([`spec`]): a rolling update, new tasks started before old ones stop, each gated by the
//!   app's checks as the service's healthcheck, rolled back by swarm itself when one fails.
//! - The routing mesh needs IPVS, which not every kernel has; slipway does without it: a web
//!   task publishes its port on its own node (`mode=host`), and the router sends the app's
//!   traffic to every running task's node address and port ([`tasks`]). While a rollout or
//!   scale runs, slipway follows the tasks and moves the router as they change; otherwise the
//!   daemon does (a task that moved to another node, or was restarted on a new port). A task
//!   told to stop keeps serving for a drain period (`SLIPWAY_DRAIN`) before its process gets
//!   SIGTERM, so the router has moved away before it goes.
//! - One-off runs (`run`, release scripts, cron) are swarm jobs ([`job`]); nodes are Docker's
//!   own (`cluster:*`, [`nodes`]).

pub mod job;
pub mod nodes;
pub mod registry;
pub mod rollout;
pub mod spec;
pub mod tasks;

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{bail, Context, Result};
use bollard::models::Service;
use bollard::query_parameters::ListServicesOptionsBuilder;
use sha2::Digest;

use crate::containers::docker::{Engine, LABEL_APP};
use crate::platform::runner::LABEL_TYPE;

/// Seconds a task told to stop keeps serving before its process gets SIGTERM.
pub const DRAIN_SECONDS: u32 = 4;

/// A service's name: `APP_TYPE` (Docker's stacks use `_` too); an app name with dots (which
/// service names cannot have) or a long one gets a hash of its own in their place.
pub fn service_name(app: &str, kind: &str) -> String {
    let hash = |text: &str, bytes: usize| -> String {
        sha2::Sha256::digest(text.as_bytes()).iter().take(bytes).map(|b| format!("{b:02x}")).collect()
    };
    let base = if app.contains('.') || app.len() + kind.len() > 50 {
        let short: String = app.chars().take(30).map(|c| if c == '.' { '-' } else { c }).collect();
        format!("{}-{}", short.trim_end_matches('-'), hash(app, 4))
    } else {
        app.to_string()
    };
    let name = format!("{base}_{kind}");
    // A DNS label: 63 characters at most (a long process type too).
    if name.len() <= 63 {
        name
    } else {
        format!("slipway-{}", hash(&format!("{app}_{kind}"), 12))
    }
}

/// The manager's address, which nodes reach it (and its registry) on: this engine must be a
/// swarm manager.
pub async fn manager_addr(engine: &Engine) -> Result<IpAddr> {
    let info = engine.api.info().await.context("cannot ask Docker about its swarm")?;
    let swarm = info.swarm.unwrap_or_default();
    if swarm.control_available != Some(true) {
        bail!("this host's Docker engine is not a swarm manager: run `slipway cluster:init --advertise-addr ADDR` (ADDR: this host's address that the other nodes reach)");
    }
    let addr = swarm.node_addr.unwrap_or_default();
    addr.parse().with_context(|| format!("the swarm's address {addr:?} is not an IP address"))
}

/// The app's services (of every process type), by type.
pub async fn services_of(engine: &Engine, app: &str) -> Result<HashMap<String, Service>> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={app}")])]);
    let opts = ListServicesOptionsBuilder::default().filters(&filters).build();
    let list = match engine.api.list_services(Some(opts)).await {
        Ok(list) => list,
        // Not a swarm (any more): an app has no services there.
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 503, .. }) => Vec::new(),
        Err(e) => return Err(e).context("cannot list the swarm's services"),
    };
    Ok(list
        .into_iter()
        .filter_map(|s| {
            let kind = s.spec.as_ref()?.labels.as_ref()?.get(LABEL_TYPE)?.clone();
            Some((kind, s))
        })
        .collect())
}

/// Removes the app's services (its tasks stop; with `every`, one-off jobs left by a killed
/// run too), and with `every` its secrets and its release images in the registry.
pub async fn remove_app(r: &crate::platform::runner::Runner, app: &str, every: bool) -> Result<()> {
    let mut ids: Vec<String> = services_of(&r.engine, app).await?.values().filter_map(|s| s.id.clone()).collect();
    if every {
        let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={app}")])]);
        let opts = ListServicesOptionsBuilder::default().filters(&filters).build();
        ids.extend(r.engine.api.list_services(Some(opts)).await.unwrap_or_default().into_iter().filter_map(|s| s.id));
        ids.sort();
        ids.dedup();
    }
    for id in ids {
        r.engine.api.delete_service(&id).await.with_context(|| format!("cannot remove service {id}"))?;
    }
    if every {
        // A secret is in use until its tasks are gone: a few seconds after their services.
        for _ in 0..30 {
            if spec::remove_secrets(&r.engine, app, &[]).await == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        registry::forget_app(r, app).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_dns_labels() {
        assert_eq!(service_name("shop", "web"), "shop_web");
        let dotted = service_name("shop.example", "worker");
        assert!(dotted.starts_with("shop-example-") && dotted.ends_with("_worker"), "{dotted}");
        assert_ne!(service_name("a.b", "web"), service_name("a-b", "web"));
        let long = service_name(&"x".repeat(60), "web");
        assert!(long.len() <= 63, "{long}");
        let long_type = service_name("shop", &"w".repeat(63));
        assert!(long_type.len() <= 63 && long_type.starts_with("slipway-"), "{long_type}");
    }
}
