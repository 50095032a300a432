//! The pushed tree, exported for a build: `git archive` of the revision, counted against the
//! size cap (`max-push-size`) while it is extracted, then its submodules at the commits it
//! records. Submodules are fetched on the host from `https://` URLs only (never `file://`, ssh
//! or a path on this host), each into a fresh directory that is moved into place only when no
//! symlink lies on its path.

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::output;

/// Why a pushed tree is not exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the pushed tree is larger than max-push-size ({limit}); make it smaller, or an admin can raise it with `slipway settings:set max-push-size SIZE`")]
    TooLarge { limit: String },
    #[error("submodule {path}: {url:?} is not an https:// URL; submodules are fetched from https:// only (never file://, ssh or a path on this host)")]
    NotHttps { path: String, url: String },
    #[error("submodule path {path:?} is not a plain relative path inside the app (no '..', '.git', or leading '/')")]
    BadPath { path: String },
    #[error(
        "submodule {path}: {link} is a symlink or a file in the pushed tree; a submodule is never exported through it"
    )]
    InTheWay { path: String, link: String },
    #[error("cannot fetch submodule {path} from {url}: {detail}")]
    Fetch { path: String, url: String, detail: String },
    #[error("submodule {path}: commit {sha} is not in {url}")]
    MissingCommit { path: String, sha: String, url: String },
}

/// Bytes written so far, against the cap.
struct Budget {
    used: u64,
    max: u64,
}

impl Budget {
    fn take(&mut self, bytes: u64) -> Result<(), ExportError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.max {
            return Err(ExportError::TooLarge { limit: output::size(self.max) });
        }
        Ok(())
    }
}

/// `git archive REV | untar` into `dest` (the pushed objects are visible to the hook), stopped
/// as soon as it passes `max_bytes`; then the submodules, counted too.
pub fn export(rev: &str, dest: &Path, max_bytes: u64) -> Result<()> {
    let mut budget = Budget { used: 0, max: max_bytes };
    let mut child = Command::new("git")
        .args(["archive", "--format=tar", rev])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run git archive")?;
    let extracted = extract(child.stdout.take().expect("piped"), dest, &mut budget);
    if extracted.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    extracted?;
    if !status.success() {
        bail!("git archive {rev} failed");
    }
    export_submodules(rev, dest, &mut budget)
}

/// Each entry counts its size and a header's 512 bytes (a tree of many empty files is large too).
fn extract(stream: impl std::io::Read, dest: &Path, budget: &mut Budget) -> Result<()> {
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().context("cannot read git archive's output")? {
        let mut entry = entry.context("cannot read git archive's output")?;
        // The size tar extracts (a pax record's, for files over 8 GiB), not the header's field.
        budget.take(entry.size().saturating_add(512))?;
        entry.unpack_in(dest).context("cannot export the pushed revision")?;
    }
    Ok(())
}

/// A submodule of the pushed tree: where it goes, where from, at which commit.
struct Submodule {
    path: String,
    url: String,
    sha: String,
}

/// `.gitmodules` is read from the pushed commit itself (never from a file that may be a symlink);
/// only gitlinks the tree records are fetched.
fn submodules(rev: &str) -> Result<Vec<Submodule>> {
    let blob = format!("{rev}:.gitmodules");
    if !Command::new("git").args(["cat-file", "-e", &blob]).stderr(Stdio::null()).status()?.success() {
        return Ok(Vec::new());
    }
    let config = Command::new("git")
        .args(["config", "--blob", &blob, "--get-regexp", r"^submodule\..*\.(path|url)$"])
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
    let mut found = Vec::new();
    for (name, path) in paths {
        let Some(url) = urls.remove(&name) else { continue };
        check_path(&path)?;
        let tree = Command::new("git").args(["ls-tree", rev, "--", &path]).output()?;
        let listing = String::from_utf8_lossy(&tree.stdout);
        let Some(sha) = listing.split_whitespace().nth(2).filter(|_| listing.starts_with("160000")) else { continue };
        if !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        check_url(&path, &url)?;
        found.push(Submodule { path, url, sha: sha.to_string() });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

fn check_path(path: &str) -> Result<(), ExportError> {
    let bad = || ExportError::BadPath { path: path.to_string() };
    let p = Path::new(path);
    if path.is_empty() || path.chars().any(char::is_control) {
        return Err(bad());
    }
    for c in p.components() {
        match c {
            Component::Normal(name) if !name.eq_ignore_ascii_case(".git") => {}
            _ => return Err(bad()),
        }
    }
    Ok(())
}

fn check_url(path: &str, url: &str) -> Result<(), ExportError> {
    let https = url.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or("");
        !host.is_empty() && !host.starts_with('-')
    });
    if !https || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ExportError::NotHttps { path: path.to_string(), url: url.to_string() });
    }
    Ok(())
}

/// How long one submodule's fetch may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs a submodule's git command, watching the staging directory: stopped when what it wrote
/// passes the budget's rest, or when it runs past the deadline. Its error is git's last line.
fn run_bounded(
    mut cmd: Command,
    staging: &Path,
    budget: &Budget,
    deadline: std::time::Instant,
) -> Result<Result<(), String>> {
    use wait_timeout::ChildExt;
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().context("cannot run git")?;
    let stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::Read::take(stderr, 64 * 1024), &mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.wait_timeout(std::time::Duration::from_millis(250))? {
            break status;
        }
        let over = budget.used.saturating_add(tree_size(staging)) > budget.max;
        if over || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            if over {
                return Err(ExportError::TooLarge { limit: output::size(budget.max) }.into());
            }
            return Ok(Err(format!("it took over {} s", FETCH_TIMEOUT.as_secs())));
        }
    };
    let text = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(Ok(()));
    }
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("git failed");
    Ok(Err(output::printable(last).chars().take(200).collect()))
}

/// git for a submodule: none of the hook's repository variables, https only, no prompts, and a
/// transfer slower than 1 KB/s for 30 s is given up.
fn git() -> Command {
    let mut c = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_QUARANTINE_PATH",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_INDEX_FILE",
        "GIT_WORK_TREE",
        "GIT_CONFIG_PARAMETERS",
    ] {
        c.env_remove(var);
    }
    c.env("GIT_ALLOW_PROTOCOL", "https").env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
    c.args(["-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=30"]);
    c
}

fn export_submodules(rev: &str, dest: &Path, budget: &mut Budget) -> Result<()> {
    for module in submodules(rev)? {
        let Submodule { path, url, sha } = &module;
        println!("-----> Fetching submodule {path} from {url} at {}", &sha[..sha.len().min(10)]);
        // A fresh directory beside the tree (same filesystem), moved into place when complete.
        let staging = tempfile::Builder::new()
            .prefix(".slipway-submodule-")
            .tempdir_in(dest.parent().unwrap_or(Path::new("/tmp")))?;
        let deadline = std::time::Instant::now() + FETCH_TIMEOUT;
        let fetch_failed = |detail: String| ExportError::Fetch { path: path.clone(), url: url.clone(), detail };
        let mut clone = git();
        clone.args(["clone", "--quiet", "--no-checkout", "--", url]).arg(staging.path());
        run_bounded(clone, staging.path(), budget, deadline)?.map_err(fetch_failed)?;
        let mut checkout = git();
        checkout.arg("-C").arg(staging.path()).args(["checkout", "--quiet", "--detach", sha]);
        if run_bounded(checkout, staging.path(), budget, deadline)?.is_err() {
            return Err(ExportError::MissingCommit { path: path.clone(), sha: sha.clone(), url: url.clone() }.into());
        }
        // Submodules of a submodule: git resolves them inside the fresh clone, https only.
        if std::fs::symlink_metadata(staging.path().join(".gitmodules")).is_ok_and(|m| m.is_file()) {
            let mut nested = git();
            nested.arg("-C").arg(staging.path()).args(["submodule", "update", "--init", "--recursive", "--quiet"]);
            run_bounded(nested, staging.path(), budget, deadline)?.map_err(fetch_failed)?;
        }
        budget.take(tree_size(staging.path()))?;
        // A nested .git is kept (slugs keep nested .git dirs: git dependencies rely on them).
        let target = place(dest, path)?;
        std::fs::rename(staging.path(), &target)
            .with_context(|| format!("cannot move submodule {path} into the tree"))?;
    }
    Ok(())
}

/// The submodule's directory in `dest`: every directory on the way is a real directory (made
/// when missing), none a symlink; an empty directory at the spot itself is replaced.
fn place(dest: &Path, path: &str) -> Result<PathBuf, ExportError> {
    let in_the_way = |at: &Path| ExportError::InTheWay {
        path: path.to_string(),
        link: at.strip_prefix(dest).unwrap_or(at).display().to_string(),
    };
    let mut at = dest.to_path_buf();
    let parts: Vec<_> = Path::new(path).components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&at) {
            Err(_) if last => {}
            Err(_) => std::fs::create_dir(&at).map_err(|_| in_the_way(&at))?,
            Ok(m) if m.is_dir() && !last => {}
            Ok(m) if m.is_dir() => std::fs::remove_dir(&at).map_err(|_| in_the_way(&at))?,
            Ok(_) => return Err(in_the_way(&at)),
        }
    }
    Ok(at)
}

/// Bytes of a directory's files, symlinks not followed.
fn tree_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submodule_paths_and_urls_are_checked() {
        for good in ["vendor/lib", "lib", "a/b/c"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in ["x/../slipway", "/etc", "", "a/.git/hooks", "./a", "a\nb", ".GIT"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_url("l", "https://example.com/lib.git").is_ok());
        for bad in [
            "file:///srv/other.git",
            "../other.git",
            "./x",
            "/srv/repos/other.git",
            "--upload-pack=touch /tmp/x",
            "ssh://host/x",
            "git@host:x",
            "http://example.com/x",
            "https://",
            "https://-oProxyCommand=x/",
            "https://example.com/a b",
        ] {
            assert!(check_url("l", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_submodule_is_never_placed_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let (dest, outside) = (dir.path().join("tree"), dir.path().join("outside"));
        std::fs::create_dir_all(dest.join("empty")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("x")).unwrap();
        std::fs::write(dest.join("file"), "").unwrap();
        assert!(matches!(place(&dest, "x/lib"), Err(ExportError::InTheWay { .. })));
        assert!(matches!(place(&dest, "x"), Err(ExportError::InTheWay { .. })));
        assert!(matches!(place(&dest, "file/lib"), Err(ExportError::InTheWay { .. })));
        assert_eq!(place(&dest, "empty").unwrap(), dest.join("empty"));
        assert!(!dest.join("empty").exists(), "an empty directory makes way");
        assert_eq!(place(&dest, "a/b/lib").unwrap(), dest.join("a/b/lib"));
        assert!(dest.join("a/b").is_dir());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "nothing written outside");
    }

    #[test]
    fn the_budget_stops_at_the_cap() {
        let mut b = Budget { used: 0, max: 1000 };
        assert!(b.take(600).is_ok());
        assert!(matches!(b.take(600), Err(ExportError::TooLarge { .. })));
    }
}
