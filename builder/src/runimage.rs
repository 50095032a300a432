//! Running a release image's process type as a container, its port published on 127.0.0.1:
//! `/start TYPE` for buildpack images; for Dockerfile images, the Procfile's command through
//! `sh -c`, or the image's own command for `web`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use bollard::models::{ContainerCreateBody, HostConfig};
use futures_util::StreamExt;

use crate::docker::{self, Engine, LABEL_APP, LABEL_MANAGED, LABEL_ROLE};
use crate::envdir::Vars;
use crate::image::{LABEL_BUILDPACK, LABEL_PROCESS_TYPES};
use crate::output;

/// What to run for `process_type` in `image`, and the port the app listens on inside.
pub async fn plan(engine: &Engine, image: &str, process_type: &str) -> Result<(Option<Vec<String>>, u16)> {
    let labels = engine.image_labels(image).await?;
    let types: BTreeMap<String, String> =
        labels.get(LABEL_PROCESS_TYPES).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    let dockerfile = labels.get(LABEL_BUILDPACK).is_some_and(|b| b == "Dockerfile");
    if !dockerfile {
        if !types.contains_key(process_type) {
            let known: Vec<&str> = types.keys().map(String::as_str).collect();
            bail!("image {image} has no `{process_type}` process type (it has: {})", known.join(", "));
        }
        return Ok((Some(vec!["/start".into(), process_type.into()]), 5000));
    }
    let port = engine.image_exposed_ports(image).await?.first().copied().unwrap_or(5000);
    match types.get(process_type) {
        Some(cmd) => Ok((Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()]), port)),
        None if process_type == "web" => Ok((None, port)),
        None => bail!("image {image} has no Procfile entry for `{process_type}`"),
    }
}

pub async fn run(image: &str, process_type: &str, host_port: u16, env: &Vars, detach: bool) -> Result<i32> {
    let engine = Engine::connect().await?;
    let (cmd, port) = plan(&engine, image, process_type).await?;
    let labels = engine.image_labels(image).await?;
    let app = labels.get(LABEL_APP).cloned().unwrap_or_else(|| "app".into());
    let mut envs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    envs.push(format!("PORT={port}"));
    envs.push(format!("DYNO={process_type}.1"));
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd,
        env: Some(envs),
        exposed_ports: Some(vec![format!("{port}/tcp")]),
        labels: Some(
            [
                (LABEL_MANAGED.to_string(), "true".to_string()),
                (LABEL_ROLE.to_string(), "run".to_string()),
                (LABEL_APP.to_string(), app.clone()),
            ]
            .into(),
        ),
        host_config: Some(HostConfig {
            port_bindings: Some(docker::loopback_port(port, host_port)),
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!("{app}.{process_type}.run-{}", std::process::id());
    let id = engine.create(&name, body).await?;
    if let Err(e) = engine.api.start_container(&id, None).await {
        engine.remove_container(&id).await;
        return Err(anyhow!("cannot start {image}: {}", crate::error_chain(&e)));
    }
    let published = engine.published_port(&id, port).await.map(|p| p.to_string()).unwrap_or_default();
    output::header(format!("{app} {process_type} is running at http://127.0.0.1:{published}/ (container {name})"));
    if detach {
        println!("{id}");
        return Ok(0);
    }
    let opts = bollard::query_parameters::LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).build();
    let mut logs = engine.api.logs(&id, Some(opts));
    let follow = async {
        while let Some(Ok(chunk)) = logs.next().await {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&chunk.into_bytes());
        }
    };
    tokio::select! {
        _ = follow => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let code =
        engine.api.inspect_container(&id, None).await.ok().and_then(|c| c.state).and_then(|s| s.exit_code).unwrap_or(0);
    engine.remove_container(&id).await;
    Ok(code as i32)
}
