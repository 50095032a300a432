//! `app.json`, as Dokku reads it: `//` and `/* */` comments and trailing commas tolerated;
//! `scripts.dokku.predeploy` (in a container of the new release, before its processes start;
//! failure aborts the deploy) and `postdeploy` (once the release serves); `formation` (the
//! initial quantities); `env` (defaults: `value`, or `generator: "secret"`, never over what
//! `config:set` set; `required` ones must be set); `buildpacks` (when neither `.buildpacks` nor
//! `BUILDPACK_URL` chooses); `healthchecks` (see [`super::checks`]); `cron` (see
//! [`super::scheduler`]).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Deserialize;

use super::checks::Check;
use super::cron::CronTask;
use crate::engine::envdir::Vars;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppJson {
    #[serde(default)]
    pub scripts: Scripts,
    #[serde(default)]
    pub formation: BTreeMap<String, Formation>,
    #[serde(default)]
    pub env: BTreeMap<String, EnvEntry>,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackRef>,
    #[serde(default)]
    pub healthchecks: BTreeMap<String, Vec<Check>>,
    #[serde(default)]
    pub cron: Vec<CronEntry>,
}

/// `cron[]`: a command run on a schedule in a one-off container of the current release.
#[derive(Debug, Clone, Deserialize)]
pub struct CronEntry {
    pub command: String,
    pub schedule: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Scripts {
    #[serde(default)]
    pub dokku: DokkuScripts,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DokkuScripts {
    pub predeploy: Option<String>,
    pub postdeploy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Formation {
    pub quantity: Option<i64>,
}

/// `"KEY": "value"` or `"KEY": {"value": ..., "generator": "secret", "required": true}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvEntry {
    Value(String),
    Spec {
        value: Option<String>,
        generator: Option<String>,
        #[serde(default = "yes")]
        required: bool,
    },
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuildpackRef {
    pub url: String,
}

impl AppJson {
    /// `cron[]` as tasks, each checked: a bad schedule or an empty command fails the deploy.
    pub fn cron_tasks(&self) -> Result<Vec<CronTask>> {
        let mut tasks: Vec<CronTask> = Vec::new();
        for (i, entry) in self.cron.iter().enumerate() {
            let task = CronTask::new(&entry.schedule, &entry.command)
                .map_err(|e| anyhow::anyhow!("app.json cron[{i}]: {e}; fix the entry and push again"))?;
            if !tasks.iter().any(|t| t.id == task.id) {
                tasks.push(task);
            }
        }
        Ok(tasks)
    }

    /// The file's text (None: the app has none).
    pub fn parse(text: Option<&str>) -> Result<AppJson> {
        let Some(text) = text else { return Ok(AppJson::default()) };
        serde_json::from_str(&strip_comments(text)).map_err(|e| anyhow::anyhow!("app.json is not valid: {e}"))
    }

    /// The config vars `env` adds to `config` (which it never overrides); a required one with
    /// no default that is not set is an error naming it.
    pub fn env_defaults(&self, config: &Vars) -> Result<Vars> {
        let mut added = Vars::new();
        for (key, entry) in &self.env {
            if config.contains_key(key) {
                continue;
            }
            if !crate::engine::envdir::valid_key(key) {
                bail!("app.json env: {key:?} is not a valid config var name");
            }
            let value = match entry {
                EnvEntry::Value(v) => Some(v.clone()),
                EnvEntry::Spec { value: Some(v), .. } => Some(v.clone()),
                EnvEntry::Spec { generator: Some(g), .. } if g == "secret" => Some(secret()),
                EnvEntry::Spec { generator: Some(g), .. } => {
                    bail!("app.json env {key}: unknown generator {g:?} (only \"secret\")")
                }
                EnvEntry::Spec { required: true, .. } => bail!(
                    "app.json requires the config var {key}, which is not set: set it with `config:set APP {key}=...`"
                ),
                EnvEntry::Spec { .. } => None,
            };
            if let Some(v) = value {
                added.insert(key.clone(), v);
            }
        }
        Ok(added)
    }

    /// `formation` quantities, checked.
    pub fn quantities(&self) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for (kind, f) in &self.formation {
            if !crate::engine::procfile::valid_name(kind) {
                bail!("app.json formation: {kind:?} is not a process type name");
            }
            if let Some(q) = f.quantity {
                if q < 0 {
                    bail!("app.json formation: {kind} has a negative quantity");
                }
                out.insert(kind.clone(), q);
            }
        }
        Ok(out)
    }

    /// `buildpacks` URLs (or default names): never a path, which would name a host directory.
    pub fn buildpack_urls(&self) -> Result<Vec<String>> {
        self.buildpacks
            .iter()
            .map(|b| {
                let url = b.url.trim();
                let named = !url.is_empty() && url.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
                if url.contains("://") || named {
                    Ok(url.to_string())
                } else {
                    bail!("app.json buildpacks: {url:?} is neither a URL nor a buildpack name")
                }
            })
            .collect()
    }
}

/// 64 hex characters from the kernel's random source.
fn secret() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON with `//` and `/* */` comments and trailing commas, as plain JSON (strings untouched).
fn strip_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('"', _) => {
                out.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                    }
                    out.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    out.push('"');
                }
                i += 1;
            }
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            (',', _) => {
                // A comma followed only by blanks and comments before } or ] is dropped.
                if !matches!(next_significant(&chars, i + 1), Some('}') | Some(']')) {
                    out.push(',');
                }
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The first character from `j` on that is neither blank nor in a comment.
fn next_significant(chars: &[char], mut j: usize) -> Option<char> {
    loop {
        while chars.get(j).is_some_and(|c| c.is_whitespace()) {
            j += 1;
        }
        match (chars.get(j), chars.get(j + 1)) {
            (Some('/'), Some('/')) => {
                while chars.get(j).is_some_and(|c| *c != '\n') {
                    j += 1;
                }
            }
            (Some('/'), Some('*')) => {
                j += 2;
                while j < chars.len() && !(chars[j] == '*' && chars.get(j + 1) == Some(&'/')) {
                    j += 1;
                }
                j += 2;
            }
            (c, _) => return c.copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMENTED: &str = r#"{
      // Dokku's scripts
      "scripts": { "dokku": { "predeploy": "echo pre // not a comment", "postdeploy": "echo post" } },
      /* the initial scale */
      "formation": { "web": { "quantity": 2 }, "worker": { "quantity": 1, }, },
      "env": {
        "GREETING": "hi",
        "SECRET_KEY": { "generator": "secret" },
        "OPTIONAL": { "required": false },
        "URL": { "value": "http://x/*y*/" },
      },
      "buildpacks": [ { "url": "https://example.com/bp.tgz" } ],
    }"#;

    #[test]
    fn comments_and_trailing_commas_are_tolerated() {
        let a = AppJson::parse(Some(COMMENTED)).unwrap();
        assert_eq!(a.scripts.dokku.predeploy.as_deref(), Some("echo pre // not a comment"));
        assert_eq!(a.scripts.dokku.postdeploy.as_deref(), Some("echo post"));
        assert_eq!(a.quantities().unwrap(), BTreeMap::from([("web".into(), 2), ("worker".into(), 1)]));
        assert_eq!(a.buildpack_urls().unwrap(), ["https://example.com/bp.tgz"]);
        assert!(AppJson::parse(Some("{\"scripts\": ")).unwrap_err().to_string().starts_with("app.json is not valid"));
    }

    #[test]
    fn env_defaults_never_override_and_required_ones_must_be_set() {
        let a = AppJson::parse(Some(COMMENTED)).unwrap();
        let set = Vars::from([("GREETING".to_string(), "from config:set".to_string())]);
        let added = a.env_defaults(&set).unwrap();
        assert!(!added.contains_key("GREETING") && !added.contains_key("OPTIONAL"));
        assert_eq!(added["URL"], "http://x/*y*/");
        assert_eq!(added["SECRET_KEY"].len(), 64);
        let required = AppJson::parse(Some(r#"{"env": {"API_KEY": {"description": "x"}}}"#)).unwrap();
        assert!(required
            .env_defaults(&Vars::new())
            .unwrap_err()
            .to_string()
            .contains("requires the config var API_KEY"));
    }

    #[test]
    fn buildpacks_are_urls_or_names_never_paths() {
        for bad in ["/srv/bp", "../bp", "./bp", ""] {
            let a = AppJson { buildpacks: vec![BuildpackRef { url: bad.into() }], ..Default::default() };
            assert!(a.buildpack_urls().is_err(), "{bad}");
        }
        let a = AppJson { buildpacks: vec![BuildpackRef { url: "python".into() }], ..Default::default() };
        assert_eq!(a.buildpack_urls().unwrap(), ["python"]);
    }
}
