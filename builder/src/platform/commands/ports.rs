//! `ports:*` (Dokku's): `http:HOST_PORT:CONTAINER_PORT` mappings (see
//! [`crate::platform::ports`]). A change to a deployed app is a new release with its processes
//! restarted (the container port is their `PORT`); when it fails, the mappings are as they were.

use anyhow::{bail, Context, Result};

use super::{print_json, Format, Platform};
use crate::output;
use crate::platform::names::{listen_ip, listen_port};
use crate::platform::ports::{self, PortMap};
use crate::platform::settings::GlobalSettings;

/// `ports:list APP`: the mappings, or the default one.
pub async fn list(p: &Platform, app: &str) -> Result<()> {
    output::header(format!("{app} port mappings"));
    println!("    {:<8}{:<12}container port", "scheme", "host port");
    for m in effective(p, app).await? {
        println!("    {:<8}{:<12}{}", "http", m.host, m.container);
    }
    Ok(())
}

/// `ports:report APP [--format json]`
pub async fn report(p: &Platform, app: &str, format: Format) -> Result<()> {
    let state = p.app_state(app)?;
    let set: Vec<String> = ports::mappings(&state, app)?.iter().map(ToString::to_string).collect();
    let effective: Vec<String> = effective(p, app).await?.iter().map(ToString::to_string).collect();
    if format == Format::Json {
        print_json(&serde_json::json!({ "app": app, "map": set, "effective": effective }));
        return Ok(());
    }
    output::header(format!("{app} ports information"));
    println!("       {:<20}{}", "Ports map:", if set.is_empty() { "-".into() } else { set.join(" ") });
    println!("       {:<20}{}", "Ports in force:", effective.join(" "));
    Ok(())
}

/// The mappings in force: the set ones, else the router's port to 5000 (a Dockerfile image's
/// first EXPOSEd port).
async fn effective(p: &Platform, app: &str) -> Result<Vec<PortMap>> {
    let state = p.app_state(app)?;
    let set = ports::mappings(&state, app)?;
    if !set.is_empty() {
        return Ok(set);
    }
    let listen = GlobalSettings::load(&state)?.router_listen;
    let host = listen_port(&listen).unwrap_or(80);
    let mut container = crate::containers::process::APP_PORT;
    if let Some(release) = state.current_release(app)? {
        if let Ok(engine) = crate::containers::docker::Engine::connect().await {
            container = crate::containers::process::container_port(&engine, &release.build, &release.image).await?;
        }
    }
    Ok(vec![PortMap { host, container }])
}

/// `ports:add APP MAP...`
pub async fn add(p: &Platform, app: &str, maps: &[String]) -> Result<()> {
    let added = parse(maps)?;
    change(p, app, |mut current| {
        current.extend(added);
        current
    })
    .await
}

/// `ports:set APP MAP...`
pub async fn set(p: &Platform, app: &str, maps: &[String]) -> Result<()> {
    let new = parse(maps)?;
    change(p, app, |_| new).await
}

/// `ports:remove APP MAP|HOST_PORT...`
pub async fn remove(p: &Platform, app: &str, items: &[String]) -> Result<()> {
    let state = p.app_state(app)?;
    let current = ports::mappings(&state, app)?;
    let mut gone = Vec::new();
    for item in items {
        let found: Vec<PortMap> = match item.parse::<u16>() {
            Ok(host) => current.iter().filter(|m| m.host == host).copied().collect(),
            Err(_) => vec![PortMap::parse(item)?].into_iter().filter(|m| current.contains(m)).collect(),
        };
        if found.is_empty() {
            bail!("{app} has no mapping {:?}; `ports:list {app}` lists them", output::printable(item));
        }
        gone.extend(found);
    }
    change(p, app, |current| current.into_iter().filter(|m| !gone.contains(m)).collect()).await
}

/// `ports:clear APP`: back to the default mapping.
pub async fn clear(p: &Platform, app: &str) -> Result<()> {
    change(p, app, |_| Vec::new()).await
}

fn parse(maps: &[String]) -> Result<Vec<PortMap>> {
    maps.iter().map(|m| PortMap::parse(m)).collect()
}

/// Stores the new mappings and, for a deployed app, rolls out a release with them; when any
/// of it fails, the old mappings are put back.
async fn change(p: &Platform, app: &str, edit: impl FnOnce(Vec<PortMap>) -> Vec<PortMap>) -> Result<()> {
    let mut r = p.runner_for(app).await?;
    let _lock = r.lock(app)?;
    let before = ports::mappings(&r.state, app)?;
    let after = edit(before.clone());
    let developer = p.caller.as_ref().is_some_and(|c| c.role == crate::platform::access::Role::Developer);
    let own = listen_port(&GlobalSettings::load(&r.state)?.router_listen);
    if developer && after.iter().any(|m| Some(m.host) != own && !before.iter().any(|b| b.host == m.host)) {
        bail!("a developer key may map container ports on the router's own port only: another host port is an admin's call");
    }
    check_host_ports(p, app, &before, &after)?;
    ports::set_mappings(&r.state, app, &after)?;
    let shown: Vec<String> = after.iter().map(ToString::to_string).collect();
    let description =
        if shown.is_empty() { "Ports: default".to_string() } else { format!("Ports: {}", shown.join(" ")) };
    if let Err(e) = r.new_config_release(app, &description, true).await {
        ports::set_mappings(&r.state, app, &before)?;
        return Err(e.context(format!("the ports of {app} are as they were")));
    }
    output::header(format!("{description} for {app}"));
    Ok(())
}

/// A new host port must be free on this host (or already the router's), and not the HTTPS one.
fn check_host_ports(p: &Platform, app: &str, before: &[PortMap], after: &[PortMap]) -> Result<()> {
    let state = p.state()?;
    let global = GlobalSettings::load(&state)?;
    let (https, own) = (listen_port(&global.https_listen), listen_port(&global.router_listen));
    let ip = listen_ip(&global.router_listen);
    let mut routed: Vec<u16> = Vec::new();
    for other in state.apps()? {
        routed.extend(ports::extra_http_ports(&state, &other, &global.router_listen)?);
    }
    for m in after.iter().filter(|m| !before.iter().any(|b| b.host == m.host)) {
        if Some(m.host) == https {
            bail!("port {} is the router's HTTPS port (https-listen): choose another", m.host);
        }
        if Some(m.host) == own || routed.contains(&m.host) {
            continue;
        }
        let addr: std::net::IpAddr = ip.parse().with_context(|| format!("the router's address {ip:?}"))?;
        if let Err(e) = std::net::TcpListener::bind((addr, m.host)) {
            let privileged = e.kind() == std::io::ErrorKind::PermissionDenied;
            if !(privileged && m.host < 1024) {
                bail!("{app} cannot answer on port {}: {e} (is another program using it?)", m.host);
            }
        }
    }
    Ok(())
}
