//! Running a release image's process type as a container, its port published on 127.0.0.1:
//! `/start TYPE` for buildpack images; for Dockerfile images, the Procfile's command through
//! `sh -c`, or the image's own command for `web`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;

use crate::containers::docker::{Engine, LABEL_APP};
use crate::containers::image::BuildKind;
use crate::containers::image::{LABEL_BUILDPACK, LABEL_PROCESS_TYPES};
use crate::containers::process::{self, ProcessSpec};
use crate::engine::envdir::Vars;
use crate::output;

/// What to run for `process_type` in `image`, and the port the app listens on inside.
pub async fn plan(engine: &Engine, image: &str, process_type: &str) -> Result<(Option<Vec<String>>, u16)> {
    let labels = engine.image_labels(image).await?;
    let types: BTreeMap<String, String> =
        labels.get(LABEL_PROCESS_TYPES).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    let build = BuildKind::parse(labels.get(LABEL_BUILDPACK).map(String::as_str).unwrap_or_default());
    let cmd = process::command(&build, &types, process_type, None).with_context(|| format!("image {image}"))?;
    Ok((cmd, process::container_port(engine, &build, image).await?))
}

pub async fn run(image: &str, process_type: &str, host_port: u16, env: &Vars, detach: bool) -> Result<i32> {
    // Ctrl-C and SIGTERM stop and remove the container: caught from before it exists, so one
    // that comes while it starts is handled too.
    use tokio::signal::unix::{signal, SignalKind};
    let (mut interrupt, mut term) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    let engine = Engine::connect().await?;
    let (cmd, port) = plan(&engine, image, process_type).await?;
    let labels = engine.image_labels(image).await?;
    let app = labels.get(LABEL_APP).cloned().unwrap_or_else(|| "app".into());
    let mut envs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    envs.push(format!("PORT={port}"));
    envs.push(format!("DYNO={process_type}.1"));
    let spec = ProcessSpec {
        name: format!("{app}.{process_type}.run-{}", std::process::id()),
        image: image.to_string(),
        cmd,
        env: envs,
        publish: Some((port, host_port)),
        labels: ProcessSpec::base_labels("run", &app),
        ..Default::default()
    };
    let name = spec.name.clone();
    let id = spec.create(&engine).await?;
    if let Err(e) = engine.api.start_container(&id, None).await {
        engine.remove_container(&id).await;
        return Err(anyhow!("cannot start {image}: {}", crate::output::error_chain(&e)));
    }
    // A process that exits at once is never reported as running at a URL.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let state = engine.api.inspect_container(&id, None).await.ok().and_then(|c| c.state).unwrap_or_default();
    match (state.running == Some(true), engine.published_port(&id, port).await) {
        (true, Some(published)) => output::header(format!(
            "{app} {process_type} is running at http://127.0.0.1:{published}/ (container {name})"
        )),
        _ if detach => {
            let logs = engine.log_tail(&id, 20).await;
            engine.remove_container(&id).await;
            let status = state.exit_code.map(|c| format!(" (exit status {c})")).unwrap_or_default();
            bail!("{app} {process_type} exited right after it started{status}; its last lines:\n{}", logs.trim_end());
        }
        _ => {}
    }
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
        _ = interrupt.recv() => {}
        _ = term.recv() => {}
    }
    let code =
        engine.api.inspect_container(&id, None).await.ok().and_then(|c| c.state).and_then(|s| s.exit_code).unwrap_or(0);
    engine.remove_container(&id).await;
    Ok(code as i32)
}
