//! `ps:*`: how many containers each process type runs, restarts, stops, and what runs.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use super::Platform;
use crate::platform::runner::Runner;
use crate::platform::scheduler::{self, Scheduler};
use crate::platform::settings::GlobalSettings;
use crate::platform::state::State;

/// `ps:scale APP TYPE=N...`
pub async fn scale(p: &Platform, app: &str, counts: &[String]) -> Result<()> {
    let mut r = p.runner_for(app).await?;
    let counts = parse_scale(counts)?;
    let max = GlobalSettings::load(&r.state)?.max_scale;
    if let Some((kind, n)) = counts.iter().find(|(_, n)| **n > max as i64) {
        bail!("{kind}={n} is over the limit of {max} containers a process type; an admin can raise it with `slipway settings:set max-scale N`");
    }
    let _lock = r.lock(app)?;
    r.scale(app, &counts).await
}

/// `ps:restart APP` and `ps:start APP`: a new release of the current one, rolled out.
pub async fn restart(p: &Platform, app: &str) -> Result<()> {
    let mut r = p.runner_for(app).await?;
    let _lock = r.lock(app)?;
    if r.new_config_release(app, "Restart", true).await?.is_none() {
        bail!("app '{app}' has not been deployed yet; deploy it with `slipway deploy {app} DIR`");
    }
    Ok(())
}

/// `ps:stop APP`: every type scaled to 0, the formation kept for `ps:start`.
pub async fn stop(p: &Platform, app: &str) -> Result<()> {
    let mut r = p.runner_for(app).await?;
    let _lock = r.lock(app)?;
    let saved = r.state.formation(app)?;
    let zero = saved.keys().map(|k| (k.clone(), 0)).collect();
    r.scale(app, &zero).await?;
    let tx = r.state.transaction()?;
    State::set_formation(&tx, app, &saved)?;
    tx.commit()?;
    crate::platform::settings::AppSettings::set_stopped(&r.state, app, true)?;
    Ok(())
}

/// `ps:restore APP|--all`: apps back at their scale, as they were (Dokku's; `slipway daemon`
/// runs it for every app when it starts). One app that cannot be restored does not stop the others.
pub async fn restore(p: &Platform, app: &str) -> Result<()> {
    let apps = if app == "--all" { p.state()?.apps()? } else { vec![app.to_string()] };
    // Backing services first: the apps' processes connect to them as they start.
    let mut failed = if app == "--all" { super::services::restore_all(p).await } else { Vec::new() };
    for app in &apps {
        let result = async {
            let mut r = p.runner_for(app).await?;
            let _lock = r.lock(app)?;
            r.restore(app).await
        }
        .await;
        match result {
            Ok(what) => crate::output::header(format!("{app}: {what}")),
            Err(e) => {
                crate::output::warn(format!("{app} was not restored: {e:#}"));
                failed.push(app.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("{} could not be restored (see above)", failed.join(", "));
    }
    Ok(())
}

/// `ps:report APP [--format json]`
pub async fn report(p: &Platform, app: &str, format: super::Format) -> Result<()> {
    let r = p.runner_for(app).await?;
    if format == super::Format::Text {
        print!("{}", ps_report(&r, app).await?);
        return Ok(());
    }
    let swarm = r.running_on(app).await? == Scheduler::Swarm;
    let mut processes = Vec::new();
    if swarm {
        processes = match scheduler::swarm::tasks::report(&r, app).await?.1 {
            serde_json::Value::Array(tasks) => tasks,
            _ => Vec::new(),
        };
    }
    for c in r.containers(app).await? {
        processes.push(serde_json::json!({
            "name": c.name,
            "type": c.kind,
            "index": c.index,
            "release": c.release,
            "status": container_status(&r, &c.id).await,
            "running": c.running,
            "port": c.port,
        }));
    }
    let report = serde_json::json!({
        "app": app,
        "release": r.state.current_release(app)?.map(|c| c.version),
        "formation": r.state.formation(app)?,
        "stopped": crate::platform::settings::AppSettings::is_stopped(&r.state, app)?,
        "scheduler": if swarm { "swarm" } else { "docker-local" },
        "processes": processes,
    });
    super::print_json(&report);
    Ok(())
}

/// `ps:inspect APP`: the engine's view of each of the app's process containers, as JSON
/// (config vars are files, never in it).
pub async fn inspect(p: &Platform, app: &str) -> Result<()> {
    let r = p.runner_for(app).await?;
    let mut all = Vec::new();
    for c in r.containers(app).await? {
        let info =
            r.engine.api.inspect_container(&c.id, None).await.with_context(|| format!("cannot inspect {}", c.name))?;
        all.push(serde_json::to_value(info)?);
    }
    super::print_json(&serde_json::Value::Array(all));
    Ok(())
}

async fn container_status(r: &Runner, id: &str) -> String {
    let info = r.engine.api.inspect_container(id, None).await.ok();
    info.and_then(|i| i.state).and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_default()
}

pub fn parse_scale(items: &[String]) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((kind, n)) = item.split_once('=') else { bail!("expected TYPE=COUNT, found {item:?}") };
        let n: i64 = n
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .with_context(|| format!("{item:?}: the count must be a whole number"))?;
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("{kind:?} is not a process type name");
        }
        out.insert(kind.to_string(), n);
    }
    if out.is_empty() {
        bail!("nothing to scale: give TYPE=COUNT, e.g. web=2 worker=1");
    }
    Ok(out)
}

async fn ps_report(r: &Runner, app: &str) -> Result<String> {
    r.state.require_app(app)?;
    let mut out = format!("=== {app} processes\n");
    let current = r.state.current_release(app)?;
    out += &format!(
        "Release:   {}\n",
        current.as_ref().map(|c| format!("v{}", c.version)).unwrap_or_else(|| "none yet".into())
    );
    out += &format!(
        "Formation: {}\n",
        r.state.formation(app)?.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    );
    if r.running_on(app).await? == Scheduler::Swarm {
        out += &scheduler::swarm::tasks::report(r, app).await?.0;
    }
    for c in r.containers(app).await? {
        let state = container_status(r, &c.id).await;
        out += &format!(
            "{:<28} v{:<4} {:<10} {}\n",
            c.name,
            c.release,
            state,
            c.port.map(|p| format!("127.0.0.1:{p}")).unwrap_or_default()
        );
    }
    Ok(out)
}
