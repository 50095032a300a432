//! `deploy`, `releases` and `rollback` (Heroku's; Dokku has no rollback).

use std::path::Path;

use anyhow::Result;

use super::{Format, Platform};
use crate::output;
use crate::platform::deploy;
use crate::platform::state::State;

/// `deploy APP DIR|TARBALL`
pub async fn deploy(p: &Platform, app: &str, source: &Path) -> Result<()> {
    let mut r = p.runner_for(app).await?;
    let v = deploy::deploy(&mut r, app, deploy::Source::Tree(source, std::env::var("SOURCE_VERSION").ok())).await?;
    print!("{}", super::apps::app_info(&r, app).await?);
    output::header(format!("Deployed {app} v{v}"));
    Ok(())
}

/// `releases APP [--format json]`
pub fn releases(p: &Platform, app: &str, format: Format) -> Result<()> {
    let state = p.app_state(app)?;
    if format == Format::Text {
        print!("{}", report_releases(&state, app)?);
        return Ok(());
    }
    let current = state.current_release(app)?.map(|r| r.version);
    let list: Vec<serde_json::Value> = state
        .releases(app)?
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "version": r.version,
                "current": Some(r.version) == current,
                "status": r.status.as_str(),
                "description": r.description,
                "build": r.build.to_string(),
                "image": r.image,
                "source_version": r.source_version,
                "created_at": r.created_at,
                "pusher": r.pusher,
            })
        })
        .collect();
    super::print_json(&serde_json::Value::Array(list));
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
