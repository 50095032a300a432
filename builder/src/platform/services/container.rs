//! A service's Docker objects: its network (internal: no route out; only it and its linked
//! apps' containers join), its data volume, and its container (restarted on failure, with a
//! memory limit when set, published on 127.0.0.1 only when exposed). Recreating the container
//! (`restart`, `expose`) never touches the volume.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};

use super::{Kind, Record, Service};
use crate::containers::docker::{loopback_port, rotated_logs, Engine, LogLimits, LABEL_MANAGED, LABEL_ROLE};
use crate::output;

pub const LABEL_SERVICE: &str = "io.slipway.service";
/// Where the password file is mounted, read-only.
const PASSWORD_PATH: &str = "/run/slipway/password";

fn labels(svc: &Service) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_ROLE.to_string(), "service".to_string()),
        (LABEL_SERVICE.to_string(), format!("{}/{}", svc.kind.as_str(), svc.name)),
    ])
}

/// Whether its container runs now: "running", "exited", "restarting", ... or "missing".
pub async fn status(engine: &Engine, svc: &Service) -> String {
    match engine.api.inspect_container(&svc.container(), None).await {
        Ok(info) => info.state.and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_else(|| "unknown".into()),
        Err(_) => "missing".into(),
    }
}

/// Makes its network, volume and container as needed, starts it, and waits until it answers.
pub async fn up(engine: &Engine, svc: &Service, record: &Record, data_dir: &Path) -> Result<()> {
    ensure_network(engine, svc, &svc.network(), true).await?;
    if record.exposed_port.is_some() {
        // Published from a network of its own (an internal one cannot publish), not Docker's
        // default bridge, where every other container could reach it.
        ensure_network(engine, svc, &publish_network(svc), false).await?;
    }
    let volume = VolumeCreateRequest { name: Some(svc.volume()), labels: Some(labels(svc)), ..Default::default() };
    engine.api.create_volume(volume).await.with_context(|| format!("cannot create the volume {}", svc.volume()))?;
    let name = svc.container();
    if engine.api.inspect_container(&name, None).await.is_err() {
        let image = super::image::ensure(engine, svc.kind).await?;
        engine.create(&name, body(svc, &image, record, data_dir)).await?;
        if record.exposed_port.is_some() {
            // Published through its publish network; apps still reach it on its own network.
            let connect = NetworkConnectRequest {
                container: name.clone(),
                endpoint_config: Some(EndpointSettings { aliases: Some(vec![name.clone()]), ..Default::default() }),
            };
            engine.api.connect_network(&svc.network(), connect).await.context("cannot join the service's network")?;
        }
    }
    let running = engine.api.inspect_container(&name, None).await.ok().and_then(|i| i.state).and_then(|s| s.running);
    if running != Some(true) {
        engine.api.start_container(&name, None).await.with_context(|| format!("cannot start {name}"))?;
    }
    wait_ready(engine, svc).await
}

/// Stops and removes its container (not its data), then makes and starts it again.
pub async fn recreate(engine: &Engine, svc: &Service, record: &Record, data_dir: &Path) -> Result<()> {
    stop(engine, svc).await;
    engine.remove_container(&svc.container()).await;
    up(engine, svc, record, data_dir).await
}

/// Stops its container (the server shuts down cleanly: SIGTERM, 30 s).
pub async fn stop(engine: &Engine, svc: &Service) {
    let opts = bollard::query_parameters::StopContainerOptionsBuilder::default().t(30).build();
    let _ = engine.api.stop_container(&svc.container(), Some(opts)).await;
}

/// Removes its container, volume and network.
pub async fn remove(engine: &Engine, svc: &Service) -> Result<()> {
    engine.remove_container(&svc.container()).await;
    if engine.api.inspect_volume(&svc.volume()).await.is_ok() && !engine.remove_volume(&svc.volume()).await {
        bail!("cannot remove the volume {}: a container still uses it", svc.volume());
    }
    let _ = engine.api.remove_network(&svc.network()).await;
    let _ = engine.api.remove_network(&publish_network(svc)).await;
    Ok(())
}

/// The network an exposed service is published from: it alone is on it.
fn publish_network(svc: &Service) -> String {
    format!("{}-publish", svc.network())
}

async fn ensure_network(engine: &Engine, svc: &Service, name: &str, internal: bool) -> Result<()> {
    if engine.api.inspect_network(name, None).await.is_ok() {
        return Ok(());
    }
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        internal: Some(internal),
        labels: Some(labels(svc)),
        ..Default::default()
    };
    engine.api.create_network(request).await.with_context(|| format!("cannot create the network {name}"))?;
    Ok(())
}

fn body(svc: &Service, image: &str, record: &Record, data_dir: &Path) -> ContainerCreateBody {
    let name = svc.container();
    let memory = record.memory.map(|m| m as i64);
    let exposed = record.exposed_port.map(|p| loopback_port(svc.kind.port(), p));
    let network = if exposed.is_some() { publish_network(svc) } else { svc.network() };
    let mut endpoints = HashMap::new();
    if exposed.is_none() {
        endpoints.insert(network.clone(), EndpointSettings { aliases: Some(vec![name.clone()]), ..Default::default() });
    }
    let mut env = vec![];
    if svc.kind == Kind::Postgres {
        env.push(format!("SLIPWAY_DATABASE={}", svc.database()));
    }
    ContainerCreateBody {
        image: Some(image.to_string()),
        hostname: Some(name.clone()),
        env: Some(env),
        labels: Some(labels(svc)),
        exposed_ports: record.exposed_port.map(|_| vec![format!("{}/tcp", svc.kind.port())]),
        host_config: Some(HostConfig {
            binds: Some(vec![
                format!("{}:{}", svc.volume(), svc.kind.data_path()),
                format!("{}:{PASSWORD_PATH}:ro", svc.password_file(data_dir).display()),
            ]),
            init: Some(true),
            network_mode: Some(network),
            port_bindings: exposed,
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(0),
            }),
            memory,
            memory_swap: memory,
            // Postgres' shared memory (Docker's default 64 MB is too small for larger queries).
            shm_size: Some(256 << 20),
            log_config: Some(rotated_logs(LogLimits { max_size: 10 << 20, max_files: 3 })),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig { endpoints_config: Some(endpoints) }),
        ..Default::default()
    }
}

/// The command that answers once the server takes connections.
fn ready_probe(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::Postgres => vec!["pg_isready", "-q", "-h", "127.0.0.1"],
        Kind::Redis => {
            vec!["sh", "-c", "REDISCLI_AUTH=$(cat /run/slipway/password) redis-cli ping | grep -q PONG"]
        }
    }
}

/// Waits (up to 120 s: a first start makes the cluster) until the server answers.
async fn wait_ready(engine: &Engine, svc: &Service) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if engine.exec_quiet(&svc.container(), &ready_probe(svc.kind)).await.unwrap_or(-1) == 0 {
            return Ok(());
        }
        let state = engine.api.inspect_container(&svc.container(), None).await.ok().and_then(|i| i.state);
        let exited = state.as_ref().is_some_and(|s| s.running != Some(true) && s.restarting != Some(true));
        if exited || tokio::time::Instant::now() > deadline {
            let tail = engine.log_tail(&svc.container(), 15).await;
            for line in tail.lines() {
                output::detail(line);
            }
            let how = if exited { "stopped" } else { "did not answer within 120 s" };
            return Err(anyhow!(
                "the {} {how}; its log is above (`{}:logs {}`)",
                svc.label(),
                svc.kind.as_str(),
                svc.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The server's version, as it says it.
pub async fn version(engine: &Engine, svc: &Service) -> Option<String> {
    let cmd: &[&str] = match svc.kind {
        Kind::Postgres => &["sh", "-c", "ls /usr/lib/postgresql | sort -V | tail -n 1"],
        Kind::Redis => &["redis-server", "--version"],
    };
    let out = engine.exec_output(&svc.container(), cmd).await.ok()?;
    let text = String::from_utf8_lossy(&out).trim().to_string();
    Some(match svc.kind {
        Kind::Postgres => format!("PostgreSQL {text}"),
        Kind::Redis => text.split_whitespace().find_map(|w| w.strip_prefix("v=")).map(|v| format!("Redis {v}"))?,
    })
}
