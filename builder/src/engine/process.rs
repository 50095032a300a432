//! Starting an app's processes (SPEC sections 2 and 3): config vars from ENV_PATH, then
//! `/etc/profile.d/*.sh` (inside the stack image), the app's `.profile.d/*.sh` and `.profile`,
//! `HOME` = the app dir, and the Procfile command through `bash -c` so `&&`, pipes and quotes
//! work. Config values travel in the environment, never on a command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::engine::envdir::{self, Vars};
use crate::engine::procfile::Procfile;
use crate::engine::user::AppUser;

/// Sourced before the process starts; the process itself is "$@".
const PROFILE_WRAPPER: &str = r#"
if [ "${SLIPWAY_SYSTEM_PROFILE:-}" = 1 ]; then
  for f in /etc/profile.d/*.sh; do [ -r "$f" ] && . "$f"; done
fi
unset SLIPWAY_SYSTEM_PROFILE
for f in "$HOME"/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done
[ -r "$HOME/.profile" ] && . "$HOME/.profile"
cd "$HOME" || exit 1
exec "$@"
"#;

/// For images slipway did not build (Dockerfile apps): the config vars of `env_dir` in the
/// environment (the platform's PORT and DYNO stay), then `argv` as it is: no shell, same user,
/// same directory. Returns only when the command cannot start.
pub fn env_exec(env_dir: &Path, argv: &[std::ffi::OsString]) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = argv.split_first() else { return anyhow::anyhow!("no command given") };
    let vars = match envdir::read(env_dir) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in vars {
        if !(k == "PORT" || k == "DYNO") || std::env::var_os(&k).is_none() {
            cmd.env(k, v);
        }
    }
    let err = cmd.exec();
    anyhow::anyhow!("cannot run {}: {err}", program.to_string_lossy())
}

#[derive(Debug, Clone)]
pub struct ProcessEnv {
    pub app_dir: PathBuf,
    /// Config vars, one file each (ENV_PATH).
    pub env_dir: Option<PathBuf>,
    /// Set on top: PORT, DYNO, `-e` values.
    pub vars: Vars,
    pub user: Option<AppUser>,
    /// Source `/etc/profile.d/*.sh` too (inside the stack image).
    pub system_profile: bool,
}

impl ProcessEnv {
    /// A command that runs `argv` after the profile scripts.
    pub fn command(&self, argv: &[String]) -> Result<Command> {
        if argv.is_empty() {
            bail!("no command given");
        }
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(PROFILE_WRAPPER).arg("slipway").args(argv);
        if let Some(dir) = &self.env_dir {
            cmd.envs(envdir::read(dir)?);
        }
        cmd.envs(&self.vars);
        cmd.env("HOME", &self.app_dir);
        cmd.env("SLIPWAY_SYSTEM_PROFILE", if self.system_profile { "1" } else { "0" });
        cmd.current_dir(&self.app_dir);
        if let Some(u) = &self.user {
            u.apply(&mut cmd);
        }
        Ok(cmd)
    }

    /// A command that runs a Procfile-style command line through `bash -c`.
    pub fn shell(&self, command_line: &str) -> Result<Command> {
        self.command(&["bash".into(), "-c".into(), command_line.into()])
    }
}

/// The Procfile command of `process_type`, with an error that lists what the app has.
pub fn procfile_command(app_dir: &Path, process_type: &str) -> Result<String> {
    let Some(procfile) = Procfile::read(app_dir)? else {
        bail!("{} has no Procfile, so there is no `{process_type}` process to start", app_dir.display());
    };
    match procfile.get(process_type) {
        Some(cmd) => Ok(cmd.to_string()),
        None if procfile.processes.is_empty() => bail!("the Procfile declares no process types"),
        None => bail!("the Procfile has no `{process_type}` process type (it has: {})", procfile.names().join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_scripts_run_in_order_after_config_vars() {
        let app = tempfile::tempdir().unwrap();
        let env = tempfile::tempdir().unwrap();
        std::fs::create_dir(app.path().join(".profile.d")).unwrap();
        std::fs::write(
            app.path().join(".profile.d/10_a.sh"),
            "export ORDER=\"${ORDER}a\"\nexport GREETING=\"${GREETING:-default}\"\n",
        )
        .unwrap();
        std::fs::write(app.path().join(".profile.d/20_b.sh"), "export ORDER=\"${ORDER}b\"\n").unwrap();
        std::fs::write(app.path().join(".profile"), "export ORDER=\"${ORDER}p\"\n").unwrap();
        std::fs::write(env.path().join("GREETING"), "from config").unwrap();
        let pe = ProcessEnv {
            app_dir: app.path().to_path_buf(),
            env_dir: Some(env.path().to_path_buf()),
            vars: [("ORDER".to_string(), "0".to_string())].into(),
            user: None,
            system_profile: false,
        };
        let out =
            pe.shell("echo \"$ORDER|$GREETING|$PWD\" && echo 'quoted | pipe' | tr a-z A-Z").unwrap().output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("0abp|from config|{}", app.path().display()));
        assert_eq!(lines[1], "QUOTED | PIPE");
    }

    #[test]
    fn missing_process_type_lists_the_ones_there_are() {
        let app = tempfile::tempdir().unwrap();
        std::fs::write(app.path().join("Procfile"), "web: a\nworker: b\n").unwrap();
        assert_eq!(procfile_command(app.path(), "web").unwrap(), "a");
        let err = procfile_command(app.path(), "clock").unwrap_err().to_string();
        assert_eq!(err, "the Procfile has no `clock` process type (it has: web, worker)");
    }
}
