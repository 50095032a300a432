//! Deploys, scaling and restores of an app on swarm. A deploy creates each process type's
//! service, or updates it: swarm starts a new task, waits until its healthcheck passes, then
//! stops an old one, one task at a time, and rolls the whole service back by itself when a
//! new task fails. Meanwhile slipway follows the tasks and keeps the router on the serving
//! ones, and reports success only once every service runs the new release.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bollard::models::{ServiceSpec, ServiceUpdateStatusStateEnum as Update, TaskState};
use bollard::query_parameters::UpdateServiceOptionsBuilder;

use super::registry::Registry;
use super::tasks::{follow, sync_routes, tasks_in, tasks_of, TaskView};
use super::{services_of, spec};
use crate::output;
use crate::platform::records::{Release, ReleaseStatus};
use crate::platform::runner::Runner;
use crate::platform::settings::AppSettings;

/// How long a deploy or scale waits for the swarm to converge.
const CONVERGE_WITHIN: Duration = Duration::from_secs(600);

/// What can run on swarm: a buildpack release (a Dockerfile image may lack the bash that the
/// drain and healthcheck use, and its engine is a mount of this host's), not linked to a
/// backing service (those are on this host's own networks).
fn check_runnable(r: &Runner, release: &Release) -> Result<()> {
    let app = &release.app;
    if release.build.is_dockerfile() {
        bail!("'{app}' is built from a Dockerfile, which the swarm scheduler does not run yet: use `slipway scheduler:set {app} selected docker-local`");
    }
    let linked = crate::platform::services::linked_to(&r.state, app)?;
    if let Some(s) = linked.first() {
        bail!("'{app}' is linked to {}, which runs on this host's own network that swarm tasks cannot join: unlink it, or use `slipway scheduler:set {app} selected docker-local`", s.label());
    }
    Ok(())
}

/// The registry, with the release's image in it: its reference.
async fn pushed(r: &Runner, release: &Release) -> Result<(Registry, String)> {
    let addr = super::manager_addr(&r.engine).await?;
    let registry = super::registry::for_swarm(r, addr).await?;
    output::header(format!(
        "Pushing v{} of {} to the swarm's registry {}",
        release.version, release.app, registry.server
    ));
    let image = registry.push(r, release).await?;
    Ok((registry, image))
}

/// Rolls a recorded release out on swarm.
pub async fn rollout(r: &mut Runner, app: &str, version: i64) -> Result<()> {
    let release = r.state.release(app, version)?.ok_or_else(|| anyhow!("app '{app}' has no release v{version}"))?;
    check_runnable(r, &release)?;
    let (registry, image) = pushed(r, &release).await?;
    let (env_dir, manifest) = r.before_start(&release).await?;
    let started = Instant::now();
    if let Err(e) = update(r, &release, &registry, &image).await {
        r.state.set_release_status(app, version, ReleaseStatus::Failed)?;
        let _ = sync_routes(r, app).await;
        let _ = r.hygiene(app).await;
        return Err(e.context(format!("v{version} was not deployed on swarm; the running release keeps serving")));
    }
    r.state.set_release_status(app, version, ReleaseStatus::Succeeded)?;
    AppSettings::set_stopped(&r.state, app, false)?;
    let state_of = if release.has_web() { "is serving" } else { "runs (no web process: nothing is routed to it)" };
    output::header(format!(
        "Release v{version} of {app} {state_of} on swarm ({} ms after its services were updated)",
        started.elapsed().as_millis()
    ));
    // What ran on this host's engine (docker-local, before the switch) goes now.
    let local = r.containers(app).await?;
    r.retire(&local).await;
    r.hygiene(app).await?;
    r.postdeploy(&release, &env_dir, &manifest).await
}

/// Each process type's service made or updated to the release, then followed until it runs.
/// When anything fails, what this deploy changed is put back ([`undo`]).
async fn update(r: &Runner, release: &Release, registry: &Registry, image: &str) -> Result<()> {
    let app = &release.app;
    let secrets = spec::secrets(&r.engine, release).await?;
    let existing = services_of(&r.engine, app).await?;
    let before = task_ids(r, app).await?;
    let formation = r.state.formation(app)?;
    let kinds: BTreeMap<String, i64> = formation
        .iter()
        .filter(|(kind, _)| release.runs(kind))
        .map(|(kind, &count)| (kind.clone(), count.max(0)))
        .collect();
    let mut watched = Vec::new();
    let result: Result<()> = async {
        for (kind, &replicas) in &kinds {
            let spec = spec::service(r, release, kind, replicas, image, &secrets, None).await?;
            match existing.get(kind) {
                Some(service) => {
                    let started_before = service.update_status.as_ref().and_then(|u| u.started_at.clone());
                    apply(r, service, spec, Some(registry)).await?;
                    watched.push(Watch { kind: kind.clone(), replicas, update_started_before: Some(started_before) });
                }
                None => {
                    create(r, spec, registry, app, kind).await?;
                    watched.push(Watch { kind: kind.clone(), replicas, update_started_before: None });
                }
            }
        }
        converge(r, app, release.version, &watched, &before).await
    }
    .await;
    if let Err(e) = result {
        undo(r, app, &watched).await;
        return Err(e);
    }
    // Types this release no longer has.
    for (kind, service) in &existing {
        if !kinds.contains_key(kind) {
            let _ = r.engine.api.delete_service(service.id.as_deref().unwrap_or_default()).await;
        }
    }
    if release.has_web() {
        sync_routes(r, app).await?;
    } else if r.router.has_app(app) {
        r.router.remove_app(app).await?;
    }
    Ok(())
}

/// Puts back what a failed deploy changed: services it made go; services it updated that
/// swarm has not rolled back by itself go back to their previous spec (swarm's own
/// rollback), the router following their tasks meanwhile.
async fn undo(r: &Runner, app: &str, watched: &[Watch]) {
    let services = services_of(&r.engine, app).await.unwrap_or_default();
    let mut rolling = Vec::new();
    for w in watched {
        let Some(service) = services.get(&w.kind) else { continue };
        let id = service.id.clone().unwrap_or_default();
        if w.update_started_before.is_none() {
            let _ = r.engine.api.delete_service(&id).await;
            continue;
        }
        let state = service.update_status.as_ref().and_then(|u| u.state);
        if matches!(state, Some(Update::ROLLBACK_STARTED | Update::ROLLBACK_COMPLETED | Update::ROLLBACK_PAUSED)) {
            continue;
        }
        let index = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
        let opts = UpdateServiceOptionsBuilder::default().version(index as i32).rollback("previous").build();
        let spec = service.spec.clone().unwrap_or_default();
        match r.engine.api.update_service(&id, spec, opts, None).await {
            Ok(_) => rolling.push(w.kind.clone()),
            Err(e) => output::warn(format!("cannot roll the {} service of {app} back: {e}", w.kind)),
        }
    }
    let started = Instant::now();
    while !rolling.is_empty() && started.elapsed() < Duration::from_secs(120) {
        let _ = sync_routes(r, app).await;
        let services = services_of(&r.engine, app).await.unwrap_or_default();
        rolling.retain(|kind| {
            let state = services.get(kind).and_then(|s| s.update_status.as_ref()).and_then(|u| u.state);
            !matches!(state, Some(Update::ROLLBACK_COMPLETED | Update::ROLLBACK_PAUSED))
        });
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = sync_routes(r, app).await;
}

/// The ids of the app's tasks now (a later failure of one of them is not the new release's).
async fn task_ids(r: &Runner, app: &str) -> Result<HashSet<String>> {
    Ok(tasks_of(&r.engine, app).await?.into_iter().map(|t| t.id).collect())
}

/// Makes a process type's service (its tasks pull with the registry's credentials).
async fn create(r: &Runner, spec: ServiceSpec, registry: &Registry, app: &str, kind: &str) -> Result<()> {
    r.engine
        .api
        .create_service(spec, registry.credentials())
        .await
        .with_context(|| format!("cannot create the {kind} service of {app}"))?;
    Ok(())
}

/// Updates a service to `spec` (at the version swarm has, so no other change is overwritten).
/// New credentials (`registry`) replace every task; without, the service keeps its own.
async fn apply(
    r: &Runner,
    service: &bollard::models::Service,
    spec: ServiceSpec,
    registry: Option<&Registry>,
) -> Result<()> {
    let id = service.id.clone().unwrap_or_default();
    let index = service.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    let opts = UpdateServiceOptionsBuilder::default().version(index as i32).build();
    r.engine
        .api
        .update_service(&id, spec, opts, registry.and_then(Registry::credentials))
        .await
        .with_context(|| format!("cannot update service {id}"))?;
    Ok(())
}

/// One service a deploy or scale waits for.
struct Watch {
    kind: String,
    replicas: i64,
    /// For an update: when the service's previous update started (its new one starts later).
    update_started_before: Option<Option<bollard::models::BollardDate>>,
}

/// Follows the app's tasks (the router kept on the serving ones) until every watched service
/// runs `replicas` tasks of `version` and no other; an error when swarm rolled one back or a
/// new service's tasks keep failing.
async fn converge(r: &Runner, app: &str, version: i64, watched: &[Watch], before: &HashSet<String>) -> Result<()> {
    let started = Instant::now();
    loop {
        let services = services_of(&r.engine, app).await?;
        let tasks = tasks_in(&r.engine, &services).await?;
        follow(r, app, &services, &tasks, false).await?;
        let mut done = true;
        let mut failure: Option<(String, Option<String>)> = None;
        for w in watched {
            let mine: Vec<&TaskView> = tasks.iter().filter(|t| t.kind == w.kind).collect();
            let failed: Vec<&&TaskView> = mine
                .iter()
                .filter(|t| !before.contains(&t.id) && matches!(t.state, TaskState::FAILED | TaskState::REJECTED))
                .collect();
            let why = || failed.iter().find_map(|t| t.error.clone()).map(|e| format!(": {e}")).unwrap_or_default();
            let first_failed = failed.first().map(|t| t.id.clone());
            if let Some(before) = &w.update_started_before {
                let status = services.get(&w.kind).and_then(|s| s.update_status.clone());
                let ours = status.as_ref().filter(|s| &s.started_at != before);
                match ours.and_then(|s| s.state) {
                    Some(Update::ROLLBACK_COMPLETED | Update::ROLLBACK_PAUSED | Update::PAUSED) => {
                        let message =
                            ours.and_then(|s| s.message.clone()).map(|m| format!(" ({m})")).unwrap_or_default();
                        failure =
                            Some((format!("swarm rolled the {} service back{message}{}", w.kind, why()), first_failed));
                        break;
                    }
                    Some(Update::COMPLETED) => {}
                    // Not started yet, under way, or rolling back (finished on a later turn).
                    _ => done = false,
                }
            }
            if failed.len() >= 3 {
                failure = Some((format!("the new {} tasks of v{version} keep failing{}", w.kind, why()), first_failed));
                break;
            }
            let serving = mine.iter().filter(|t| t.serving() && t.release == version).count() as i64;
            let others = mine.iter().filter(|t| t.desired == TaskState::RUNNING && t.release != version).count();
            if serving != w.replicas || others > 0 {
                done = false;
            }
        }
        if let Some((message, task)) = failure {
            let logs = match task {
                Some(id) => last_lines(r, &id).await,
                None => String::new(),
            };
            bail!(
                "{message}\n{}",
                if logs.trim().is_empty() {
                    "(no output)".to_string()
                } else {
                    format!("last log lines of the failed task:\n{}", logs.trim_end())
                }
            );
        }
        if done {
            return Ok(());
        }
        if started.elapsed() > CONVERGE_WITHIN {
            bail!(
                "the swarm did not run v{version} of {app} within {} s: see `slipway ps:report {app}`",
                CONVERGE_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The last 20 lines a task wrote (from whichever node it ran on).
async fn last_lines(r: &Runner, task: &str) -> String {
    use futures_util::StreamExt;
    let opts = bollard::query_parameters::LogsOptionsBuilder::default().stdout(true).stderr(true).tail("20").build();
    let mut out = String::new();
    let mut logs = r.engine.api.task_logs(task, Some(opts));
    while let Some(Ok(chunk)) = logs.next().await {
        out += &crate::output::printable(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    out
}

/// `ps:scale` on swarm: each type's replicas, the router following the tasks. The current
/// release's image is in the registry since its deploy.
pub async fn scale(r: &Runner, app: &str, release: &Release, counts: &BTreeMap<String, i64>) -> Result<()> {
    check_runnable(r, release)?;
    let addr = super::manager_addr(&r.engine).await?;
    let registry = super::registry::for_swarm(r, addr).await?;
    let image = registry.reference(app, release.version);
    let existing = services_of(&r.engine, app).await?;
    let secrets = spec::secrets(&r.engine, release).await?;
    let before = task_ids(r, app).await?;
    let mut watched = Vec::new();
    for (kind, &want) in counts {
        // The very spec the deploy gave it, with the new count: the tasks that run stay (a
        // spec read back from Docker would not do: its healthcheck does not survive the trip).
        let spec = spec::service(r, release, kind, want, &image, &secrets, None).await?;
        match existing.get(kind) {
            Some(service) => apply(r, service, spec, None).await?,
            None => create(r, spec, &registry, app, kind).await?,
        }
        watched.push(Watch { kind: kind.clone(), replicas: want, update_started_before: None });
    }
    converge(r, app, release.version, &watched, &before).await
}

/// `ps:restore` of a swarm app: swarm keeps its services (and restarts their tasks) itself;
/// the router is pointed at its tasks.
pub async fn restore(r: &Runner, app: &str, release: &Release) -> Result<String> {
    let moved = sync_routes(r, app).await?;
    Ok(format!("v{} runs on swarm{}", release.version, if moved { "; the router follows its tasks again" } else { "" }))
}
