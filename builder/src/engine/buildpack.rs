//! The classic buildpack contract (SPEC section 1), in one place.
//!
//! | script            | arguments                    |
//! |-------------------|------------------------------|
//! | `bin/detect`      | BUILD_DIR                    |
//! | `bin/compile`     | BUILD_DIR CACHE_DIR ENV_DIR  |
//! | `bin/release`     | BUILD_DIR                    |
//! | `bin/test-compile`| BUILD_DIR CACHE_DIR ENV_DIR  |
//! | `bin/test`        | BUILD_DIR ENV_DIR            |
//!
//! After a buildpack compiles, the `export` file in the buildpack's own directory is sourced and
//! what it exports is passed on to the buildpacks that follow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::engine::exec::{self, ExecError};
use crate::engine::user::AppUser;

#[derive(Debug, Clone)]
pub struct Buildpack {
    /// The name shown in the log: what `bin/detect` printed, or the directory name.
    pub name: String,
    pub dir: PathBuf,
    /// Where it came from, for the log and the slug's metadata.
    pub source: String,
    /// `STACK` for this buildpack's scripts instead of the build's: the Heroku stack the build's
    /// stack stands in for, given to buildpacks that are not slipway's own (Heroku's official
    /// ones refuse a stack name they do not know).
    pub stack: Option<String>,
}

/// What every script of one build runs with.
#[derive(Debug, Clone, Default)]
pub struct ScriptEnv {
    /// Variables set on top of the engine's own environment.
    pub vars: BTreeMap<String, String>,
    pub user: Option<AppUser>,
    pub timeout: Option<Duration>,
}

impl ScriptEnv {
    fn command(&self, script: &Path) -> Command {
        let mut cmd = Command::new(script);
        cmd.envs(&self.vars);
        if let Some(user) = &self.user {
            user.apply(&mut cmd);
        }
        cmd
    }
}

impl Buildpack {
    pub fn new(dir: PathBuf, source: String) -> Self {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "buildpack".into());
        Buildpack { name, dir, source, stack: None }
    }

    /// A script (or bash) with the build's environment and this buildpack's `STACK`.
    fn command(&self, env: &ScriptEnv, program: &Path) -> Command {
        let mut cmd = env.command(program);
        if let Some(stack) = &self.stack {
            cmd.env("STACK", stack);
        }
        cmd
    }

    fn script(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    pub fn has(&self, script: &str) -> bool {
        self.script(script).is_file()
    }

    /// Runs `bin/detect`. `Some(name)` when it applies (exit 0); the name is its first line of
    /// output, or the directory name when it printed nothing.
    pub fn detect(&self, build_dir: &Path, env: &ScriptEnv) -> Result<Option<String>, ExecError> {
        if !self.has("detect") {
            return Ok(None);
        }
        let mut cmd = self.command(env, &self.script("detect"));
        cmd.arg(build_dir).current_dir(build_dir);
        let (status, out) = exec::run_capture(&mut cmd, &format!("{} bin/detect", self.name), env.timeout)?;
        if !status.success() {
            return Ok(None);
        }
        let name = out.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(&self.name).to_string();
        Ok(Some(name))
    }

    pub fn compile(
        &self,
        build_dir: &Path,
        cache_dir: &Path,
        env_dir: &Path,
        env: &ScriptEnv,
    ) -> Result<(), ExecError> {
        self.run_stage("compile", &[build_dir, cache_dir, env_dir], build_dir, env)
    }

    pub fn test_compile(
        &self,
        build_dir: &Path,
        cache_dir: &Path,
        env_dir: &Path,
        env: &ScriptEnv,
    ) -> Result<(), ExecError> {
        self.run_stage("test-compile", &[build_dir, cache_dir, env_dir], build_dir, env)
    }

    pub fn test(&self, build_dir: &Path, env_dir: &Path, env: &ScriptEnv) -> Result<(), ExecError> {
        self.run_stage("test", &[build_dir, env_dir], build_dir, env)
    }

    fn run_stage(&self, stage: &str, args: &[&Path], cwd: &Path, env: &ScriptEnv) -> Result<(), ExecError> {
        let mut cmd = self.command(env, &self.script(stage));
        cmd.args(args).current_dir(cwd);
        exec::run(&mut cmd, &format!("{} bin/{stage}", self.name), env.timeout)
    }

    /// Runs `bin/release` when the buildpack has one; returns its YAML.
    pub fn release(&self, build_dir: &Path, env: &ScriptEnv) -> Result<Option<String>, ExecError> {
        if !self.has("release") {
            return Ok(None);
        }
        let mut cmd = self.command(env, &self.script("release"));
        cmd.arg(build_dir).current_dir(build_dir);
        let what = format!("{} bin/release", self.name);
        let (status, out) = exec::run_capture(&mut cmd, &what, env.timeout)?;
        if !status.success() {
            return Err(ExecError::Failed { what, status });
        }
        Ok(Some(out))
    }

    /// Sources the buildpack's `export` file (if any) in bash and returns the variables it
    /// exported or changed, to hand to the next buildpack.
    pub fn exported(&self, env: &ScriptEnv) -> Result<BTreeMap<String, String>> {
        let export = self.dir.join("export");
        if !export.is_file() {
            return Ok(BTreeMap::new());
        }
        let mut cmd = self.command(env, Path::new("bash"));
        cmd.args(["-c", "source \"$1\" >/dev/null && env -0", "slipway-export"]).arg(&export);
        let what = format!("{} export", self.name);
        let (status, out) = exec::run_capture(&mut cmd, &what, env.timeout)?;
        if !status.success() {
            anyhow::bail!("sourcing {} failed: {}", export.display(), exec::describe(status));
        }
        let before: BTreeMap<String, String> =
            std::env::vars().chain(env.vars.iter().map(|(k, v)| (k.clone(), v.clone()))).collect();
        Ok(out
            .split('\0')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, v)| {
                !k.is_empty()
                    && *k != "_"
                    && *k != "SHLVL"
                    && *k != "PWD"
                    && before.get(*k).map(String::as_str) != Some(*v)
            })
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }
}

/// Reads a `.buildpacks` file: one source a line, `#` comments and blank lines allowed.
pub fn read_dot_buildpacks(app_dir: &Path) -> Result<Option<Vec<String>>> {
    let path = app_dir.join(".buildpacks");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).context("cannot read .buildpacks")?;
    let lines: Vec<String> =
        text.lines().map(|l| l.trim()).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect();
    Ok(Some(lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testutil::fake_buildpack;

    #[test]
    fn detect_name_and_no_match() {
        let dir = tempfile::tempdir().unwrap();
        let yes = fake_buildpack(dir.path(), "yes", "echo '  Fancy  '", "", None);
        let quiet = fake_buildpack(dir.path(), "quiet", "exit 0", "", None);
        let no = fake_buildpack(dir.path(), "no", "exit 1", "", None);
        let env = ScriptEnv::default();
        assert_eq!(yes.detect(dir.path(), &env).unwrap(), Some("Fancy".into()));
        assert_eq!(quiet.detect(dir.path(), &env).unwrap(), Some("quiet".into()));
        assert_eq!(no.detect(dir.path(), &env).unwrap(), None);
    }

    #[test]
    fn export_file_reports_only_what_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let bp = fake_buildpack(
            dir.path(),
            "bp",
            "",
            "",
            Some("export FIRST_BP_HOME=/app/.first\nexport PATH=\"/app/.first/bin:$PATH\"\nNOT_EXPORTED=1\n"),
        );
        let vars = bp.exported(&ScriptEnv::default()).unwrap();
        assert_eq!(vars.get("FIRST_BP_HOME").map(String::as_str), Some("/app/.first"));
        assert!(vars["PATH"].starts_with("/app/.first/bin:"));
        assert!(!vars.contains_key("NOT_EXPORTED"));
        assert!(!vars.contains_key("HOME"));
    }

    #[test]
    fn dot_buildpacks_skips_comments_and_blanks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".buildpacks"), "# first\nhttps://a/x.git\n\n  ./local  \n").unwrap();
        assert_eq!(read_dot_buildpacks(dir.path()).unwrap(), Some(vec!["https://a/x.git".into(), "./local".into()]));
    }
}
