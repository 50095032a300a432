//! The swarm's nodes, Docker's own: `cluster:init` makes this host's engine a swarm manager,
//! `cluster:join-token` says how another host joins (`docker swarm join`), `cluster:list`
//! shows the nodes, `cluster:remove` drains one and takes it out.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bollard::models::{NodeSpecAvailabilityEnum, SwarmInitRequest};
use bollard::query_parameters::{DeleteNodeOptionsBuilder, ListNodesOptions, UpdateNodeOptionsBuilder};

use crate::containers::docker::Engine;

/// Makes this host's engine a swarm manager that other nodes reach at `advertise`.
pub async fn init(engine: &Engine, advertise: IpAddr) -> Result<String> {
    let info = engine.api.info().await.context("cannot ask Docker about its swarm")?;
    let swarm = info.swarm.unwrap_or_default();
    if swarm.control_available == Some(true) {
        let addr = swarm.node_addr.unwrap_or_default();
        return Ok(format!("This host is a swarm manager already, at {addr}"));
    }
    let request = SwarmInitRequest {
        listen_addr: Some(format!("{}:2377", super::registry::url_host(advertise))),
        advertise_addr: Some(advertise.to_string()),
        ..Default::default()
    };
    let id = engine.api.init_swarm(request).await.context("cannot make this host a swarm manager")?;
    Ok(format!(
        "This host is the manager of a new swarm (node {id}), at {advertise}\n       Web tasks publish their ports on every address of their node: let only this host reach them (Docker's 32768-60999)"
    ))
}

/// What another host runs to join as a worker, and what it needs first.
pub async fn join_token(engine: &Engine, registry: Option<&str>) -> Result<String> {
    let addr = super::manager_addr(engine).await?;
    let swarm = engine.api.inspect_swarm().await.context("cannot read the swarm's join tokens")?;
    let token = swarm.join_tokens.and_then(|t| t.worker).unwrap_or_default();
    let mut out = format!("docker swarm join --token {token} {}:2377\n", super::registry::url_host(addr));
    if let Some(server) = registry {
        out += &format!(
            "# Before it joins, the node's Docker must trust the swarm's registry: copy this host's\n# /etc/docker/certs.d/{server}/ca.crt to the same path on it.\n"
        );
    }
    Ok(out)
}

/// `cluster:list`: each node's id, name, address, role, state, availability and labels.
pub async fn list(engine: &Engine) -> Result<Vec<serde_json::Value>> {
    super::manager_addr(engine).await?;
    let nodes = engine.api.list_nodes(None::<ListNodesOptions>).await.context("cannot list the swarm's nodes")?;
    let name_of = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut out = Vec::new();
    for n in nodes {
        let spec = n.spec.clone().unwrap_or_default();
        let status = n.status.clone().unwrap_or_default();
        out.push(serde_json::json!({
            "id": n.id.clone().unwrap_or_default(),
            "hostname": n.description.as_ref().and_then(|d| d.hostname.clone()).unwrap_or_default(),
            "address": status.addr.clone().unwrap_or_default(),
            "role": name_of(spec.role.map(|r| serde_json::to_value(r).unwrap_or_default())),
            "state": name_of(status.state.map(|s| serde_json::to_value(s).unwrap_or_default())),
            "availability": name_of(spec.availability.map(|a| serde_json::to_value(a).unwrap_or_default())),
            "labels": spec.labels.unwrap_or_default(),
        }));
    }
    Ok(out)
}

/// `cluster:remove NODE`: drains it (its tasks move to other nodes), then takes it out of the
/// swarm. This host's own node stays.
pub async fn remove(engine: &Engine, node: &str) -> Result<String> {
    super::manager_addr(engine).await?;
    let info = engine
        .api
        .inspect_node(node)
        .await
        .with_context(|| format!("there is no node {node:?} in the swarm: see `slipway cluster:list`"))?;
    let id = info.id.clone().unwrap_or_default();
    let me = engine.api.info().await?.swarm.and_then(|s| s.node_id).unwrap_or_default();
    if id == me {
        bail!("{node} is this host, the swarm's manager: it cannot be removed");
    }
    let mut spec = info.spec.clone().unwrap_or_default();
    spec.availability = Some(NodeSpecAvailabilityEnum::DRAIN);
    let version = info.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    let opts = UpdateNodeOptionsBuilder::default().version(version as i64).build();
    engine.api.update_node(&id, spec, opts).await.with_context(|| format!("cannot drain node {node}"))?;
    // Its tasks stop there and start elsewhere; a node that is down has none to wait for.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let filters = std::collections::HashMap::from([
            ("node", vec![id.clone()]),
            ("desired-state", vec!["running".to_string()]),
        ]);
        let opts = bollard::query_parameters::ListTasksOptionsBuilder::default().filters(&filters).build();
        if engine.api.list_tasks(Some(opts)).await.map(|t| t.is_empty()).unwrap_or(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let opts = DeleteNodeOptionsBuilder::default().force(true).build();
    engine.api.delete_node(&id, Some(opts)).await.with_context(|| format!("cannot remove node {node}"))?;
    Ok(format!(
        "Node {node} was drained and removed from the swarm; on it, `docker swarm leave` makes it a plain engine again"
    ))
}
