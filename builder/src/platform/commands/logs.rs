//! `logs APP` and `run APP CMD`: the processes' output, and one-off containers.

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;

use super::Platform;
use crate::platform::runner::Runner;
use crate::platform::scheduler::{self, Scheduler};

/// `run APP CMD...`: returns the one-off's exit code.
pub async fn run(p: &Platform, app: &str, command: Vec<String>) -> Result<i32> {
    let r = p.runner_for(app).await?;
    let release = r.state.current_release(app)?.with_context(|| format!("app '{app}' has not been deployed yet"))?;
    let env_dir = r.write_env_dir(&release)?;
    // `run APP TYPE [ARGS]` runs the Procfile's TYPE command (Dokku's), its ARGS appended.
    let procfile_command = command.first().and_then(|t| release.process_types.get(t)).filter(|c| !c.trim().is_empty());
    let command = match procfile_command {
        Some(line) => {
            let args: Vec<String> = command[1..].iter().map(|a| shell_words::quote(a).into_owned()).collect();
            release.shell_command([line.as_str(), &args.join(" ")].join(" ").trim_end())
        }
        None => command,
    };
    Ok(r.one_off(&release, command, &env_dir, crate::platform::runner::show_output).await? as i32)
}

/// `logs APP --router [-n N]`: the router's access and error log lines of the app.
pub async fn router_logs(p: &Platform, app: &str, lines: usize) -> Result<()> {
    let r = p.runner_for(app).await?;
    print!("{}", r.router.log_tail(app, lines)?);
    Ok(())
}

/// `logs APP [-t] [-n N] [-p TYPE]`
pub async fn logs(p: &Platform, app: &str, follow: bool, lines: Option<usize>, kind: Option<&str>) -> Result<()> {
    stream_logs(&p.runner_for(app).await?, app, follow, lines, kind).await
}

async fn stream_logs(r: &Runner, app: &str, follow: bool, lines: Option<usize>, kind: Option<&str>) -> Result<()> {
    let tail = lines.map(|n| n.to_string()).unwrap_or_else(|| "100".into());
    let options = || {
        bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .timestamps(true)
            .tail(&tail)
            .build()
    };
    let mut streams = Vec::new();
    if r.running_on(app).await? == Scheduler::Swarm {
        // A service's logs: every task's, on every node.
        for (k, service) in scheduler::swarm::services_of(&r.engine, app).await? {
            if kind.is_some_and(|want| want != k) {
                continue;
            }
            let prefix = format!("{app}[{k}]");
            let id = service.id.unwrap_or_default();
            streams.push(
                r.engine.api.service_logs(&id, Some(options())).map(move |chunk| (prefix.clone(), chunk)).boxed(),
            );
        }
    }
    let containers: Vec<_> =
        r.containers(app).await?.into_iter().filter(|c| kind.is_none_or(|k| c.kind == k)).collect();
    if containers.is_empty() && streams.is_empty() {
        bail!("app '{app}' has no running processes{}", kind.map(|k| format!(" of type {k}")).unwrap_or_default());
    }
    for c in &containers {
        let prefix = format!("{app}[{}.{}]", c.kind, c.index);
        streams.push(r.engine.api.logs(&c.id, Some(options())).map(move |chunk| (prefix.clone(), chunk)).boxed());
    }
    let mut all = futures_util::stream::select_all(streams);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some((prefix, chunk)) = all.next().await {
        let Ok(chunk) = chunk else { continue };
        for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
            let (ts, rest) = line.split_once(' ').unwrap_or(("", line));
            writeln!(out, "{ts} {prefix}: {}", crate::output::printable(rest))?;
        }
        out.flush()?;
    }
    Ok(())
}
