//! `apps:clone OLD NEW` (Dokku's): a new app with OLD's config and settings (buildpacks, ports,
//! stack, checks, resource limits; not its domains, which name one app each), its pushed
//! repository copied, and the deploy branch built and deployed as a push would be. When any of
//! it fails, NEW is removed again: nothing is left half made.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::platform::state::State;

/// The settings a clone takes over (by key, or key prefix ending in `.`).
const CLONED_SETTINGS: [&str; 6] = ["buildpacks", "ports", "stack", "checks", "resource.", "storage."];

pub fn clone_app(data_dir: &Path, old: &str, new: &str, owner: Option<&str>, actor: &str) -> Result<i32> {
    let mut state = State::open(data_dir)?;
    state.require_app(old)?;
    crate::platform::names::validate_app_name(new)?;
    if state.app_exists(new)? {
        bail!("app '{new}' already exists: choose another name");
    }
    let from = super::dispatch::repo_path(data_dir, old);
    let branch = state.deploy_branch(old)?.filter(|_| from.is_dir()).with_context(|| {
        format!("app '{old}' has no pushed source to clone: apps:clone builds what was pushed to it")
    })?;
    state.create_app(new)?;
    let made = (|| -> Result<i32> {
        if let Some(owner) = owner {
            state.set_owner(new, owner)?;
        }
        // A link's var names a network the clone is not on: links are made with KIND:link.
        let linked = crate::platform::services::link_vars(&state, old)?;
        let config: crate::engine::envdir::Vars =
            state.config(old)?.into_iter().filter(|(k, _)| !linked.contains(k)).collect();
        let tx = state.transaction()?;
        State::set_config(&tx, new, &config)?;
        tx.commit()?;
        for (key, value) in state.settings_with_prefix(old, "")? {
            // Mounts and limits are host-only settings: an SSH caller's clone does not take them.
            let host_only = key.starts_with("storage.") || key.starts_with("resource.");
            if host_only && owner.is_some() {
                continue;
            }
            if CLONED_SETTINGS.iter().any(|k| key == *k || (k.ends_with('.') && key.starts_with(k))) {
                state.set_setting(new, &key, Some(&value))?;
            }
        }
        state.set_deploy_branch(new, &branch)?;
        let exe = std::env::current_exe()?;
        let repo = super::dispatch::ensure_repo(data_dir, new, &exe)?;
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(["fetch", "--quiet", "--no-tags"])
            .arg(&from)
            .arg(format!("+refs/heads/{branch}:refs/heads/{branch}"))
            .env_remove("GIT_DIR")
            .output()
            .context("cannot run git")?;
        if !out.status.success() {
            bail!("cannot copy {old}'s repository: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        crate::output::header(format!("Cloned {old} into {new}: building {branch}"));
        super::hook::rebuild(data_dir, new, actor)
    })();
    match made {
        Ok(0) => Ok(0),
        other => {
            // Nothing half made: the new app goes (containers, images, repo, state).
            let _ = Command::new(std::env::current_exe()?)
                .arg("--data-dir")
                .arg(data_dir)
                .args(["apps:destroy", new, "--force"])
                .output();
            let _ = std::fs::remove_dir_all(super::dispatch::repo_path(data_dir, new));
            let code = other?;
            crate::output::warn(format!("app '{new}' was not made: its build or deploy failed (see above)"));
            Ok(code)
        }
    }
}
