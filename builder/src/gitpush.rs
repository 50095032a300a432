//! `git push slipway main`, end to end.
//!
//! 1. sshd runs the forced command of the pusher's key (`keys.rs`): `slipway ssh-command KEY`.
//!    It reads `SSH_ORIGINAL_COMMAND`, splits it like a shell would (but runs no shell), and
//!    allows only `git-receive-pack 'APP'`, `git-upload-pack 'APP'` and slipway's own app
//!    commands (`ssh slipway@host config:set APP K=V`).
//! 2. The first push of an app creates it (setting `git.auto-create`, on by default) and its bare
//!    repo under the data dir, whose `pre-receive` hook runs `slipway git-hook APP`.
//! 3. The hook exports the pushed revision of the deploy branch (the first branch pushed),
//!    records a build, and runs `slipway deploy` as a child whose output it relays line by line
//!    (git shows it to the pusher as `remote:` lines as it comes) and keeps as the build's log.
//!    A failed build or failed checks make the hook fail, so git rejects the push and the
//!    running release keeps serving. Pushes to other branches are accepted with a warning.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::state::{validate_app_name, State};

/// The app commands a key may run over ssh (besides git's own).
pub const ALLOWED_COMMANDS: &[&str] = &[
    "apps:list",
    "apps:info",
    "apps:create",
    "config:set",
    "config:unset",
    "config:get",
    "config:show",
    "ps:scale",
    "ps:restart",
    "ps:stop",
    "ps:start",
    "ps:report",
    "releases",
    "rollback",
    "logs",
    "run",
    "domains:add",
    "domains:remove",
    "domains:report",
    "checks:disable",
    "checks:enable",
    "checks:skip",
    "builds:list",
    "builds:output",
    "builds:cancel",
];

/// `'/myapp.git'`, `myapp`, `myapp.git`, `~/myapp` all name the app `myapp`; nothing else does.
pub fn app_from_path(path: &str) -> Result<String> {
    let p = path.trim_start_matches("~/").trim_start_matches('/');
    let p = p.strip_suffix(".git").unwrap_or(p);
    if p.contains('/') || p.contains("..") {
        bail!("{path:?} is not an app: push to slipway@HOST:APP");
    }
    validate_app_name(p)?;
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

/// `slipway ssh-command KEY`: what sshd runs for every connection.
pub fn ssh_command(data_dir: &Path, key: &str) -> Result<i32> {
    let original = std::env::var("SSH_ORIGINAL_COMMAND").unwrap_or_default();
    if original.trim().is_empty() {
        eprintln!("Hi {key}! This is slipway: push with `git push slipway@HOST:APP main`, or run `ssh slipway@HOST apps:list`.");
        return Ok(1);
    }
    let argv = shell_words::split(&original).map_err(|e| anyhow!("cannot parse the command: {e}"))?;
    let exe = std::env::current_exe()?;
    match argv.as_slice() {
        [git, path] if git == "git-receive-pack" || git == "git-upload-pack" => {
            let app = app_from_path(path)?;
            let mut state = State::open(data_dir)?;
            if !state.app_exists(&app)? {
                if git == "git-upload-pack" {
                    bail!("app '{app}' does not exist");
                }
                if state.setting("", "git.auto-create")?.as_deref() == Some("false") {
                    bail!("app '{app}' does not exist; create it with `ssh slipway@HOST apps:create {app}`");
                }
                state.create_app(&app)?;
                eprintln!("-----> Created app {app}");
            }
            let repo = ensure_repo(data_dir, &app, &exe)?;
            let err = Command::new(git).arg(&repo).env("SLIPWAY_PUSHER", key).exec();
            Err(anyhow!("cannot run {git}: {err}"))
        }
        [command, ..] if ALLOWED_COMMANDS.contains(&command.as_str()) => {
            let err = Command::new(&exe).arg("--data-dir").arg(data_dir).args(&argv).exec();
            Err(anyhow!("cannot run {command}: {err}"))
        }
        _ => bail!("command not allowed: {original:?}. Allowed: git push/fetch, and {}", ALLOWED_COMMANDS.join(", ")),
    }
}

const ZERO: &str = "0000000000000000000000000000000000000000";

/// The pre-receive hook: reads `OLD NEW REF` lines; deploys the deploy branch's new revision.
pub fn pre_receive(data_dir: &Path, app: &str) -> Result<i32> {
    let state = State::open(data_dir)?;
    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [old, new, reference] = parts.as_slice() {
            updates.push((old.to_string(), new.to_string(), reference.to_string()));
        }
    }
    let mut code = 0;
    for (_old, new, reference) in updates {
        let Some(branch) = reference.strip_prefix("refs/heads/") else { continue };
        let deploy_branch = match state.deploy_branch(app)? {
            Some(b) => b,
            None => {
                state.set_deploy_branch(app, branch)?;
                branch.to_string()
            }
        };
        if branch != deploy_branch {
            println!(" !     Pushed to branch {branch}: nothing was deployed (the deploy branch of {app} is {deploy_branch}).");
            println!(" !     To deploy it: git push slipway {branch}:{deploy_branch}");
            continue;
        }
        if new == ZERO {
            println!(" !     Deleted the deploy branch {branch}; the running release keeps serving.");
            continue;
        }
        code = deploy_revision(data_dir, &state, app, &new)?;
    }
    Ok(code)
}

fn deploy_revision(data_dir: &Path, state: &State, app: &str, rev: &str) -> Result<i32> {
    // Refuse at once when a deploy of the app runs (the deploy's own lock would too, but only
    // after the export; this is the clear, immediate message).
    if let Some((id, Some(pid))) = state.running_deploy(app)? {
        if unsafe { libc::kill(pid as i32, 0) } == 0 {
            println!(" !     App '{app}' is being deployed right now (build {id}); wait for it, or cancel it with `ssh slipway@HOST builds:cancel {app}`.");
            return Ok(1);
        }
        state.finish_deploy(id, None, "failed", "\n !     interrupted (slipway stopped)\n")?;
    }
    let source = tempfile::Builder::new().prefix("slipway-push-").tempdir()?;
    export(rev, source.path())?;
    let short = &rev[..rev.len().min(10)];
    println!("-----> Building {app} at {short}");
    let id = state.start_deploy(app)?;
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("deploy")
        .arg(app)
        .arg(source.path())
        .env("SOURCE_VERSION", rev)
        .env("GIT_REV", rev)
        .env("SLIPWAY_DEPLOY_ID", id.to_string())
        .env("CI", "true") // plain lines, no spinners, for the pusher's terminal
        .env_remove("GIT_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("cannot start the deploy")?;
    state.set_deploy_process(id, child.id(), Some(rev))?;
    // Relay both streams line by line, as they come, and keep them as the build's log.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ]
    .into_iter()
    .map(|stream| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        })
    })
    .collect();
    drop(tx);
    let mut out = std::io::stdout();
    let mut batch = String::new();
    for line in rx {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        batch.push_str(&line);
        batch.push('\n');
        if batch.len() > 4096 {
            state.append_deploy_log(id, &std::mem::take(&mut batch))?;
        }
    }
    for r in readers {
        let _ = r.join();
    }
    state.append_deploy_log(id, &batch)?;
    let status = child.wait()?;
    let code = status.code().unwrap_or(1);
    if let Some((still_running, _)) = state.running_deploy(app)? {
        if still_running == id {
            // The deploy died before recording its end (killed, cancelled).
            state.finish_deploy(id, None, "failed", "\n !     the build was stopped\n")?;
        }
    }
    if code != 0 {
        println!(" !     The push was rejected: the build or deploy failed; the running release keeps serving.");
    }
    Ok(code)
}

/// `git archive REV | untar` into `dest` (the pushed objects are visible to the hook).
fn export(rev: &str, dest: &Path) -> Result<()> {
    let mut child = Command::new("git")
        .args(["archive", "--format=tar", rev])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run git archive")?;
    let mut archive = tar::Archive::new(child.stdout.take().expect("piped"));
    archive.unpack(dest).context("cannot export the pushed revision")?;
    if !child.wait()?.success() {
        bail!("git archive {rev} failed");
    }
    export_submodules(rev, dest)
}

/// `git archive` leaves submodules out: each gitlink of the pushed tree is cloned from its
/// `.gitmodules` URL (relative URLs resolve against the app's repo) at the recorded commit.
fn export_submodules(rev: &str, dest: &Path) -> Result<()> {
    let modules = dest.join(".gitmodules");
    if !modules.is_file() {
        return Ok(());
    }
    let config = Command::new("git")
        .args(["config", "--file"])
        .arg(&modules)
        .args(["--get-regexp", r"^submodule\..*\.(path|url)$"])
        .output()?;
    let text = String::from_utf8_lossy(&config.stdout);
    let mut paths = std::collections::BTreeMap::new();
    let mut urls = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else { continue };
        let name = key.trim_start_matches("submodule.");
        if let Some(n) = name.strip_suffix(".path") {
            paths.insert(n.to_string(), value.to_string());
        } else if let Some(n) = name.strip_suffix(".url") {
            urls.insert(n.to_string(), value.to_string());
        }
    }
    let repo = std::env::var("GIT_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("."));
    let repo = repo.canonicalize().unwrap_or(repo);
    for (name, path) in &paths {
        let Some(url) = urls.get(name) else { continue };
        // The commit the pushed tree records for this path.
        let tree = Command::new("git").args(["ls-tree", rev, "--", path]).output()?;
        let listing = String::from_utf8_lossy(&tree.stdout);
        let Some(sha) = listing.split_whitespace().nth(2).filter(|_| listing.starts_with("160000")) else { continue };
        let url = if url.starts_with("../") || url.starts_with("./") {
            repo.join(url).to_string_lossy().into_owned()
        } else {
            url.clone()
        };
        println!("-----> Fetching submodule {path} from {url} at {}", &sha[..sha.len().min(10)]);
        let target = dest.join(path);
        let _ = std::fs::remove_dir_all(&target);
        let clean = |c: &mut Command| {
            for var in [
                "GIT_DIR",
                "GIT_QUARANTINE_PATH",
                "GIT_OBJECT_DIRECTORY",
                "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                "GIT_INDEX_FILE",
                "GIT_WORK_TREE",
            ] {
                c.env_remove(var);
            }
        };
        let mut clone = Command::new("git");
        clean(&mut clone);
        let out = clone.args(["clone", "--quiet", &url]).arg(&target).env("GIT_TERMINAL_PROMPT", "0").output()?;
        if !out.status.success() {
            bail!("cannot fetch submodule {path} from {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let mut checkout = Command::new("git");
        clean(&mut checkout);
        let out = checkout.arg("-C").arg(&target).args(["checkout", "--quiet", sha]).output()?;
        if !out.status.success() {
            bail!("submodule {path}: commit {sha} is not in {url}");
        }
        // A nested .git is kept (slugs keep nested .git dirs: git dependencies rely on them).
        export_nested(&target)?;
    }
    Ok(())
}

/// Submodules of a submodule.
fn export_nested(dir: &Path) -> Result<()> {
    if dir.join(".gitmodules").is_file() {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["submodule", "update", "--init", "--recursive", "--quiet"])
            .env_remove("GIT_DIR")
            .output()?;
        if !out.status.success() {
            bail!("submodules of {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    Ok(())
}

/// `builds:cancel APP`: stops the running build; its push is rejected.
pub fn cancel(state: &State, app: &str) -> Result<()> {
    let Some((id, Some(pid))) = state.running_deploy(app)? else {
        bail!("app '{app}' has no build running");
    };
    // The deploy runs in its own process group: stop all of it (the container build is
    // removed by the deploy's own signal handling).
    if unsafe { libc::kill(-(pid as i32), libc::SIGTERM) } != 0 {
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    crate::output::header(format!("Cancelling build {id} of {app}"));
    Ok(())
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
}
