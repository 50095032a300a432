//! The bare repo's pre-receive hook (`slipway git-hook APP`): exports the pushed revision of
//! the deploy branch (the first branch pushed), records a build, and runs `slipway deploy` as a
//! child whose output it relays line by line (git shows it to the pusher as `remote:` lines as
//! it comes) and keeps as the build's log. A failed build or failed checks make the hook fail,
//! so git rejects the push and the running release keeps serving. Pushes to other branches are
//! accepted with a warning.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::platform::settings::GlobalSettings;
use crate::platform::state::{DeployStatus, State};

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

/// `ps:rebuild APP`: the deploy branch's current revision built again and rolled out with zero
/// downtime, as a push of it would be (a build record, its log, the same checks).
pub fn rebuild(data_dir: &Path, app: &str, actor: &str) -> Result<i32> {
    let state = State::open(data_dir)?;
    state.require_app(app)?;
    let repo = super::dispatch::repo_path(data_dir, app);
    let no_source =
        || format!("app '{app}' has no pushed source to rebuild: git push it, or `slipway deploy` a directory");
    let branch = state.deploy_branch(app)?.filter(|_| repo.is_dir()).with_context(no_source)?;
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(&repo)
        .args(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}^{{commit}}")])
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        anyhow::bail!("{}", no_source());
    }
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // The export reads the app's repo, as the hook's does (git sets GIT_DIR for a hook).
    std::env::set_var("GIT_DIR", &repo);
    std::env::set_var("SLIPWAY_PUSHER", actor);
    deploy_revision(data_dir, &state, app, &rev)
}

fn deploy_revision(data_dir: &Path, state: &State, app: &str, rev: &str) -> Result<i32> {
    // Refuse at once when a deploy of the app runs (the deploy's own lock would too, but only
    // after the export; this is the clear, immediate message).
    // The app's lock names the live deploy, if any (a stored PID could be anyone's by now).
    let running = state.running_deploy(app)?;
    if crate::platform::lock::holder(data_dir, app)?.is_some() {
        let build = running.map(|id| format!(" (build {id})")).unwrap_or_default();
        println!(" !     App '{app}' is being deployed right now{build}; wait for it, or cancel it with `ssh slipway@HOST builds:cancel {app}`.");
        return Ok(1);
    }
    if let Some(id) = running {
        state.finish_deploy(id, None, DeployStatus::Failed, "\n !     interrupted (slipway stopped)\n")?;
    }
    let source = tempfile::Builder::new().prefix("slipway-push-").tempdir()?;
    let max = GlobalSettings::load(state)?.max_push_size;
    if let Err(e) = super::export::export(rev, source.path(), max) {
        println!(" !     {e:#}");
        println!(" !     The push was rejected; the running release keeps serving.");
        return Ok(1);
    }
    let short = &rev[..rev.len().min(10)];
    println!("-----> Building {app} at {short}");
    // The key that pushed (sshd's forced command names it; the dispatcher passes it on).
    let pusher = std::env::var("SLIPWAY_PUSHER").unwrap_or_else(|_| crate::sys::user_name());
    let id = state.start_deploy(app, &pusher)?;
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
    if let Some(still_running) = state.running_deploy(app)? {
        if still_running == id {
            // The deploy died before recording its end (killed, cancelled).
            state.finish_deploy(id, None, DeployStatus::Failed, "\n !     the build was stopped\n")?;
        }
    }
    if code != 0 {
        println!(" !     The push was rejected: the build or deploy failed; the running release keeps serving.");
    }
    Ok(code)
}
