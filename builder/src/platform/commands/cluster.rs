//! `scheduler:*` (Dokku's: which scheduler runs an app), `registry:*` (where swarm nodes pull
//! release images from) and `cluster:*` (the swarm's nodes).

use anyhow::{bail, Result};

use super::{Format, Platform, GLOBAL};
use crate::containers::docker::Engine;
use crate::output;
use crate::platform::scheduler::{self, swarm, Scheduler};

/// `scheduler:set APP|--global selected [docker-local|swarm]` (no value: unset). It applies from
/// the app's next rollout (a deploy, `ps:restart`, a config change).
pub fn set(p: &Platform, app: &str, property: &str, value: Option<&str>) -> Result<()> {
    if property != "selected" {
        bail!("{property:?} is not a scheduler property: use `scheduler:set {app} selected docker-local|swarm`");
    }
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    let chosen = value.map(Scheduler::named).transpose()?;
    scheduler::set(&state, scope, chosen)?;
    let what = chosen.map(Scheduler::name).unwrap_or("the default");
    if scope.is_empty() {
        output::header(format!("Apps without a scheduler of their own now run on {what} from their next deploy"));
    } else {
        let now = scheduler::selected(&state, scope)?.name();
        output::header(format!("{app} runs on {now} from its next deploy or `slipway ps:restart {app}` (set: {what})"));
    }
    Ok(())
}

/// `scheduler:report APP|--global`
pub fn report(p: &Platform, app: &str, format: Format) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    let own = scheduler::setting(&state, scope)?.map(Scheduler::name).unwrap_or("");
    let global = scheduler::setting(&state, "")?.map(Scheduler::name).unwrap_or("");
    let selected = scheduler::selected(&state, scope)?.name();
    if format == Format::Json {
        super::print_json(&serde_json::json!({ "selected": selected, "set": own, "global": global }));
        return Ok(());
    }
    output::header(format!("{} scheduler information", if scope.is_empty() { "Global" } else { app }));
    println!("       Scheduler computed selected: {selected}");
    println!("       Scheduler selected:          {own}");
    println!("       Scheduler global selected:   {global}");
    Ok(())
}

/// `registry:set --global server HOST:PORT` (no value: back to the local registry).
pub fn registry_set(p: &Platform, scope: &str, property: &str, value: Option<&str>) -> Result<()> {
    if scope != GLOBAL {
        bail!("the registry is the swarm's, for every app: use `registry:set --global server HOST:PORT`");
    }
    if property != "server" {
        bail!("{property:?} is not a registry property: use `registry:set --global server HOST:PORT`");
    }
    let state = p.state()?;
    swarm::registry::set_server(&state, value.unwrap_or(""))?;
    match value {
        Some(server) => output::header(format!("Release images of swarm apps go to {server} from their next deploy")),
        None => output::header("Release images of swarm apps go to the local registry from their next deploy"),
    }
    Ok(())
}

/// `registry:report`: the registry in use and, for the local one, its address and certificate.
pub fn registry_report(p: &Platform, format: Format) -> Result<()> {
    let state = p.state()?;
    let configured = swarm::registry::configured(&state)?;
    let local = swarm::registry::local(&p.data_dir);
    let (server, kind) = match (&configured, &local) {
        (Some(s), _) => (s.clone(), "set with registry:set"),
        (None, Some(l)) => (l.server.clone(), "local (run by slipway daemon)"),
        (None, None) => (String::new(), "local, made on the first swarm deploy"),
    };
    let ca = local.filter(|_| configured.is_none()).map(|l| format!("/etc/docker/certs.d/{}/ca.crt", l.server));
    if format == Format::Json {
        super::print_json(&serde_json::json!({ "server": server, "kind": kind, "ca": ca }));
        return Ok(());
    }
    output::header("Registry information");
    println!("       Registry server:      {server}");
    println!("       Registry kind:        {kind}");
    println!("       Registry certificate: {}", ca.unwrap_or_default());
    Ok(())
}

/// `cluster:init [--advertise-addr ADDR]`
pub async fn init(advertise: Option<&str>) -> Result<()> {
    let engine = Engine::connect().await?;
    let addr = match advertise {
        Some(a) => a.parse().map_err(|_| {
            anyhow::anyhow!("{a:?} is not an IP address: give this host's address that the other nodes reach")
        })?,
        None => {
            bail!("give this host's address that the other nodes reach: `slipway cluster:init --advertise-addr ADDR`")
        }
    };
    output::header(swarm::nodes::init(&engine, addr).await?);
    Ok(())
}

/// `cluster:join-token`: the command a new worker runs.
pub async fn join_token(p: &Platform) -> Result<()> {
    let engine = Engine::connect().await?;
    let state = p.state()?;
    let local = swarm::registry::local(&p.data_dir).map(|l| l.server);
    let registry = if swarm::registry::configured(&state)?.is_some() { None } else { local };
    print!("{}", swarm::nodes::join_token(&engine, registry.as_deref()).await?);
    Ok(())
}

/// `cluster:list [--format json]`
pub async fn list(format: Format) -> Result<()> {
    let engine = Engine::connect().await?;
    let nodes = swarm::nodes::list(&engine).await?;
    if format == Format::Json {
        super::print_json(&serde_json::Value::Array(nodes));
        return Ok(());
    }
    output::header("Swarm nodes");
    println!(
        "{:<27} {:<16} {:<16} {:<8} {:<8} {:<12} LABELS",
        "ID", "HOSTNAME", "ADDRESS", "ROLE", "STATE", "AVAILABILITY"
    );
    for n in nodes {
        let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
        let labels: Vec<String> = n["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
            .unwrap_or_default();
        println!(
            "{:<27} {:<16} {:<16} {:<8} {:<8} {:<12} {}",
            s("id"),
            s("hostname"),
            s("address"),
            s("role"),
            s("state"),
            s("availability"),
            labels.join(",")
        );
    }
    Ok(())
}

/// `cluster:remove NODE`
pub async fn remove(node: &str) -> Result<()> {
    let engine = Engine::connect().await?;
    output::header(swarm::nodes::remove(&engine, node).await?);
    Ok(())
}

/// `scheduler:sync-routes` (run by the daemon every few seconds while an app is on swarm): each
/// swarm app's router entry follows its tasks (moved to another node, restarted on a new
/// port). An app being deployed is skipped: its deploy follows its tasks itself.
pub async fn sync_routes(p: &Platform) -> Result<()> {
    let state = p.state()?;
    let apps = scheduler::swarm_apps(&state)?;
    if apps.is_empty() {
        return Ok(());
    }
    let r = crate::platform::runner::Runner::open(&p.data_dir, p.router_listen.clone()).await?;
    for app in apps {
        let Ok(_lock) = crate::platform::lock::acquire(&p.data_dir, &app) else { continue };
        match swarm::tasks::sync_routes(&r, &app).await {
            Ok(true) => output::header(format!("{app}: the router follows its swarm tasks")),
            Ok(false) => {}
            Err(e) => output::warn(format!("{app}: {e:#}")),
        }
    }
    Ok(())
}
