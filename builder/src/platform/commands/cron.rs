//! `cron:*` (Dokku's): app.json's scheduled tasks, their runs and their output. The daemon's
//! scheduler starts scheduled runs through [`run`] too, so every run is recorded and locked the
//! same way (see [`crate::platform::cron`]).

use anyhow::{bail, Context, Result};

use super::{Platform, GLOBAL};
use crate::output;
use crate::platform::cron::runs::{self, Outcome, Run};
use crate::platform::cron::schedule::format_utc;
use crate::platform::cron::{app_tasks, platform_tasks, CronTask};
use crate::platform::state::State;
use crate::units::now;

/// `cron:list APP`: each task with its schedule, command, last run and next run.
pub fn list(p: &Platform, app: &str) -> Result<()> {
    let state = p.state()?;
    let (scope, tasks) = match app {
        GLOBAL => ("", platform_tasks(&state)?),
        _ => {
            state.require_app(app)?;
            (app, app_tasks(&state, app)?.1)
        }
    };
    println!("=== {app} cron tasks (times in UTC)");
    println!("{:<10}  {:<16}  {:<30}  {:<34}  NEXT RUN", "ID", "SCHEDULE", "COMMAND", "LAST RUN");
    for task in &tasks {
        println!(
            "{:<10}  {:<16}  {:<30}  {:<34}  {}",
            task.id,
            task.schedule.to_string(),
            output::printable(&task.command),
            last_run(&state, scope, &task.id)?,
            next_run(task)
        );
    }
    Ok(())
}

pub(super) fn last_run(state: &State, app: &str, job: &str) -> Result<String> {
    Ok(match runs::runs(state, app, Some(job), 1)?.first() {
        Some(run) => format!("{} {}", &format_utc(run.started_at)[5..16], run.outcome),
        None => "-".into(),
    })
}

pub(super) fn next_run(task: &CronTask) -> String {
    task.schedule.next_after(now()).map(|t| format_utc(t)[..16].to_string()).unwrap_or_else(|| "-".into())
}

/// `cron:report [APP]`: how many tasks each app has, its last run and next run.
pub fn report(p: &Platform, app: Option<&str>) -> Result<()> {
    let state = p.state()?;
    let apps = match app {
        Some(app) => {
            state.require_app(app)?;
            vec![app.to_string()]
        }
        None => state.apps()?,
    };
    for app in apps {
        let (_, tasks) = app_tasks(&state, &app)?;
        output::header(format!("{app} cron information"));
        println!("       {:<24}{}", "Cron task count:", tasks.len());
        let last = runs::runs(&state, &app, None, 1)?;
        let last = last.first().map(|r| format!("{} {} {}", r.job, format_utc(r.started_at), r.outcome));
        println!("       {:<24}{}", "Cron last run:", last.unwrap_or_else(|| "-".into()));
        let next = tasks.iter().filter_map(|t| t.schedule.next_after(now()).map(|at| (at, &t.id))).min();
        let next = next.map(|(at, id)| format!("{id} {}", format_utc(at)));
        println!("       {:<24}{}", "Cron next run:", next.unwrap_or_else(|| "-".into()));
    }
    Ok(())
}

/// `cron:runs APP|--global [ID]`: the recorded runs, newest first.
pub fn history(p: &Platform, app: &str, job: Option<&str>) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    println!("=== {app} cron runs (times in UTC)");
    for Run { id, job, command, trigger, started_at, finished_at, outcome } in runs::runs(&state, scope, job, 20)? {
        let took = finished_at.map(|f| format!("{}s", f - started_at)).unwrap_or_else(|| "-".into());
        let when = format_utc(started_at);
        println!("{id:<6} {job:<10} {trigger:<8} {when} {took:<6} {outcome:<16} {}", output::printable(&command));
    }
    Ok(())
}

/// `cron:output APP|--global [RUN]`: a run's output (default: the newest run's).
pub fn run_output(p: &Platform, app: &str, id: Option<i64>) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    let id = match id {
        Some(id) => id,
        None => runs::runs(&state, scope, None, 1)?.first().map(|r| r.id).with_context(|| no_runs(app))?,
    };
    let text = runs::output(&state, scope, id)?.with_context(|| no_runs(app))?;
    print!("{}", output::printable(&text));
    Ok(())
}

fn no_runs(app: &str) -> String {
    format!("app '{app}' has no such cron run; `cron:runs {app}` lists them")
}

/// `cron:run APP ID`: runs a task now, in a one-off container of the current release; its
/// output is shown and recorded. `scheduled`: the daemon's scheduler runs it. A task whose
/// previous run still runs is not started again (recorded as not run, and an error).
pub async fn run(p: &Platform, app: &str, id: &str, scheduled: bool) -> Result<i32> {
    if scheduled && p.caller.is_some() {
        bail!("--scheduled is the daemon's: run `cron:run {app} {id}`");
    }
    if app == GLOBAL {
        return run_platform(p, id, scheduled).await;
    }
    let prepared = async {
        let r = p.runner_for(app).await?;
        let (release, tasks) = app_tasks(&r.state, app)?;
        let release = release.with_context(|| format!("app '{app}' has not been deployed yet"))?;
        let Some(task) = tasks.into_iter().find(|t| t.id == id) else {
            bail!("app '{app}' has no cron task {:?}; `cron:list {app}` lists them", output::printable(id));
        };
        Ok((r, release, task))
    }
    .await;
    let (r, release, task) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            // A scheduled run that cannot start (Docker down, say) is recorded, never lost.
            if scheduled {
                let _ = runs::record_not_run(&p.state()?, app, id, &format!("{e:#}"));
            }
            return Err(e);
        }
    };
    let (_lock, run) = runs::take_turn(&r.state, app, &task, scheduled)?;
    output::header(format!("Running cron task {} of {app} (v{}): {}", task.id, release.version, task.command));
    let mut captured = Vec::new();
    let result = async {
        let env_dir = r.write_env_dir(&release)?;
        r.one_off(&release, task.argv(&release), &env_dir, |bytes, is_err| {
            if !scheduled {
                crate::platform::runner::show_output(bytes, is_err);
            }
            captured.extend_from_slice(bytes);
            if captured.len() > 2 * runs::MAX_OUTPUT {
                captured.drain(..captured.len() - runs::MAX_OUTPUT);
            }
        })
        .await
    }
    .await;
    match result {
        Ok(code) => {
            runs::finish(&r.state, run, &Outcome::Exited(code), &captured)?;
            output::header(format!("Cron task {} of {app} {}", task.id, Outcome::Exited(code)));
            Ok(i32::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            runs::finish(&r.state, run, &Outcome::NotRun(format!("{e:#}")), &captured)?;
            Err(e)
        }
    }
}

/// `cron:due` (the daemon's, once a minute): prints `APP ID` for each task due now (`--global`
/// for the platform's own).
pub fn due(p: &Platform) -> Result<()> {
    for (app, id) in crate::platform::cron::due(&p.state()?, now())? {
        println!("{} {id}", if app.is_empty() { GLOBAL } else { &app });
    }
    Ok(())
}

/// `cron:run --global ID`: a platform task, as a slipway command of its own (its output shown
/// and recorded, as an app's task's is).
async fn run_platform(p: &Platform, id: &str, scheduled: bool) -> Result<i32> {
    let state = p.state()?;
    let Some(task) = platform_tasks(&state)?.into_iter().find(|t| t.id == id) else {
        bail!("there is no platform task {:?}; `cron:list --global` lists them", output::printable(id));
    };
    let (_lock, run) = runs::take_turn(&state, "", &task, scheduled)?;
    output::header(format!("Running platform task {}: {}", task.id, task.command));
    let command = crate::platform::daemon::slipway_command(&p.data_dir, task.command.split_whitespace())?;
    let out = tokio::process::Command::from(command).output().await;
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            runs::finish(&state, run, &Outcome::NotRun(format!("cannot run it: {e}")), b"")?;
            bail!("cannot run {}: {e}", task.command);
        }
    };
    let mut captured = out.stdout.clone();
    captured.extend_from_slice(&out.stderr);
    crate::platform::runner::show_output(&out.stdout, false);
    crate::platform::runner::show_output(&out.stderr, true);
    let code = i64::from(out.status.code().unwrap_or(1));
    runs::finish(&state, run, &Outcome::Exited(code), &captured)?;
    Ok(code as i32)
}
