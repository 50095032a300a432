//! `config:*`: config vars. A change makes a new release and restarts the processes, unless
//! `--no-restart`; `--global` sets vars for every app.

use anyhow::{bail, Result};

use super::Platform;
use crate::engine::envdir::Vars;
use crate::output;
use crate::platform::state::State;

/// `config:set APP|--global K=V... [--no-restart]`
pub async fn set(p: &Platform, app: &str, vars: &Vars, no_restart: bool) -> Result<()> {
    let mut state = p.state()?;
    let scope = p.scope(&state, app)?;
    let tx = state.transaction()?;
    State::set_config(&tx, scope, vars)?;
    tx.commit()?;
    let keys: Vec<&str> = vars.keys().map(String::as_str).collect();
    output::header(format!("Set {} for {}", keys.join(", "), if scope.is_empty() { "all apps" } else { scope }));
    release(p, scope, &format!("Set {}", keys.join(", ")), no_restart).await
}

/// `config:unset APP|--global K... [--no-restart]`
pub async fn unset(p: &Platform, app: &str, keys: &[String], no_restart: bool) -> Result<()> {
    let mut state = p.state()?;
    let scope = p.scope(&state, app)?;
    let tx = state.transaction()?;
    State::unset_config(&tx, scope, keys)?;
    tx.commit()?;
    output::header(format!("Unset {}", keys.join(", ")));
    release(p, scope, &format!("Unset {}", keys.join(", ")), no_restart).await
}

/// An app's change becomes a new release (global config applies at each app's next one).
async fn release(p: &Platform, scope: &str, description: &str, no_restart: bool) -> Result<()> {
    if scope.is_empty() {
        return Ok(());
    }
    let mut r = p.runner_for(scope).await?;
    let _lock = r.lock(scope)?;
    r.new_config_release(scope, description, !no_restart).await?;
    Ok(())
}

/// `config:get APP|--global KEY`
pub fn get(p: &Platform, app: &str, key: &str) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    match state.config(scope)?.get(key) {
        Some(v) => println!("{v}"),
        None => bail!("{app} has no config var {key}"),
    }
    Ok(())
}

/// `config:show APP|--global`
pub fn show(p: &Platform, app: &str) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    println!("=== {app} config vars");
    for (k, v) in state.config(scope)? {
        println!("{k}: {v}");
    }
    Ok(())
}
