//! Backups: a service's dump ([`super::dump`]) as a file in a host directory,
//! `KIND-NAME-YYYYMMDDTHHMMSSZ.EXT`, written beside its final name and renamed once whole; the
//! newest `keep` stay. A schedule (`KIND:backup-schedule`) is a task of the platform's one
//! scheduler ([`tasks`]), so its runs are recorded like every other; each backup's result is
//! kept with the service (`KIND:info`), a failed one included.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Kind, Service};
use crate::containers::docker::Engine;
use crate::platform::cron::CronTask;
use crate::platform::state::State;

/// Checks a backup directory given on this host: absolute, no `..`, nothing a scheduled task's
/// command line could split or misread.
pub fn check_dir(dir: &str) -> Result<PathBuf> {
    let ok = dir.starts_with('/')
        && !dir.split('/').any(|c| c == "..")
        && !dir.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        bail!("{dir:?} is not a usable backup directory: give an absolute path without spaces or '..'");
    }
    Ok(PathBuf::from(dir))
}

/// Writes a backup of `svc` into `dir` (made when missing), then removes all but the newest
/// `keep` of its backups there; returns the new file.
pub async fn backup(engine: &Engine, svc: &Service, dir: &Path, keep: Option<u32>) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the backup directory {}", dir.display()))?;
    let stamp: String =
        crate::platform::cron::schedule::format_utc(crate::units::now()).chars().filter(char::is_ascii_digit).collect();
    let (prefix, ext) = (format!("{}-{}-", svc.kind.as_str(), svc.name), svc.kind.dump_format().1);
    let name = format!("{prefix}{}T{}Z.{ext}", &stamp[..8], &stamp[8..]);
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&partial);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?
    };
    let mut file = tokio::fs::File::from_std(file);
    let written = super::dump::export_into(engine, svc, &mut file).await;
    let synced = file.sync_all().await;
    if let Err(e) = written.and_then(|()| synced.map_err(Into::into)) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(keep) = keep {
        prune(dir, &prefix, ext, keep as usize)?;
    }
    Ok(path)
}

/// Removes all but the newest `keep` regular files named `PREFIX*.EXT` (their names sort by time).
fn prune(dir: &Path, prefix: &str, ext: &str, keep: usize) -> Result<()> {
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        // Exactly PREFIX + YYYYMMDDTHHMMSSZ + .EXT: service `db`'s never match `db-2`'s.
        let stamp = name.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(&format!(".{ext}")));
        let ours = stamp.is_some_and(|s| {
            s.len() == 16
                && s.as_bytes()[8] == b'T'
                && s.ends_with('Z')
                && s.bytes().enumerate().all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit())
        });
        if is_file && ours {
            found.push(entry.path());
        }
    }
    found.sort();
    let excess = found.len().saturating_sub(keep.max(1));
    for old in &found[..excess] {
        std::fs::remove_file(old).with_context(|| format!("cannot remove the old backup {}", old.display()))?;
    }
    Ok(())
}

/// The scheduler's backup tasks: one per service with a schedule, running `KIND:backup NAME DIR
/// --keep N` (a host command) as the platform's task.
pub fn tasks(state: &State) -> Result<Vec<CronTask>> {
    let mut tasks = Vec::new();
    for kind in Kind::ALL {
        for svc in super::all(state, kind)? {
            let record = svc.require(state)?;
            if let (Some(schedule), Some(dir)) = (&record.backup_schedule, &record.backup_dir) {
                let keep = record.backup_keep.map(|k| format!(" --keep {k}")).unwrap_or_default();
                let command = format!("{}:backup {} {dir}{keep}", kind.as_str(), svc.name);
                tasks.push(CronTask::new(schedule, &command)?);
            }
        }
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_checked_and_old_backups_pruned() {
        assert!(check_dir("/var/backups/db").is_ok());
        for bad in ["backups", "/var/../etc", "/var/my backups", "/x\n"] {
            assert!(check_dir(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        for stamp in ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"] {
            std::fs::write(dir.path().join(format!("postgres-db-{stamp}.dump")), "x").unwrap();
        }
        std::fs::write(dir.path().join("postgres-other-20250101T000000Z.dump"), "x").unwrap();
        // Another service whose name starts the same is not this one's.
        std::fs::write(dir.path().join("postgres-db-2-20250101T000000Z.dump"), "x").unwrap();
        prune(dir.path(), "postgres-db-", "dump", 2).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            [
                "postgres-db-2-20250101T000000Z.dump",
                "postgres-db-20260102T000000Z.dump",
                "postgres-db-20260103T000000Z.dump",
                "postgres-other-20250101T000000Z.dump"
            ]
        );
    }
}
