//! Config vars on disk and in `.env`.
//!
//! ENV_DIR (SPEC section 1) holds one file per config var: the file name is the key, the content
//! the value. Buildpacks read it themselves; the platform does not export it to them. `.env` in
//! the app root (herokuish) is `KEY=value` lines, optionally prefixed by `export `, and IS loaded
//! into the build environment.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

pub type Vars = BTreeMap<String, String>;

/// A config var name as a shell accepts it: a letter or `_`, then letters, digits and `_`.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `K=V` as given on a command line (`-e K=V`).
pub fn parse_assignment(s: &str) -> Result<(String, String)> {
    let Some((k, v)) = s.split_once('=') else {
        bail!("expected KEY=VALUE, found {s:?}");
    };
    if !valid_key(k) {
        bail!("{k:?} is not a valid config var name (letters, digits and '_', not starting with a digit)");
    }
    Ok((k.to_string(), v.to_string()))
}

/// Writes `vars` into `dir`, one file per var. Existing files for other keys are left alone.
pub fn write(dir: &Path, vars: &Vars) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create env dir {}", dir.display()))?;
    for (k, v) in vars {
        if !valid_key(k) {
            bail!("{k:?} is not a valid config var name");
        }
        std::fs::write(dir.join(k), v).with_context(|| format!("cannot write {}", dir.join(k).display()))?;
    }
    Ok(())
}

/// Reads an env dir; a missing dir is empty. Files whose names are not valid keys are skipped.
pub fn read(dir: &Path) -> Result<Vars> {
    let mut vars = Vars::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vars),
        Err(e) => return Err(e).with_context(|| format!("cannot read env dir {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !valid_key(&name) || !entry.file_type()?.is_file() {
            continue;
        }
        let value = std::fs::read(entry.path())?;
        vars.insert(name, String::from_utf8_lossy(&value).into_owned());
    }
    Ok(vars)
}

/// Reads `.env` from an app dir (dotenv syntax: quotes, `export `, comments); missing is empty.
pub fn read_dotenv(app_dir: &Path) -> Result<Vars> {
    let path = app_dir.join(".env");
    if !path.is_file() {
        return Ok(Vars::new());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    dotenv_lines(&text, &path.display().to_string())
}

/// `.env` text (`KEY=value` lines, optionally `export `), as [`read_dotenv`] reads the file.
pub fn parse_dotenv(text: &str) -> Result<Vars> {
    dotenv_lines(text, ".env")
}

fn dotenv_lines(text: &str, name: &str) -> Result<Vars> {
    let mut vars = Vars::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (k, v) = item.with_context(|| format!("{name} is not valid KEY=value lines"))?;
        vars.insert(k, v);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_dir_round_trip_with_awkward_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = Vars::new();
        vars.insert("MULTI".into(), "line one\nline two".into());
        vars.insert("EMPTY".into(), String::new());
        vars.insert("QUOTES".into(), "a \"b\" 'c' $d".into());
        write(dir.path(), &vars).unwrap();
        std::fs::write(dir.path().join("not-a-key"), "x").unwrap();
        assert_eq!(read(dir.path()).unwrap(), vars);
        assert_eq!(std::fs::read_to_string(dir.path().join("MULTI")).unwrap(), "line one\nline two");
    }

    #[test]
    fn missing_env_dir_is_empty() {
        assert!(read(Path::new("/nonexistent/slipway/env")).unwrap().is_empty());
    }

    #[test]
    fn assignments_and_keys() {
        assert_eq!(parse_assignment("A_1=x=y").unwrap(), ("A_1".into(), "x=y".into()));
        assert!(parse_assignment("noequals").is_err());
        assert!(parse_assignment("1A=x").is_err());
        assert!(parse_assignment("A-B=x").is_err());
        assert!(!valid_key(""));
    }

    #[test]
    fn dotenv_supports_export_quotes_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nexport BUILDPACK_URL=https://example.com/bp.tgz\nNAME=\"quoted value\"\nPLAIN=x\n",
        )
        .unwrap();
        let vars = read_dotenv(dir.path()).unwrap();
        assert_eq!(vars["BUILDPACK_URL"], "https://example.com/bp.tgz");
        assert_eq!(vars["NAME"], "quoted value");
        assert_eq!(vars["PLAIN"], "x");
    }
}
