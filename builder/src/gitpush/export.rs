//! The pushed tree, exported for a build: `git archive` of the revision, then its submodules at
//! the commits it records.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// `git archive REV | untar` into `dest` (the pushed objects are visible to the hook).
pub fn export(rev: &str, dest: &Path) -> Result<()> {
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
