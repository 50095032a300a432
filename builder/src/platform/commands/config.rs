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

/// The most `config:set --stdin` reads.
const MAX_STDIN: u64 = 1 << 20;

/// `config:set --stdin`: `KEY=VALUE` lines from standard input (at most 1 MiB).
pub fn from_stdin() -> Result<Vars> {
    use std::io::Read;
    let mut text = String::new();
    std::io::stdin().take(MAX_STDIN + 1).read_to_string(&mut text).context("cannot read config from standard input")?;
    if text.len() as u64 > MAX_STDIN {
        bail!("standard input holds more than 1 MiB of config (--stdin): nothing was set");
    }
    let vars = stdin_lines(&text)?;
    if vars.is_empty() {
        bail!("--stdin read no KEY=VALUE line from standard input");
    }
    Ok(vars)
}

/// `KEY=VALUE` lines (`export ` allowed, `#` comments and blank lines skipped); a value wrapped
/// in single or double quotes loses them. Nothing is expanded: `$HOME` stays `$HOME`.
fn stdin_lines(text: &str) -> Result<Vars> {
    let mut vars = Vars::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = crate::engine::envdir::parse_assignment(line)?;
        let unquoted =
            ['\'', '"'].iter().find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q))).unwrap_or(&value);
        vars.insert(key, unquoted.to_string());
    }
    Ok(vars)
}

/// `config:set APP|--global K=V... [--no-restart] [--encoded] [--stdin]`
pub async fn set(p: &Platform, app: &str, vars: &Vars, no_restart: bool) -> Result<()> {
    if let Some(key) = vars.iter().find(|(_, v)| v.contains('\0')).map(|(k, _)| k) {
        bail!("the value of {key} holds a NUL byte, which no process environment can carry: nothing was set");
    }
    let keys: Vec<String> = vars.keys().cloned().collect();
    change(p, app, &keys, no_restart, &format!("Set {}", keys.join(", ")), |tx, scope| {
        State::set_config(tx, scope, vars)
    })
    .await
}

/// `config:unset APP|--global K... [--no-restart]`
pub async fn unset(p: &Platform, app: &str, keys: &[String], no_restart: bool) -> Result<()> {
    change(p, app, keys, no_restart, &format!("Unset {}", keys.join(", ")), |tx, scope| {
        State::unset_config(tx, scope, keys)
    })
    .await
}

/// Writes a change of `keys` to `app`'s config (or the global one), then makes it a new release
/// (global config applies at each app's next one). An app's change first waits for a running
/// deploy of it (the app's lock, held to the end); when its release fails, the keys get their
/// old values back: a command that fails changes nothing.
pub(super) async fn change(
    p: &Platform,
    app: &str,
    keys: &[String],
    no_restart: bool,
    description: &str,
    write: impl FnOnce(&rusqlite::Transaction<'_>, &str) -> Result<()>,
) -> Result<()> {
    let mut state = p.state()?;
    let scope = p.scope(&state, app)?.to_string();
    if scope.is_empty() {
        let tx = state.transaction()?;
        write(&tx, "")?;
        tx.commit()?;
        output::header(format!("{description} for all apps"));
        return Ok(());
    }
    let mut r = p.runner_for(&scope).await?;
    let _lock = r.lock(&scope)?;
    let before = r.state.config(&scope)?;
    let tx = r.state.transaction()?;
    write(&tx, &scope)?;
    tx.commit()?;
    output::header(format!("{description} for {scope}"));
    if let Err(e) = r.new_config_release(&scope, description, !no_restart).await {
        let tx = r.state.transaction()?;
        State::unset_config(&tx, &scope, keys)?;
        let old: Vars = before.into_iter().filter(|(k, _)| keys.contains(k)).collect();
        State::set_config(&tx, &scope, &old)?;
        tx.commit()?;
        return Err(e.context(format!("the config of {scope} is as it was")));
    }
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

/// `config:show APP|--global [--format json]`
pub fn show(p: &Platform, app: &str, format: super::Format) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    if format == super::Format::Json {
        super::print_json(&serde_json::json!(state.config(scope)?));
        return Ok(());
    }
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
    fn stdin_lines_are_taken_as_written() {
        let vars = stdin_lines("# secrets\nexport A='x y'\nB=\"q\"\n\nC=ab$HOME\nD=$SSH_CONNECTION\n").unwrap();
        let got: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("A", "x y"), ("B", "q"), ("C", "ab$HOME"), ("D", "$SSH_CONNECTION")]);
        assert!(stdin_lines("1BAD=x\n").is_err());
        assert!(stdin_lines("no equals sign\n").is_err());
    }

    #[test]
    fn encoded_values_are_decoded_and_bad_ones_refused() {
        let vars = assignments(&["A=aGk7IHJtIC1yZiAv".into(), "B=cGxhaW4=".into()], true).unwrap();
        assert_eq!((vars["A"].as_str(), vars["B"].as_str()), ("hi; rm -rf /", "plain"));
        assert_eq!(assignments(&["A=aGk=".into()], false).unwrap()["A"], "aGk=");
        assert!(assignments(&["A=not base64!".into()], true).unwrap_err().to_string().contains("not base64"));
        assert!(assignments(&["1A=x".into()], false).is_err());
    }
}
