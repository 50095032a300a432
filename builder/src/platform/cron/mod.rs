//! The platform's one scheduler: every scheduled task runs from here, never from a timer of its
//! own: app.json's `cron[]` entries, each a command run in a one-off container of the app's
//! current release, and the platform's own tasks ([`platform_tasks`]: the daily Let's Encrypt
//! renewal, scheduled service backups), each a slipway command, recorded under `--global`.
//!
//! `slipway daemon` asks once a minute which tasks are due ([`due`], in a command of its own
//! that runs as the data dir's owner) and starts each as `cron:run APP ID --scheduled`. Every run
//! is recorded ([`runs`]): trigger, start, end, exit status, output. Runs of one task never
//! overlap: a run takes the task's lock, and one that finds it held is recorded as skipped. Each
//! task remembers the last time it was due; a task whose runs were missed while the daemon was
//! down runs once when it comes back, however many it missed. Times are UTC.

pub mod runs;
pub mod schedule;

use anyhow::{bail, Result};
use sha2::Digest;

pub use schedule::Schedule;

use super::app_json::AppJson;
use super::records::Release;
use super::settings::AppSettings;
use super::state::State;
use crate::output;

/// A task of an app's app.json `cron[]`; its id (Dokku's `cron:run APP ID`) is derived from its
/// schedule and command, so it stays the same across deploys while they do.
#[derive(Debug, Clone, PartialEq)]
pub struct CronTask {
    pub id: String,
    pub schedule: Schedule,
    pub command: String,
}

/// A command of at most this many bytes.
const MAX_COMMAND: usize = 4096;

impl CronTask {
    pub fn new(schedule: &str, command: &str) -> Result<CronTask> {
        let schedule: Schedule = schedule.parse()?;
        let command = command.trim();
        if command.is_empty() {
            bail!("the command is empty");
        }
        if command.len() > MAX_COMMAND || command.chars().any(|c| c.is_control() && c != '\t') {
            bail!("the command must be one line of at most {MAX_COMMAND} bytes");
        }
        let digest = sha2::Sha256::digest(format!("{schedule}\n{command}"));
        let id = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        Ok(CronTask { id, schedule, command: command.to_string() })
    }

    /// The argv of a run in `release`'s image: a Procfile type's command when the command
    /// starts with one (with the rest appended, as Dokku's `run` does), else a shell line.
    pub fn argv(&self, release: &Release) -> Vec<String> {
        let (first, rest) = self.command.split_once([' ', '\t']).unwrap_or((&self.command, ""));
        match release.process_types.get(first).filter(|line| !line.trim().is_empty()) {
            Some(line) => release.shell_command(format!("{line} {rest}").trim_end()),
            None => release.shell_command(&self.command),
        }
    }
}

/// The tasks of `app`'s current release, with it; none before its first deploy.
pub fn app_tasks(state: &State, app: &str) -> Result<(Option<Release>, Vec<CronTask>)> {
    let Some(release) = state.current_release(app)? else { return Ok((None, Vec::new())) };
    let tasks = AppJson::parse(release.app_json.as_deref())?.cron_tasks()?;
    Ok((Some(release), tasks))
}

/// The platform's own tasks: `letsencrypt:auto-renew` every day while an app has Let's Encrypt,
/// and each scheduled service backup (`postgres:backup-schedule`).
pub fn platform_tasks(state: &State) -> Result<Vec<CronTask>> {
    let mut tasks = Vec::new();
    if !super::letsencrypt::enabled_apps(state)?.is_empty() {
        tasks.push(CronTask::new(super::letsencrypt::RENEW_SCHEDULE, "letsencrypt:auto-renew")?);
    }
    tasks.extend(super::services::backup::tasks(state)?);
    Ok(tasks)
}

/// The tasks due at `now` (Unix seconds) as (app, id) (app "" for the platform's own), each once however many of its runs were
/// missed; each one's last due time moves to `now`. A task seen for the first time counts from
/// its release (at most 90 s back: one made by an older slipway does not run at once). Stopped
/// apps' tasks wait until the app is started again.
pub fn due(state: &State, now: i64) -> Result<Vec<(String, String)>> {
    let mut due = Vec::new();
    for app in state.apps()? {
        if AppSettings::is_stopped(state, &app)? {
            continue;
        }
        let (release, tasks) = match app_tasks(state, &app) {
            Ok(found) => found,
            Err(e) => {
                output::warn(format!("{app}: {e:#}"));
                continue;
            }
        };
        let since = release.map(|r| r.created_at).unwrap_or(now).max(now - 90);
        due_of(state, &app, tasks, since, now, &mut due)?;
    }
    due_of(state, "", platform_tasks(state)?, now - 90, now, &mut due)?;
    Ok(due)
}

fn due_of(
    state: &State,
    app: &str,
    tasks: Vec<CronTask>,
    since: i64,
    now: i64,
    due: &mut Vec<(String, String)>,
) -> Result<()> {
    for task in tasks {
        let last = runs::last_due(state, app, &task.id)?;
        if task.schedule.next_after(last.unwrap_or(since)).is_some_and(|t| t <= now) {
            runs::set_last_due(state, app, &task.id, now)?;
            due.push((app.to_string(), task.id));
        } else if last.is_none() {
            runs::set_last_due(state, app, &task.id, since)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::containers::image::BuildKind;
    use crate::platform::records::ReleaseStatus;

    fn release(app: &str, app_json: &str) -> Release {
        Release {
            app: app.into(),
            version: 0,
            image: "img:1".into(),
            slug_digest: None,
            build: BuildKind::Buildpacks("Null".into()),
            process_types: BTreeMap::from([("web".into(), "./web".into())]),
            source_version: None,
            config: BTreeMap::new(),
            description: "Deploy".into(),
            app_json: Some(app_json.into()),
            created_at: 0,
            status: ReleaseStatus::Pending,
            pusher: None,
        }
    }

    fn deploy(state: &mut State, app: &str, app_json: &str) {
        state.create_app(app).unwrap();
        let version = state.add_release(&release(app, app_json)).unwrap();
        state.set_release_status(app, version, ReleaseStatus::Succeeded).unwrap();
    }

    /// A whole minute in 2030: after any release these tests make.
    const T0: i64 = 1_900_000_020;

    fn cron(schedule: &str) -> String {
        format!(r#"{{"cron": [{{"command": "echo tick", "schedule": "{schedule}"}}]}}"#)
    }

    #[test]
    fn a_task_is_due_on_its_minute_and_a_missed_stretch_runs_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        deploy(&mut state, "web", &cron("* * * * *"));
        let id = CronTask::new("* * * * *", "echo tick").unwrap().id;
        // First seen just after T0: it counts from 90 s back, so T0's run is due.
        assert_eq!(due(&state, T0 + 1).unwrap(), [("web".to_string(), id)]);
        assert!(due(&state, T0 + 2).unwrap().is_empty(), "once per minute");
        assert_eq!(due(&state, T0 + 61).unwrap().len(), 1);
        assert!(due(&state, T0 + 62).unwrap().is_empty());
        // The daemon was down for ten minutes: one run, not ten.
        assert_eq!(due(&state, T0 + 661).unwrap().len(), 1);
        assert!(due(&state, T0 + 700).unwrap().is_empty());
        assert_eq!(due(&state, T0 + 721).unwrap().len(), 1);
    }

    #[test]
    fn a_daily_task_waits_for_midnight_and_runs_once_after_days_down() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        deploy(&mut state, "web", &cron("@daily"));
        let midnight = T0 - T0 % 86400 + 86400;
        assert!(due(&state, midnight - 3600).unwrap().is_empty(), "first seen at 23:00: nothing due");
        assert_eq!(due(&state, midnight + 5).unwrap().len(), 1);
        assert!(due(&state, midnight + 3600).unwrap().is_empty());
        assert_eq!(due(&state, midnight + 3 * 86400 + 600).unwrap().len(), 1, "three days down: once");
        assert!(due(&state, midnight + 3 * 86400 + 700).unwrap().is_empty());
    }

    #[test]
    fn stopped_apps_and_apps_without_tasks_have_nothing_due() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        deploy(&mut state, "quiet", "{}");
        deploy(&mut state, "paused", &cron("* * * * *"));
        AppSettings::set_stopped(&state, "paused", true).unwrap();
        assert!(due(&state, T0 + 1).unwrap().is_empty());
        AppSettings::set_stopped(&state, "paused", false).unwrap();
        assert_eq!(due(&state, T0 + 1).unwrap().len(), 1);
    }

    #[test]
    fn tasks_are_checked_and_named_by_schedule_and_command() {
        let a = CronTask::new("@daily", "python manage.py clean").unwrap();
        assert_eq!(a.id.len(), 10);
        assert_eq!(a, CronTask::new("@daily", " python manage.py clean ").unwrap());
        assert_ne!(a.id, CronTask::new("@hourly", "python manage.py clean").unwrap().id);
        assert!(CronTask::new("@daily", "  ").unwrap_err().to_string().contains("empty"));
        assert!(CronTask::new("@daily", "a\nb").is_err());
        let bad = AppJson::parse(Some(r#"{"cron": [{"command": "x", "schedule": "61 * * * *"}]}"#)).unwrap();
        let err = format!("{:#}", bad.cron_tasks().unwrap_err());
        assert!(err.starts_with("app.json cron[0]: minute field \"61\""), "{err}");
    }

    #[test]
    fn a_task_naming_a_process_type_runs_its_command() {
        let mut release = release("web", "{}");
        release.process_types.insert("worker".into(), "python worker.py".into());
        let task = CronTask::new("@daily", "worker --once").unwrap();
        assert_eq!(task.argv(&release).last().unwrap(), "python worker.py --once");
        let task = CronTask::new("@daily", "echo $HOME").unwrap();
        assert_eq!(task.argv(&release).last().unwrap(), "echo $HOME");
    }
}
