//! `bin/release` output: the YAML a buildpack prints after compile, and what the platform does
//! with it (SPEC section 1): the text is kept as `.release`, `config_vars` become
//! `.profile.d/00_config_vars.sh`, and `default_process_types` become the Procfile when the app
//! has none.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use yaml_rust2::{Yaml, YamlLoader};

use crate::engine::procfile::{ProcessType, Procfile};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub default_process_types: Vec<(String, String)>,
    pub config_vars: Vec<(String, String)>,
    /// Listed by old buildpacks; Heroku provisions them, slipway only reports them.
    pub addons: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("bin/release printed invalid YAML: {0}")]
    Syntax(String),
    #[error("bin/release printed YAML whose top level is not a map of keys (found {0})")]
    NotAMap(&'static str),
    #[error("bin/release: `{key}` must be a map of names to strings (found {found})")]
    NotAStringMap { key: &'static str, found: &'static str },
    #[error("bin/release: `addons` must be a list")]
    AddonsNotAList,
    #[error("bin/release: config var {0:?} is not a valid variable name (letters, digits and '_', not starting with a digit)")]
    BadConfigKey(String),
    #[error(
        "bin/release: process type {0:?} is not a valid name (letters, digits, '-' and '_', at most 63 characters)"
    )]
    BadProcessType(String),
    #[error("bin/release: process type {0:?} needs a command of one line")]
    BadCommand(String),
}

fn kind(y: &Yaml) -> &'static str {
    match y {
        Yaml::Real(_) => "a number",
        Yaml::Integer(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Boolean(_) => "a boolean",
        Yaml::Array(_) => "a list",
        Yaml::Hash(_) => "a map",
        Yaml::Alias(_) => "an alias",
        Yaml::Null => "nothing",
        Yaml::BadValue => "a bad value",
    }
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

fn string_map(doc: &Yaml, key: &'static str) -> Result<Vec<(String, String)>, ReleaseError> {
    match &doc[key] {
        Yaml::BadValue | Yaml::Null => Ok(Vec::new()),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| match (scalar(k), scalar(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                (_, _) => Err(ReleaseError::NotAStringMap { key, found: kind(v) }),
            })
            .collect(),
        other => Err(ReleaseError::NotAStringMap { key, found: kind(other) }),
    }
}

impl Release {
    pub fn parse(text: &str) -> Result<Self, ReleaseError> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| ReleaseError::Syntax(e.to_string()))?;
        let Some(doc) = docs.into_iter().next() else {
            return Ok(Release::default());
        };
        match doc {
            Yaml::Null => return Ok(Release::default()),
            Yaml::Hash(_) => {}
            ref other => return Err(ReleaseError::NotAMap(kind(other))),
        }
        let addons = match &doc["addons"] {
            Yaml::BadValue | Yaml::Null => Vec::new(),
            Yaml::Array(items) => items.iter().filter_map(scalar).collect(),
            _ => return Err(ReleaseError::AddonsNotAList),
        };
        let config_vars = string_map(&doc, "config_vars")?;
        // The keys become shell variable names in `.profile.d`: nothing else may pass.
        if let Some((bad, _)) = config_vars.iter().find(|(k, _)| !crate::engine::envdir::valid_key(k)) {
            return Err(ReleaseError::BadConfigKey(bad.clone()));
        }
        let default_process_types =
            string_map(&doc, "default_process_types")?.into_iter().map(process_type).collect::<Result<_, _>>()?;
        Ok(Release { default_process_types, config_vars, addons })
    }

    /// The shell lines for `.profile.d/00_config_vars.sh`. A value the user already set (with
    /// `config:set` or `-e`) wins over the buildpack's default, as on Heroku, where legacy
    /// `config_vars` were only added when the app had no such key.
    pub fn config_vars_script(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.config_vars {
            // Keys are checked names (see `parse`); values are single-quoted, so nothing in them
            // is expanded or run when the script is sourced.
            let _ = writeln!(out, "[ -n \"${{{key}:-}}\" ] || {key}={}; export {key}", single_quoted(value));
        }
        out
    }

    /// Applies the release to a compiled app directory: `.release`, the config-vars profile
    /// script, and a Procfile from `default_process_types` when the app has none.
    /// Returns the app's process types after that.
    pub fn apply(&self, raw_yaml: &str, app_dir: &Path) -> anyhow::Result<Procfile> {
        std::fs::write(app_dir.join(".release"), raw_yaml).context("cannot write .release")?;
        if !self.config_vars.is_empty() {
            let profile_d = app_dir.join(".profile.d");
            std::fs::create_dir_all(&profile_d).context("cannot create .profile.d")?;
            std::fs::write(profile_d.join("00_config_vars.sh"), self.config_vars_script())
                .context("cannot write .profile.d/00_config_vars.sh")?;
        }
        if let Some(existing) = Procfile::read(app_dir)? {
            return Ok(existing);
        }
        let procfile = Procfile {
            processes: self
                .default_process_types
                .iter()
                .map(|(name, command)| ProcessType { name: name.clone(), command: command.clone() })
                .collect(),
            warnings: Vec::new(),
        };
        if !procfile.processes.is_empty() {
            std::fs::write(app_dir.join("Procfile"), procfile.to_string()).context("cannot write Procfile")?;
        }
        Ok(procfile)
    }
}

/// A default process type as the Procfile `apply` writes will read it back: a valid name and a
/// trimmed command of one line (the Procfile parser trims, and a line break starts a new type).
fn process_type((name, command): (String, String)) -> Result<(String, String), ReleaseError> {
    if !crate::engine::procfile::valid_name(&name) {
        return Err(ReleaseError::BadProcessType(name));
    }
    let command = command.trim();
    if command.is_empty() || command.contains('\n') {
        return Err(ReleaseError::BadCommand(name));
    }
    Ok((name, command.to_string()))
}

/// `'...'` for a shell: the value as it is, with each `'` written as `'\''`.
fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "---\naddons:\n  - heroku-postgresql\nconfig_vars:\n  LANG: en_US.UTF-8\n  WORKERS: 4\ndefault_process_types:\n  web: bin/server --port $PORT\n  worker: bin/worker\n";

    #[test]
    fn parses_all_keys_in_order() {
        let r = Release::parse(FULL).unwrap();
        assert_eq!(r.addons, vec!["heroku-postgresql"]);
        assert_eq!(r.config_vars, vec![("LANG".into(), "en_US.UTF-8".into()), ("WORKERS".into(), "4".into())]);
        assert_eq!(
            r.default_process_types,
            vec![("web".into(), "bin/server --port $PORT".into()), ("worker".into(), "bin/worker".into())]
        );
    }

    #[test]
    fn empty_output_is_an_empty_release() {
        assert_eq!(Release::parse("").unwrap(), Release::default());
        assert_eq!(Release::parse("---\n").unwrap(), Release::default());
    }

    #[test]
    fn malformed_yaml_is_a_clear_error() {
        let err = Release::parse("default_process_types:\n  web: [unclosed\n").unwrap_err();
        assert!(matches!(err, ReleaseError::Syntax(_)), "{err:?}");
        assert!(err.to_string().starts_with("bin/release printed invalid YAML"));
        assert_eq!(Release::parse("- a\n- b\n").unwrap_err(), ReleaseError::NotAMap("a list"));
        assert_eq!(
            Release::parse("default_process_types: web\n").unwrap_err(),
            ReleaseError::NotAStringMap { key: "default_process_types", found: "a string" }
        );
        assert_eq!(
            Release::parse("config_vars:\n  A:\n    nested: x\n").unwrap_err(),
            ReleaseError::NotAStringMap { key: "config_vars", found: "a map" }
        );
    }

    #[test]
    fn config_vars_script_keeps_user_values_and_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let ran = tmp.path().join("ran");
        let value = format!("say \"hi\" $HOME `x` it's }} $(touch {})", ran.display());
        let value = value.as_str();
        let r = Release { config_vars: vec![("MSG".into(), value.into())], ..Default::default() };
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("{}\nprintf %s \"$MSG\"", r.config_vars_script())])
            .env_remove("MSG")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("{}\nprintf %s \"$MSG\"", r.config_vars_script())])
            .env("MSG", "user value")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "user value");
        assert!(!ran.exists(), "sourcing the script ran part of a value");
    }

    #[test]
    fn config_var_keys_that_are_not_names_are_refused() {
        let yaml = "config_vars:\n  \"A=1; touch /tmp/x; B\": v\n";
        let err = Release::parse(yaml).unwrap_err().to_string();
        assert!(err.contains("is not a valid variable name"), "{err}");
    }

    #[test]
    fn default_process_types_read_back_from_the_procfile_they_become() {
        // Found by fuzzing (release): a trailing form feed made `apply` return a command the
        // Procfile it wrote does not hold.
        let r = Release::parse("default_process_types:\n  web: node server.j&s\x0c").unwrap();
        assert_eq!(r.default_process_types, vec![("web".into(), "node server.j&s".into())]);
        let dir = tempfile::tempdir().unwrap();
        let procfile = r.apply("", dir.path()).unwrap();
        assert_eq!(Procfile::read(dir.path()).unwrap().unwrap(), procfile);
        for (yaml, err) in [
            ("default_process_types:\n  \"web server\": x\n", ReleaseError::BadProcessType("web server".into())),
            ("default_process_types:\n  \"a: b\\nc\": x\n", ReleaseError::BadProcessType("a: b\nc".into())),
            ("default_process_types:\n  web:\n", ReleaseError::BadCommand("web".into())),
            ("default_process_types:\n  web: \"a\\nworker: b\"\n", ReleaseError::BadCommand("web".into())),
        ] {
            assert_eq!(Release::parse(yaml).unwrap_err(), err, "{yaml}");
        }
    }

    #[test]
    fn apply_writes_release_profile_and_procfile() {
        let dir = tempfile::tempdir().unwrap();
        let r = Release::parse(FULL).unwrap();
        let procfile = r.apply(FULL, dir.path()).unwrap();
        assert_eq!(procfile.names(), vec!["web", "worker"]);
        assert_eq!(std::fs::read_to_string(dir.path().join(".release")).unwrap(), FULL);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Procfile")).unwrap(),
            "web: bin/server --port $PORT\nworker: bin/worker\n"
        );
        let profile = std::fs::read_to_string(dir.path().join(".profile.d/00_config_vars.sh")).unwrap();
        assert!(profile.contains("[ -n \"${LANG:-}\" ] || LANG='en_US.UTF-8'; export LANG"), "{profile}");
    }

    #[test]
    fn apply_keeps_the_apps_own_procfile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Procfile"), "web: mine\n").unwrap();
        let procfile = Release::parse(FULL).unwrap().apply(FULL, dir.path()).unwrap();
        assert_eq!(procfile.get("web"), Some("mine"));
        assert_eq!(std::fs::read_to_string(dir.path().join("Procfile")).unwrap(), "web: mine\n");
    }
}
