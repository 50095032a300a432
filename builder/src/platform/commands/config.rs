//! `config:*`: config vars. A change makes a new release and restarts the processes, unless
//! `--no-restart`; `--global` sets vars for every app.

use anyhow::{bail, Context, Result};

use super::Platform;
use crate::engine::envdir::Vars;
use crate::output;
use crate::platform::state::State;

/// `K=V` arguments as config vars; with `--encoded` each value is base64.
pub fn assignments(items: &[String], encoded: bool) -> Result<Vars> {
    use base64::Engine as _;
    let mut vars = Vars::new();
    for item in items {
        let (key, value) = crate::engine::envdir::parse_assignment(item)?;
        let value = if encoded {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| anyhow::anyhow!("the value of {key} is not base64 (--encoded)"))?;
            String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("the value of {key} is not UTF-8 text once decoded"))?
        } else {
            value
        };
        vars.insert(key, value);
    }
    Ok(vars)
}

/// `config:set --stdin`: `.env` lines from standard input (at most 1 MiB).
pub fn from_stdin() -> Result<Vars> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin().take(1 << 20).read_to_string(&mut text).context("cannot read config from standard input")?;
    let vars = crate::engine::envdir::parse_dotenv(&text).context("standard input (--stdin)")?;
    if let Some(key) = vars.keys().find(|k| !crate::engine::envdir::valid_key(k)) {
        bail!("{key:?} is not a valid config key: letters, digits and '_', not starting with a digit");
    }
    if vars.is_empty() {
        bail!("--stdin read no KEY=VALUE line from standard input");
    }
    Ok(vars)
}

/// `config:set APP|--global K=V... [--no-restart] [--encoded] [--stdin]`
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_values_are_decoded_and_bad_ones_refused() {
        let vars = assignments(&["A=aGk7IHJtIC1yZiAv".into(), "B=cGxhaW4=".into()], true).unwrap();
        assert_eq!((vars["A"].as_str(), vars["B"].as_str()), ("hi; rm -rf /", "plain"));
        assert_eq!(assignments(&["A=aGk=".into()], false).unwrap()["A"], "aGk=");
        assert!(assignments(&["A=not base64!".into()], true).unwrap_err().to_string().contains("not base64"));
        assert!(assignments(&["1A=x".into()], false).is_err());
    }
}
