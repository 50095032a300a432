//! An app's swarm tasks as slipway sees them: where each runs (node, address, published
//! port), its state, and which release it is; the router's upstreams follow the web tasks
//! that run ([`sync_routes`]); `ps:report` lists them per node.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};
use bollard::models::{Service, TaskState};
use bollard::query_parameters::{ListNodesOptions, ListTasksOptionsBuilder};

use crate::containers::docker::Engine;
use crate::platform::router::vhost::upstream_ok;
use crate::platform::runner::{Runner, LABEL_RELEASE};

#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: String,
    pub kind: String,
    pub slot: i64,
    pub node: String,
    pub node_addr: Option<IpAddr>,
    pub release: i64,
    pub state: TaskState,
    pub desired: TaskState,
    /// The node's address and the task's published port (web tasks).
    pub endpoint: Option<SocketAddr>,
    pub error: Option<String>,
}

impl TaskView {
    /// Running, and meant to keep running (not told to stop): traffic may go to it.
    pub fn serving(&self) -> bool {
        self.state == TaskState::RUNNING && self.desired == TaskState::RUNNING
    }
}

/// Each node's name and the address other nodes (and the router) reach it on.
pub async fn nodes(engine: &Engine) -> Result<HashMap<String, (String, Option<IpAddr>)>> {
    let list = engine.api.list_nodes(None::<ListNodesOptions>).await.context("cannot list the swarm's nodes")?;
    Ok(list
        .into_iter()
        .filter_map(|n| {
            let id = n.id?;
            let name = n.description.and_then(|d| d.hostname).unwrap_or_default();
            let status_addr = n.status.and_then(|s| s.addr).and_then(|a| a.parse::<IpAddr>().ok());
            // A manager may show 0.0.0.0 as its status address: its manager address says more.
            let manager_addr =
                n.manager_status.and_then(|m| m.addr).and_then(|a| a.parse::<SocketAddr>().ok()).map(|a| a.ip());
            let addr = status_addr.filter(|a| !a.is_unspecified()).or(manager_addr);
            Some((id, (name, addr)))
        })
        .collect())
}

/// The app's tasks of every type (those swarm still lists: recent history included).
pub async fn tasks_of(engine: &Engine, app: &str) -> Result<Vec<TaskView>> {
    tasks_in(engine, &super::services_of(engine, app).await?).await
}

/// The tasks of these services (by process type, as [`super::services_of`] gives them).
pub async fn tasks_in(engine: &Engine, services: &HashMap<String, Service>) -> Result<Vec<TaskView>> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let nodes = nodes(engine).await?;
    let mut out = Vec::new();
    for (kind, service) in services {
        let id = service.id.clone().unwrap_or_default();
        let filters = HashMap::from([("service", vec![id])]);
        let opts = ListTasksOptionsBuilder::default().filters(&filters).build();
        for t in engine.api.list_tasks(Some(opts)).await.context("cannot list the swarm's tasks")? {
            let status = t.status.clone().unwrap_or_default();
            let (node, addr) = t.node_id.as_ref().and_then(|n| nodes.get(n)).cloned().unwrap_or_default();
            let port = status
                .port_status
                .as_ref()
                .and_then(|p| p.ports.as_ref())
                .and_then(|ports| ports.iter().find_map(|p| p.published_port))
                .and_then(|p| u16::try_from(p).ok());
            let release = t
                .spec
                .as_ref()
                .and_then(|s| s.container_spec.as_ref())
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(LABEL_RELEASE))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            out.push(TaskView {
                id: t.id.clone().unwrap_or_default(),
                kind: kind.clone(),
                slot: t.slot.unwrap_or(0),
                node,
                node_addr: addr,
                release,
                state: status.state.unwrap_or(TaskState::NEW),
                desired: t.desired_state.unwrap_or(TaskState::NEW),
                endpoint: addr.zip(port).map(|(a, p)| SocketAddr::new(a, p)),
                error: status.err.filter(|e| !e.is_empty()),
            });
        }
    }
    out.sort_by(|a, b| (&a.kind, a.slot, &a.id).cmp(&(&b.kind, b.slot, &b.id)));
    Ok(out)
}

/// Where the router should send the app's traffic: every serving web task.
pub fn web_upstreams(tasks: &[TaskView]) -> Vec<SocketAddr> {
    let mut up: Vec<SocketAddr> = tasks
        .iter()
        .filter(|t| t.kind == "web" && t.serving())
        .filter_map(|t| t.endpoint)
        .filter(upstream_ok)
        .collect();
    up.sort();
    up.dedup();
    up
}

/// Points the router at the app's serving web tasks when that changed (an app without any
/// gets no entry, one without services is left alone); whether it did.
pub async fn sync_routes(r: &Runner, app: &str) -> Result<bool> {
    let services = super::services_of(&r.engine, app).await?;
    follow(r, app, &services, &tasks_in(&r.engine, &services).await?, false).await
}

/// Points the router at the serving web tasks among `tasks` (those of `services`): when they
/// changed, or always with `force` (the app's hosts or certificate changed). An app with no
/// services runs on this host: its routes are the runner's, left alone.
pub async fn follow(
    r: &Runner,
    app: &str,
    services: &HashMap<String, Service>,
    tasks: &[TaskView],
    force: bool,
) -> Result<bool> {
    if services.is_empty() {
        return Ok(false);
    }
    let upstreams = web_upstreams(tasks);
    let now = r.router.upstreams(app);
    if (now.is_none() && upstreams.is_empty()) || (!force && now.as_ref() == Some(&upstreams)) {
        return Ok(false);
    }
    r.route_to(app, &upstreams).await?;
    Ok(true)
}

fn state_name(s: TaskState) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// `ps:report` of a swarm app: its tasks per node, those meant to run.
pub async fn report(r: &Runner, app: &str) -> Result<(String, serde_json::Value)> {
    let tasks: Vec<TaskView> =
        tasks_of(&r.engine, app).await?.into_iter().filter(|t| t.desired == TaskState::RUNNING).collect();
    let mut text = String::from("Scheduler: swarm\n");
    let mut by_node: std::collections::BTreeMap<String, Vec<&TaskView>> = Default::default();
    for t in &tasks {
        let addr = t.node_addr.map(|a| format!(" ({a})")).unwrap_or_default();
        by_node.entry(format!("{}{addr}", t.node)).or_default().push(t);
    }
    for (node, list) in &by_node {
        text += &format!("Node {node}:\n");
        for t in list {
            text += &format!(
                "  {:<26} v{:<4} {:<10} {}\n",
                format!("{app}.{}.{}", t.kind, t.slot),
                t.release,
                state_name(t.state),
                t.endpoint.map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
    let json = tasks
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": format!("{app}.{}.{}", t.kind, t.slot),
                "type": t.kind,
                "index": t.slot,
                "release": t.release,
                "node": t.node,
                "status": state_name(t.state),
                "running": t.serving(),
                "endpoint": t.endpoint.map(|e| e.to_string()),
            })
        })
        .collect();
    Ok((text, serde_json::Value::Array(json)))
}
