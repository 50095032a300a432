//! `slipway report`: what runs and what is down, at a glance: the daemon, the services it keeps
//! running (the router, slipway's sshd, the scheduler), each app's processes against its
//! formation, and the scheduled tasks with their last and next run. Exits 1
//! when something that should run does not.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Platform;
use crate::output;
use crate::platform::daemon::{self, Service};

pub async fn report(p: &Platform, services: &[Box<dyn Service>]) -> Result<i32> {
    let mut down = 0;
    output::header("Platform");
    // The daemon knows its services (root's files); without it, what this user can see.
    let services = match daemon::status(&p.data_dir) {
        Some(daemon::DaemonStatus { pid, since, services }) => {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let up = output::duration(std::time::Duration::from_secs(now.saturating_sub(since)));
            println!("{:<24} running (pid {pid}, up {up})", "daemon");
            services
        }
        None => {
            println!("{:<24} not running (start it as root: slipway daemon)", "daemon");
            services.iter().map(|s| (s.name(), s.running())).collect()
        }
    };
    for (name, running) in services {
        down += usize::from(!running);
        println!("{name:<24} {}", if running { "running" } else { "DOWN" });
    }
    let r = crate::platform::runner::Runner::open(&p.data_dir, p.router_listen.clone()).await?;
    let apps = r.state.apps()?;
    output::header(format!("Apps ({})", apps.len()));
    for app in apps {
        let Some(release) = r.state.current_release(&app)? else {
            println!("{app:<24} not deployed yet");
            continue;
        };
        if crate::platform::settings::AppSettings::is_stopped(&r.state, &app)? {
            println!("{app:<24} v{:<4} stopped (ps:start {app} starts it)", release.version);
            continue;
        }
        let mut running: BTreeMap<String, i64> = BTreeMap::new();
        for c in r.containers(&app).await?.iter().filter(|c| c.running && c.release == release.version) {
            *running.entry(c.kind.clone()).or_default() += 1;
        }
        let mut parts = Vec::new();
        for (kind, wanted) in r.state.formation(&app)? {
            let have = running.get(&kind).copied().unwrap_or(0);
            if have < wanted {
                down += 1;
            }
            let mark = if have < wanted { " DOWN" } else { "" };
            parts.push(format!("{kind}={have}/{wanted}{mark}"));
        }
        println!("{app:<24} v{:<4} {}", release.version, parts.join(" "));
    }
    scheduled(&r.state)?;
    let usage = crate::platform::disk::usage(&r.engine, daemon::docker_files(&p.data_dir)).await?;
    output::header("Disk");
    show_usage(&usage);
    if down > 0 {
        output::warn(format!("{down} part(s) that should run do not (marked DOWN)"));
        return Ok(1);
    }
    Ok(0)
}

/// Each app's cron tasks with their last and next run.
fn scheduled(state: &crate::platform::state::State) -> Result<()> {
    // (scope in the records, what to show, its tasks): each app's, then the platform's own.
    let mut owners = Vec::new();
    for app in state.apps()? {
        if let Ok((_, tasks)) = crate::platform::cron::app_tasks(state, &app) {
            owners.push((app.clone(), app, tasks));
        }
    }
    owners.push((String::new(), super::GLOBAL.to_string(), crate::platform::cron::platform_tasks(state)?));
    let mut lines = Vec::new();
    for (scope, shown, tasks) in owners {
        for task in tasks {
            let last = super::cron::last_run(state, &scope, &task.id)?;
            let next = super::cron::next_run(&task);
            let schedule = task.schedule.to_string();
            lines.push(format!("{shown:<24} {} {schedule:<14} last: {last:<34} next: {next}", task.id));
        }
    }
    output::header(format!("Scheduled tasks ({}, times in UTC)", lines.len()));
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

fn show_usage(u: &crate::platform::disk::Usage) {
    let bytes = |b: Option<u64>| {
        b.map(output::size).unwrap_or_else(|| "unknown (Docker's files are root's: start the daemon)".into())
    };
    println!("{:<24} {} in {} image(s)", "release images", output::size(u.release_images.1), u.release_images.0);
    println!("{:<24} {} in {} image(s)", "stack images", output::size(u.stack_images.1), u.stack_images.0);
    println!("{:<24} {} in {} volume(s)", "build caches", bytes(u.caches.1), u.caches.0);
    println!("{:<24} {}", "container logs", bytes(u.logs));
}

/// `slipway cleanup`: frees what running apps and their rollbacks do not need.
pub async fn cleanup(p: &Platform) -> Result<()> {
    let r = crate::platform::runner::Runner::open(&p.data_dir, p.router_listen.clone()).await?;
    let (before, after) = crate::platform::disk::cleanup(&r).await?;
    let freed =
        (before.release_images.1 + before.stack_images.1).saturating_sub(after.release_images.1 + after.stack_images.1);
    output::header(format!(
        "Cleaned up: {} release image(s) removed, {} freed; images of running releases and the last keep-releases stay",
        before.release_ids.difference(&after.release_ids).count(),
        output::size(freed)
    ));
    show_usage(&after);
    Ok(())
}
