//! `builds:*`: every push is a build, with its full log; a running one can be cancelled.

use anyhow::{bail, Context, Result};

use super::{Format, Platform};

/// `builds:list APP [--format json]`
pub fn list(p: &Platform, app: &str, format: Format) -> Result<()> {
    let state = p.app_state(app)?;
    if format == Format::Json {
        let builds: Vec<serde_json::Value> = state
            .deploys(app)?
            .into_iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id,
                    "status": d.status.as_str(),
                    "started_at": d.started_at,
                    "finished_at": d.finished_at,
                    "release": d.release,
                    "source_version": d.source_version,
                    "pusher": d.pusher,
                })
            })
            .collect();
        super::print_json(&serde_json::Value::Array(builds));
        return Ok(());
    }
    println!("=== {app} builds");
    for d in state.deploys(app)? {
        let took = d.finished_at.map(|f| format!("{}s", f - d.started_at)).unwrap_or_else(|| "-".into());
        let rev = d.source_version.map(|r| r[..r.len().min(10)].to_string()).unwrap_or_default();
        let release = d.release.map(|r| format!("v{r}")).unwrap_or_default();
        let by = d.pusher.unwrap_or_default();
        println!("{:<6} {:<10} {took:<6} {release:<6} {rev:<10} {by}", d.id, d.status.as_str());
    }
    Ok(())
}

/// `builds:output APP [ID]`
pub fn output(p: &Platform, app: &str, id: Option<i64>) -> Result<()> {
    let state = p.app_state(app)?;
    let log = state.deploy_log(app, id)?.with_context(|| format!("app '{app}' has no such build"))?;
    print!("{}", crate::output::printable(&log.log));
    Ok(())
}

/// `logs:failed APP`: the output of the app's last failed build or deploy.
pub fn failed(p: &Platform, app: &str) -> Result<()> {
    let state = p.app_state(app)?;
    let last = state.deploys(app)?.into_iter().find(|d| d.status == crate::platform::state::DeployStatus::Failed);
    let Some(last) = last else { bail!("app '{app}' has no failed deploy") };
    let log = state.deploy_log(app, Some(last.id))?.with_context(|| format!("app '{app}' has no such build"))?;
    crate::output::header(format!("{app}: build {} failed", last.id));
    print!("{}", crate::output::printable(&log.log));
    Ok(())
}

/// `builds:cancel APP`: stops the running build; its push is rejected.
pub fn cancel(p: &Platform, app: &str) -> Result<()> {
    let state = p.app_state(app)?;
    // A build record that says running, and the live process that holds the app's lock: that
    // deploy, nothing a stored PID might name by now.
    let (Some(id), Some(pid)) = (state.running_deploy(app)?, crate::platform::lock::holder(&p.data_dir, app)?) else {
        bail!("app '{app}' has no build running");
    };
    // A push's deploy runs in its own process group: stop all of it (the container build is
    // removed by the deploy's own signal handling).
    // SAFETY: kill has no memory preconditions.
    if unsafe { libc::kill(-pid, libc::SIGTERM) } != 0 {
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    crate::output::header(format!("Cancelling build {id} of {app}"));
    Ok(())
}
