//! Deploy checks, Dokku's way: `app.json` `healthchecks.<type>[]` entries (`type`, `path`,
//! `port`, `attempts` 3, `timeout` 5 s, `wait` 5 s, `initialDelay`, `content`, `command`).
//! With none: the web port must accept connections, and every container must still be running
//! after a short settle (Dokku waits a fixed 10 s; slipway checks as soon as it can).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "three")]
    pub attempts: u32,
    #[serde(default = "five")]
    pub timeout: u64,
    #[serde(default = "five")]
    pub wait: u64,
    #[serde(default)]
    pub initial_delay: u64,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

fn three() -> u32 {
    3
}
fn five() -> u64 {
    5
}

/// The checks `app.json` declares for each process type.
pub fn parse(app_json: Option<&str>) -> Result<BTreeMap<String, Vec<Check>>> {
    Ok(super::app_json::AppJson::parse(app_json)?.healthchecks)
}

impl Check {
    pub fn describe(&self) -> String {
        let what = match (&self.path, &self.command) {
            (Some(p), _) => format!("GET {p}"),
            (None, Some(c)) => format!("command {}", c.join(" ")),
            (None, None) => "GET /".into(),
        };
        match &self.name {
            Some(n) => format!("{n} ({what})"),
            None => what,
        }
    }
}

/// Runs one HTTP check against 127.0.0.1:`port`.
pub async fn http(check: &Check, port: u16) -> Result<()> {
    tokio::time::sleep(Duration::from_secs(check.initial_delay)).await;
    let path = check.path.clone().unwrap_or_else(|| "/".into());
    let mut last = String::new();
    for attempt in 1..=check.attempts.max(1) {
        match crate::net::get_async(port, &path, Duration::from_secs(check.timeout)).await {
            Ok((status, body)) if (200..400).contains(&status) => match &check.content {
                Some(c) if !body.contains(c.as_str()) => last = format!("the body did not contain {c:?}"),
                _ => return Ok(()),
            },
            Ok((status, _)) => last = format!("it answered {status}"),
            Err(e) => last = crate::output::error_chain(e.root_cause()),
        }
        if attempt < check.attempts {
            tokio::time::sleep(Duration::from_secs(check.wait)).await;
        }
    }
    bail!("check {} failed after {} attempts: {last}", check.describe(), check.attempts.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dokku_healthchecks_with_defaults() {
        let checks = parse(Some(
            r#"{"healthchecks": {"web": [{"type": "startup", "name": "ready", "path": "/health", "content": "ok", "attempts": 2}]}}"#,
        ))
        .unwrap();
        let c = &checks["web"][0];
        assert_eq!((c.attempts, c.timeout, c.wait, c.initial_delay), (2, 5, 5, 0));
        assert_eq!(c.describe(), "ready (GET /health)");
        assert!(parse(Some("{not json")).unwrap_err().to_string().starts_with("app.json is not valid"));
        assert!(parse(None).unwrap().is_empty());
    }
}
