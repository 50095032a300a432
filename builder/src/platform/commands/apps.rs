//! `apps:*`: create, list, inspect and destroy apps.

use anyhow::{bail, Result};

use super::Platform;
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

/// `apps:list`
pub fn list(p: &Platform) -> Result<()> {
    println!("=== apps");
    let state = p.state()?;
    for app in state.apps()? {
        if p.caller.as_ref().map_or(Ok(true), |c| c.sees(&state, &app))? {
            println!("{app}");
        }
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
