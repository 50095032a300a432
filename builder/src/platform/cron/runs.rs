//! What the scheduler remembers: each task's last due time, and its runs (trigger, start, end,
//! exit status, output), the newest [`KEEP_RUNS`] per task. A run holds its task's lock (a
//! flock on `locks/cron/APP.ID.lock`, dropped by the kernel when the run's process dies), so
//! a run still "running" in the table whose lock is free was interrupted.

use std::os::unix::io::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{params, OptionalExtension};

use super::CronTask;
use crate::platform::state::State;
use crate::units::now;

/// Runs kept per task.
pub const KEEP_RUNS: i64 = 50;
/// A run's output beyond this is cut (its start is dropped: the end says how it finished).
pub const MAX_OUTPUT: usize = 64 * 1024;

/// How a run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Running,
    /// Its process died before it recorded an end (the daemon or host went down).
    Interrupted,
    Exited(i64),
    /// Not run: why (the previous run still ran), or why it could not start.
    NotRun(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Running => f.write_str("running"),
            Outcome::Interrupted => f.write_str("interrupted"),
            Outcome::Exited(0) => f.write_str("succeeded"),
            Outcome::Exited(code) => write!(f, "failed (exit {code})"),
            Outcome::NotRun(why) => write!(f, "not run: {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    pub job: String,
    pub command: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Outcome,
}

pub fn last_due(state: &State, app: &str, job: &str) -> Result<Option<i64>> {
    Ok(state
        .conn()
        .query_row("SELECT last_due FROM cron_schedule WHERE app = ?1 AND job = ?2", [app, job], |r| r.get(0))
        .optional()?)
}

pub fn set_last_due(state: &State, app: &str, job: &str, at: i64) -> Result<()> {
    state.conn().execute(
        "INSERT INTO cron_schedule (app, job, last_due) VALUES (?1, ?2, ?3)
         ON CONFLICT (app, job) DO UPDATE SET last_due = excluded.last_due",
        params![app, job, at],
    )?;
    Ok(())
}

/// Records that a run of `task` starts; returns its id. Older runs past [`KEEP_RUNS`] go.
pub fn start(state: &State, app: &str, task: &CronTask, trigger: &str) -> Result<i64> {
    let conn = state.conn();
    conn.execute(
        "INSERT INTO cron_runs (app, job, command, trigger, started_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![app, task.id, task.command, trigger, now()],
    )?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "DELETE FROM cron_runs WHERE app = ?1 AND job = ?2 AND id <= ?3 - ?4
         AND id NOT IN (SELECT id FROM cron_runs WHERE app = ?1 AND job = ?2 ORDER BY id DESC LIMIT ?4)",
        params![app, task.id, id, KEEP_RUNS],
    )?;
    Ok(id)
}

/// A run of `task` begins: its lock taken and the run recorded (its id returned). While an
/// earlier run holds the lock, the refusal is recorded and is the error: runs never overlap.
pub fn take_turn(state: &State, app: &str, task: &CronTask, scheduled: bool) -> Result<(TaskLock, i64)> {
    let trigger = if scheduled { "schedule" } else { "manual" };
    let Some(lock) = try_lock(&state.data_dir, app, &task.id)? else {
        let started = runs(state, app, Some(&task.id), 1)?.first().map(|r| super::schedule::format_utc(r.started_at));
        let why = format!("its run started {} still runs", started.unwrap_or_else(|| "earlier".into()));
        let run = start(state, app, task, trigger)?;
        finish(state, run, &Outcome::NotRun(why.clone()), b"")?;
        let whose = if app.is_empty() { "the platform" } else { app };
        anyhow::bail!("cron task {} of {whose} was not started: {why}; runs of a task never overlap", task.id);
    };
    Ok((lock, start(state, app, task, trigger)?))
}

/// Records a scheduled run of `job` that could not start, and why.
pub fn record_not_run(state: &State, app: &str, job: &str, why: &str) -> Result<()> {
    state.conn().execute(
        "INSERT INTO cron_runs (app, job, command, trigger, started_at, finished_at, note)
         VALUES (?1, ?2, '', 'schedule', ?3, ?3, ?4)",
        params![app, job, now(), why],
    )?;
    Ok(())
}

/// Records a run's end: its exit status, or why it did not run; and its output's last
/// [`MAX_OUTPUT`] bytes.
pub fn finish(state: &State, id: i64, outcome: &Outcome, output: &[u8]) -> Result<()> {
    let (status, note) = match outcome {
        Outcome::Exited(code) => (Some(*code), None),
        Outcome::NotRun(why) => (None, Some(why.as_str())),
        Outcome::Running | Outcome::Interrupted => (None, None),
    };
    let tail = &output[output.len().saturating_sub(MAX_OUTPUT)..];
    state.conn().execute(
        "UPDATE cron_runs SET finished_at = ?2, exit_status = ?3, note = ?4, output = ?5 WHERE id = ?1",
        params![id, now(), status, note, String::from_utf8_lossy(tail)],
    )?;
    Ok(())
}

/// `app`'s runs (of `job`, or of every task), newest first, at most `limit`.
pub fn runs(state: &State, app: &str, job: Option<&str>, limit: i64) -> Result<Vec<Run>> {
    let mut stmt = state.conn().prepare(
        "SELECT id, job, command, trigger, started_at, finished_at, exit_status, note FROM cron_runs
         WHERE app = ?1 AND (?2 IS NULL OR job = ?2) ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![app, job, limit], |r| {
        let finished_at: Option<i64> = r.get(5)?;
        let status: Option<i64> = r.get(6)?;
        let note: Option<String> = r.get(7)?;
        let job: String = r.get(1)?;
        let outcome = match (finished_at, status, note) {
            (Some(_), Some(code), _) => Outcome::Exited(code),
            (Some(_), None, note) => Outcome::NotRun(note.unwrap_or_default()),
            (None, _, _) => Outcome::Running,
        };
        Ok(Run {
            id: r.get(0)?,
            job,
            command: r.get(2)?,
            trigger: r.get(3)?,
            started_at: r.get(4)?,
            finished_at,
            outcome,
        })
    })?;
    let mut runs: Vec<Run> = rows.collect::<rusqlite::Result<_>>()?;
    for run in runs.iter_mut().filter(|r| r.outcome == Outcome::Running) {
        if !is_locked(&state.data_dir, app, &run.job)? {
            run.outcome = Outcome::Interrupted;
        }
    }
    Ok(runs)
}

/// A run's recorded output (None: no such run of `app`).
pub fn output(state: &State, app: &str, id: i64) -> Result<Option<String>> {
    Ok(state
        .conn()
        .query_row("SELECT output FROM cron_runs WHERE app = ?1 AND id = ?2", params![app, id], |r| r.get(0))
        .optional()?)
}

/// A task's lock, held while one of its runs runs.
#[derive(Debug)]
pub struct TaskLock {
    _file: std::fs::File,
}

fn lock_file(data_dir: &Path, app: &str, job: &str) -> Result<std::fs::File> {
    let dir = data_dir.join("locks").join("cron");
    // The platform's own tasks are recorded under app "".
    let app = if app.is_empty() { "global" } else { app };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{app}.{job}.lock"));
    Ok(std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?)
}

/// Takes the task's lock; None while another run holds it.
pub fn try_lock(data_dir: &Path, app: &str, job: &str) -> Result<Option<TaskLock>> {
    let file = lock_file(data_dir, app, job)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    Ok(Some(TaskLock { _file: file }))
}

fn is_locked(data_dir: &Path, app: &str, job: &str) -> Result<bool> {
    Ok(try_lock(data_dir, app, job)?.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_recorded_and_a_held_lock_keeps_a_second_run_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        state.create_app("web").unwrap();
        let task = CronTask::new("* * * * *", "echo tick").unwrap();
        let lock = try_lock(dir.path(), "web", &task.id).unwrap().expect("free");
        assert!(try_lock(dir.path(), "web", &task.id).unwrap().is_none(), "held: a second run waits its turn");
        let first = start(&state, "web", &task, "schedule").unwrap();
        assert_eq!(runs(&state, "web", None, 10).unwrap()[0].outcome, Outcome::Running);
        finish(&state, first, &Outcome::Exited(3), b"tick\n").unwrap();
        drop(lock);
        let second = start(&state, "web", &task, "manual").unwrap();
        let listed = runs(&state, "web", Some(&task.id), 10).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].outcome, Outcome::Interrupted, "no one holds its lock");
        assert_eq!(listed[1].outcome, Outcome::Exited(3));
        assert_eq!(output(&state, "web", first).unwrap().as_deref(), Some("tick\n"));
        assert_eq!(output(&state, "other", first).unwrap(), None);
        finish(&state, second, &Outcome::NotRun("the previous run still runs".into()), b"").unwrap();
        assert_eq!(
            runs(&state, "web", None, 1).unwrap()[0].outcome.to_string(),
            "not run: the previous run still runs"
        );
    }

    #[test]
    fn only_the_newest_runs_and_the_end_of_the_output_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        state.create_app("web").unwrap();
        let task = CronTask::new("* * * * *", "yes").unwrap();
        let mut last = 0;
        for _ in 0..KEEP_RUNS + 5 {
            last = start(&state, "web", &task, "schedule").unwrap();
        }
        assert_eq!(runs(&state, "web", None, 1000).unwrap().len() as i64, KEEP_RUNS);
        let mut big = vec![b'a'; MAX_OUTPUT];
        big.extend_from_slice(b"the end");
        finish(&state, last, &Outcome::Exited(0), &big).unwrap();
        let kept = output(&state, "web", last).unwrap().unwrap();
        assert_eq!(kept.len(), MAX_OUTPUT);
        assert!(kept.ends_with("the end"));
        state.destroy_app("web").unwrap();
        assert!(runs(&state, "web", None, 1000).unwrap().is_empty());
    }
}
