//! `deploy`, `releases` and `rollback` (Heroku's; Dokku has no rollback).

use std::path::Path;

use anyhow::Result;

use super::Platform;
use crate::output;
use crate::platform::deploy;
use crate::platform::state::State;

/// `deploy APP DIR|TARBALL`
pub async fn deploy(p: &Platform, app: &str, source: &Path) -> Result<()> {
    let mut r = p.runner_for(app).await?;
    let v = deploy::deploy(&mut r, app, source, std::env::var("SOURCE_VERSION").ok()).await?;
    print!("{}", super::apps::app_info(&r, app).await?);
    output::header(format!("Deployed {app} v{v}"));
    Ok(())
}

/// `releases APP`
pub fn releases(p: &Platform, app: &str) -> Result<()> {
    print!("{}", report_releases(&p.app_state(app)?, app)?);
    Ok(())
}

/// `rollback APP [vN]`
pub async fn rollback(p: &Platform, app: &str, release: Option<&str>) -> Result<()> {
    let mut r = p.runner_for(app).await?;
    let v = deploy::rollback(&mut r, app, release).await?;
    output::header(format!("Rolled {app} back: now v{v}"));
    Ok(())
}

fn report_releases(state: &State, app: &str) -> Result<String> {
    state.require_app(app)?;
    let current = state.current_release(app)?.map(|r| r.version);
    let mut out = format!("=== {app} releases\n");
    for r in state.releases(app)? {
        let mark = if Some(r.version) == current { "*" } else { " " };
        out += &format!(
            "{mark}v{:<4} {:<10} {:<24} {:<12} {:<10} {}\n",
            r.version,
            r.status.as_str(),
            r.description,
            r.build.to_string(),
            r.source_version.as_deref().map(|s| &s[..s.len().min(10)]).unwrap_or(""),
            r.pusher.as_deref().unwrap_or("")
        );
    }
    Ok(out)
}
