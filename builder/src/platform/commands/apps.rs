//! `apps:*`: create, list, inspect and destroy apps.

use anyhow::{bail, Result};

use serde_json::json;

use super::{print_json, Format, Platform};
use crate::output;
use crate::platform::runner::Runner;

/// `apps:create APP`
pub fn create(p: &Platform, app: &str) -> Result<()> {
    let mut state = p.state()?;
    state.create_app(app)?;
    if let Some(caller) = &p.caller {
        state.set_owner(app, &caller.key)?;
    }
    output::header(format!("Created app {app}; deploy it with `slipway deploy {app} DIR` or git push"));
    Ok(())
}

/// `apps:list [--format json]`
pub fn list(p: &Platform, format: Format) -> Result<()> {
    let state = p.state()?;
    let mut apps = Vec::new();
    for app in state.apps()? {
        if p.caller.as_ref().map_or(Ok(true), |c| c.sees(&state, &app))? {
            apps.push(app);
        }
    }
    match format {
        Format::Json => print_json(&json!(apps)),
        Format::Text => println!("=== apps\n{}", apps.iter().map(|a| format!("{a}\n")).collect::<String>().trim_end()),
    }
    Ok(())
}

/// `apps:rename OLD NEW` (see [`crate::platform::rename`]).
pub async fn rename(p: &Platform, old: &str, new: &str) -> Result<()> {
    let mut r = p.runner_for(old).await?;
    crate::platform::rename::rename(&mut r, old, new).await
}

/// `apps:exists APP`: exit status 0 when it exists (and the caller may see it), else 1.
pub fn exists(p: &Platform, app: &str) -> Result<i32> {
    let state = p.state()?;
    let seen = state.app_exists(app)? && p.caller.as_ref().map_or(Ok(true), |c| c.sees(&state, app))?;
    if seen {
        output::header(format!("App {app} exists"));
        return Ok(0);
    }
    output::warn(format!("App {app} does not exist"));
    Ok(1)
}

/// `apps:report APP [--format json]`: release, build, stack, scheduler, URLs, domains, scale,
/// settings.
pub async fn report(p: &Platform, app: &str, format: Format) -> Result<()> {
    let r = p.runner_for(app).await?;
    let current = r.state.current_release(app)?;
    let settings = crate::platform::settings::AppSettings::load(&r.state, app)?;
    let report = json!({
        "app": app,
        "release": current.as_ref().map(|c| c.version),
        "deployed_at": current.as_ref().map(|c| c.created_at),
        "build": current.as_ref().map(|c| c.build.to_string()),
        "source_version": current.as_ref().and_then(|c| c.source_version.clone()),
        "stack": crate::platform::settings::stack_of(&r.state, app)?.name,
        "scheduler": crate::platform::scheduler::selected(&r.state, app)?.name(),
        "running_on": r.running_on(app).await?.name(),
        "hosts": r.hosts(app)?,
        "formation": r.state.formation(app)?,
        "stopped": crate::platform::settings::AppSettings::is_stopped(&r.state, app)?,
        "checks": settings.checks.as_str(),
        "buildpacks": crate::platform::settings::AppSettings::buildpacks(&r.state, app)?,
        "owner": r.state.owner(app)?,
        "linked_services": crate::platform::services::linked_to(&r.state, app)?
            .iter()
            .map(|s| format!("{}:{}", s.kind.as_str(), s.name))
            .collect::<Vec<_>>(),
    });
    if format == Format::Json {
        print_json(&report);
        return Ok(());
    }
    output::header(format!("{app} app information"));
    let Some(fields) = report.as_object() else { return Ok(()) };
    for (key, value) in fields.iter().filter(|(k, _)| *k != "app") {
        let shown = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            serde_json::Value::Array(items) => {
                items.iter().map(|i| i.as_str().map_or(i.to_string(), str::to_string)).collect::<Vec<_>>().join(" ")
            }
            serde_json::Value::Object(map) => map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
            other => other.to_string(),
        };
        println!("       {:<20}{shown}", format!("{}:", key.replace('_', " ")));
    }
    Ok(())
}

/// `apps:destroy APP --force`
pub async fn destroy(p: &Platform, app: &str, force: bool) -> Result<()> {
    p.app_state(app)?;
    if !force {
        bail!("this removes app '{app}' and everything it has; run `slipway apps:destroy {app} --force` to confirm");
    }
    let mut r = p.runner_for(app).await?;
    let _lock = r.lock(app)?;
    r.destroy(app).await?;
    output::header(format!("Destroyed {app}"));
    Ok(())
}

/// `apps:info APP`
pub async fn info(p: &Platform, app: &str) -> Result<()> {
    print!("{}", app_info(&p.runner_for(app).await?, app).await?);
    Ok(())
}

pub async fn app_info(r: &Runner, app: &str) -> Result<String> {
    r.state.require_app(app)?;
    let current = r.state.current_release(app)?;
    let listen = &r.router.listen;
    let port = listen.rsplit(':').next().unwrap_or("80");
    let urls: Vec<String> = r
        .hosts(app)?
        .iter()
        .map(|h| if port == "80" { format!("http://{h}/") } else { format!("http://{h}:{port}/") })
        .collect();
    let no_web = current.as_ref().is_some_and(|c| !c.has_web());
    let urls = if no_web { "none (no web process)".to_string() } else { urls.join(" ") };
    Ok(format!(
        "=== {app}\nRelease:   {}\nBuildpack: {}\nURLs:      {urls}\nRouter:    nginx on {listen}\n",
        current.as_ref().map(|c| format!("v{}", c.version)).unwrap_or_else(|| "none yet".into()),
        current.map(|c| c.build.to_string()).unwrap_or_default(),
    ))
}
