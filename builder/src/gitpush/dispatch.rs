//! sshd's forced command for every key: `slipway ssh-command KEY`. It reads
//! `SSH_ORIGINAL_COMMAND`, splits it like a shell would (but runs no shell), and allows only
//! `git-receive-pack 'APP'`, `git-upload-pack 'APP'` and the platform's app commands
//! (`ssh slipway@host config:set APP K=V`). The first push of an app creates it (setting
//! `git.auto-create`) and its bare repo, whose `pre-receive` hook runs `slipway git-hook APP`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

use crate::platform::access::{Caller, Need};
use crate::platform::names::is_safe_app_name;
use crate::platform::settings::GlobalSettings;
use crate::platform::state::State;

/// `'/myapp.git'`, `myapp`, `myapp.git`, `~/myapp` all name the app `myapp`; nothing else does.
pub fn app_from_path(path: &str) -> Result<String> {
    let p = path.trim_start_matches("~/").trim_start_matches('/');
    let p = p.strip_suffix(".git").unwrap_or(p);
    // Existing apps pass the path check; a new app's name is checked in full when it is created.
    if !is_safe_app_name(p) {
        bail!("{path:?} is not an app: push to slipway@HOST:APP (lowercase letters, digits, '-' and '.')");
    }
    Ok(p.to_string())
}

pub fn repo_path(data_dir: &Path, app: &str) -> PathBuf {
    data_dir.join("repos").join(format!("{app}.git"))
}

/// Creates the bare repo and (re)writes its pre-receive hook.
pub fn ensure_repo(data_dir: &Path, app: &str, exe: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let repo = repo_path(data_dir, app);
    if !repo.join("HEAD").exists() {
        std::fs::create_dir_all(&repo)?;
        let out =
            Command::new("git").args(["init", "--quiet", "--bare"]).arg(&repo).output().context("cannot run git")?;
        if !out.status.success() {
            bail!("git init failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    // Pushed objects are checked before git takes them (malformed trees, paths like `.git`).
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&repo)
        .args(["config", "receive.fsckObjects", "true"])
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!("git config failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let hook = repo.join("hooks/pre-receive");
    let script = format!(
        "#!/usr/bin/env bash\n# Written by slipway: builds and deploys what is pushed.\nexec {} --data-dir {} git-hook {}\n",
        shell_words::quote(&exe.to_string_lossy()),
        shell_words::quote(&data_dir.to_string_lossy()),
        app
    );
    std::fs::write(&hook, script)?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
    Ok(repo)
}

/// What an SSH connection asked for, once git's own requests are handled.
pub enum Request {
    /// The greeting was shown (no command); exit with this code.
    Greeted(i32),
    /// A platform command with its arguments, for the caller to parse and run in-process.
    Command(Vec<String>),
}

/// What an SSH command line asks for, before anything is opened or run.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// No command: the greeting.
    Nothing,
    /// `git-receive-pack APP` or `git-upload-pack APP`, the app named by a safe name.
    Git { program: String, app: String },
    /// A platform command whose name `allowed` has, with its arguments.
    Command(Vec<String>),
}

/// Splits `original` like a shell would (but runs no shell) and sorts it into an [`Asked`];
/// anything else is refused.
pub fn parse(original: &str, allowed: &[String]) -> Result<Asked> {
    if original.trim().is_empty() {
        return Ok(Asked::Nothing);
    }
    let argv = shell_words::split(original).map_err(|e| anyhow!("cannot parse the command: {e}"))?;
    match argv.as_slice() {
        [git, path] if git == "git-receive-pack" || git == "git-upload-pack" => {
            Ok(Asked::Git { program: git.clone(), app: app_from_path(path)? })
        }
        [command, ..] if allowed.contains(command) => Ok(Asked::Command(argv)),
        _ => bail!("command not allowed: {original:?}. Allowed: git push/fetch, and {}", allowed.join(", ")),
    }
}

/// `slipway ssh-command KEY`: what sshd runs for every connection. git's requests replace this
/// process with git; a platform command is handed back only when `allowed` (the app commands'
/// names, from their one definition) has it.
pub fn dispatch(data_dir: &Path, caller: &Caller, allowed: &[String]) -> Result<Request> {
    let key = &caller.key;
    let original = std::env::var("SSH_ORIGINAL_COMMAND").unwrap_or_default();
    let (git, app) = match parse(&original, allowed)? {
        Asked::Nothing => {
            eprintln!("Hi {key}! This is slipway: push with `git push slipway@HOST:APP main`, or run `ssh slipway@HOST apps:list`.");
            return Ok(Request::Greeted(1));
        }
        Asked::Command(argv) => return Ok(Request::Command(argv)),
        Asked::Git { program, app } => (program, app),
    };
    let mut state = State::open(data_dir)?;
    if state.app_exists(&app)? {
        caller.check(&state, &Need::App(app.clone()))?;
    } else {
        if git == "git-upload-pack" {
            // A developer is told the same as for an app it may not use.
            caller.check(&state, &Need::App(app.clone()))?;
            bail!("app '{app}' does not exist");
        }
        if !GlobalSettings::load(&state)?.git_auto_create {
            bail!("app '{app}' does not exist; create it with `ssh slipway@HOST apps:create {app}`");
        }
        state.create_app(&app)?;
        state.set_owner(&app, key)?;
        eprintln!("-----> Created app {app}");
    }
    let repo = ensure_repo(data_dir, &app, &std::env::current_exe()?)?;
    // A pack over the cap is refused while it arrives (the export counts the tree).
    let max = GlobalSettings::load(&state)?.max_push_size;
    let err = Command::new("git")
        .arg("-c")
        .arg(format!("receive.maxInputSize={max}"))
        .arg(git.trim_start_matches("git-"))
        .arg(&repo)
        .env("SLIPWAY_PUSHER", key)
        .exec();
    Err(anyhow!("cannot run {git}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_name_apps_and_nothing_else() {
        for p in ["'/myapp.git'", "myapp", "myapp.git", "/myapp", "~/myapp.git"] {
            let p = p.trim_matches('\'');
            assert_eq!(app_from_path(p).unwrap(), "myapp", "{p}");
        }
        for bad in ["../x", "a/b", "/etc/passwd", "My_App", "", "..", "x/../../y"] {
            assert!(app_from_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_lines_are_git_requests_allowed_commands_or_refused() {
        let allowed = vec!["config:set".to_string()];
        assert_eq!(parse("  ", &allowed).unwrap(), Asked::Nothing);
        assert_eq!(
            parse("git-receive-pack '/myapp.git'", &allowed).unwrap(),
            Asked::Git { program: "git-receive-pack".into(), app: "myapp".into() }
        );
        assert_eq!(
            parse("config:set myapp 'A=b c'", &allowed).unwrap(),
            Asked::Command(vec!["config:set".into(), "myapp".into(), "A=b c".into()])
        );
        for bad in ["git-upload-pack '../x'", "ssh-command x", "config:set 'unclosed", "rm -rf /"] {
            assert!(parse(bad, &allowed).is_err(), "{bad}");
        }
    }
}
