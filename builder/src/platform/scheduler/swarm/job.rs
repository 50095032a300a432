//! One-off runs on swarm (`run`, release and predeploy scripts, cron tasks): a replicated job
//! of one task, on whichever node swarm picks, with the release's config as secrets. Its output
//! comes from the service's logs once it has finished (no TTY, no standard input); its exit
//! status is the task's.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::TaskState;
use bollard::query_parameters::{ListTasksOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;

use super::spec;
use crate::platform::records::Release;
use crate::platform::runner::Runner;

/// Runs `command` in a job of the release; its output to `on_output` (bytes, whether from
/// stderr); returns its exit code.
pub async fn run(
    r: &Runner,
    release: &Release,
    command: &[String],
    mut on_output: impl FnMut(&[u8], bool),
) -> Result<i64> {
    let addr = super::manager_addr(&r.engine).await?;
    let registry = super::registry::for_swarm(r, addr).await?;
    let image = registry.push(r, release).await?;
    let secrets = spec::secrets(&r.engine, release).await?;
    let spec = spec::job(r, release, command, &image, &secrets).await?;
    let name = spec.name.clone().unwrap_or_default();
    // One left by a killed run of the same name goes first.
    let _ = r.engine.api.delete_service(&name).await;
    let created =
        r.engine.api.create_service(spec, registry.credentials()).await.context("cannot start the one-off job")?;
    let id = created.id.context("Docker did not say which job it made")?;
    let result = tokio::select! {
        result = finish(r, &id) => result,
        signal = crate::platform::runner::stop_signal() => Err(anyhow!("stopped by {signal}: the one-off job was removed")),
    };
    if result.is_ok() {
        let opts = LogsOptionsBuilder::default().stdout(true).stderr(true).build();
        let mut logs = r.engine.api.service_logs(&id, Some(opts));
        while let Some(chunk) = logs.next().await {
            match chunk {
                Ok(out @ bollard::container::LogOutput::StdErr { .. }) => on_output(&out.into_bytes(), true),
                Ok(out) => on_output(&out.into_bytes(), false),
                Err(e) => {
                    crate::output::warn(format!("cannot read the output of {name}: {e}"));
                    break;
                }
            }
        }
    }
    let _ = r.engine.api.delete_service(&id).await;
    result
}

/// Waits for the job's task to end; its exit code. One that no node takes within 2 minutes
/// (no node fits its limits, or none can pull) is given up.
async fn finish(r: &Runner, service: &str) -> Result<i64> {
    let filters = std::collections::HashMap::from([("service", vec![service.to_string()])]);
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let opts = ListTasksOptionsBuilder::default().filters(&filters).build();
        let tasks = r.engine.api.list_tasks(Some(opts)).await.context("cannot follow the one-off job")?;
        let Some(task) = tasks.first() else { continue };
        let status = task.status.clone().unwrap_or_default();
        let code = status.container_status.as_ref().and_then(|c| c.exit_code);
        match status.state {
            Some(TaskState::COMPLETE) => return Ok(code.unwrap_or(0)),
            Some(TaskState::FAILED) if code.is_some() => return Ok(code.unwrap_or(1)),
            Some(TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED | TaskState::SHUTDOWN) => {
                bail!("the one-off job could not run: {}", status.err.unwrap_or_else(|| "no reason given".into()))
            }
            Some(TaskState::NEW | TaskState::PENDING | TaskState::ASSIGNED)
                if started.elapsed() > Duration::from_secs(120) =>
            {
                bail!(
                    "no swarm node started the one-off job within 2 minutes ({}): see `slipway cluster:list`",
                    status.message.or(status.err).unwrap_or_else(|| "no reason given".into())
                )
            }
            _ => {}
        }
    }
}
