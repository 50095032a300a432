//! `postgres:*` and `redis:*` (dokku-postgres' and dokku-redis' commands, the same set for
//! each kind): backing services and the apps linked to them (see [`crate::platform::services`]).

use anyhow::{bail, Context, Result};

use super::Platform;
use crate::containers::docker::Engine;
use crate::containers::exec::Stdio;
use crate::engine::envdir::Vars;
use crate::output;
use crate::platform::services::{self, backup, container, dump, Kind, Record, Service};
use crate::platform::state::State;

/// `KIND:create NAME [--memory SIZE]`: its password, volume, network and container, started.
/// When any of it fails, nothing of it is left.
pub async fn create(p: &Platform, svc: &Service, memory: Option<&str>) -> Result<()> {
    let memory = memory.map(crate::units::parse_size).transpose()?;
    let state = p.state()?;
    if svc.exists(&state)? {
        bail!("the {} already exists; `{}:info {}` shows it", svc.label(), svc.kind.as_str(), svc.name);
    }
    let engine = Engine::connect().await?;
    svc.insert(&state, p.caller.as_ref().map(|c| c.key.as_str()), memory)?;
    let made = async {
        let dir = svc.dir(&p.data_dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        crate::engine::fsutil::write_private(&svc.password_file(&p.data_dir), services::new_password()?.as_bytes())?;
        container::up(&engine, svc, &svc.require(&state)?, &p.data_dir).await
    }
    .await;
    if let Err(e) = made {
        let _ = container::remove(&engine, svc).await;
        let _ = std::fs::remove_dir_all(svc.dir(&p.data_dir));
        svc.delete(&state)?;
        return Err(e.context(format!("the {} was not created", svc.label())));
    }
    output::header(format!("{} container created: {}", svc.kind.title(), svc.name));
    info(p, svc).await
}

/// `KIND:list`: each service (a developer key: those it made or its apps link to).
pub async fn list(p: &Platform, kind: Kind) -> Result<()> {
    let state = p.state()?;
    let engine = Engine::connect().await?;
    println!("=== {} services", kind.title());
    println!("{:<24} {:<12} {:<16} LINKS", "NAME", "STATUS", "EXPOSED");
    for svc in services::all(&state, kind)? {
        if let Some(caller) = &p.caller {
            if caller.check(&state, &crate::platform::access::Need::Service(svc.clone())).is_err() {
                continue;
            }
        }
        let record = svc.require(&state)?;
        let links: Vec<String> = svc.links(&state)?.into_iter().map(|l| l.app).collect();
        let exposed = record.exposed_port.map(|p| format!("127.0.0.1:{p}")).unwrap_or_else(|| "-".into());
        let links = if links.is_empty() { "-".into() } else { links.join(", ") };
        println!("{:<24} {:<12} {exposed:<16} {links}", svc.name, container::status(&engine, &svc).await);
    }
    Ok(())
}

/// `KIND:info NAME`: status, version, volume, links, URL (password masked), backups.
pub async fn info(p: &Platform, svc: &Service) -> Result<()> {
    let state = p.state()?;
    let record = svc.require(&state)?;
    let engine = Engine::connect().await?;
    let links: Vec<String> = svc.links(&state)?.into_iter().map(|l| format!("{} ({})", l.app, l.var)).collect();
    let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let backup_schedule = record.backup_schedule.as_ref().map(|s| {
        let keep = record.backup_keep.map(|k| format!(", keep {k}")).unwrap_or_default();
        format!("{s} into {}{keep}", record.backup_dir.as_deref().unwrap_or("-"))
    });
    let last_backup = record.last_backup.as_ref().map(|r| {
        let at = crate::platform::cron::schedule::format_utc(record.last_backup_at.unwrap_or(0));
        format!("{at}: {r}")
    });
    output::header(format!("{} {} service information", svc.name, svc.kind.as_str()));
    let rows = [
        ("Status", container::status(&engine, svc).await),
        ("Created", crate::platform::cron::schedule::format_utc(record.created_at)),
        ("Version", show(container::version(&engine, svc).await)),
        ("Container", svc.container()),
        ("Network", format!("{} (internal)", svc.network())),
        ("Data volume", svc.volume()),
        ("Dsn", svc.url("********")),
        ("Exposed", show(record.exposed_port.map(|p| format!("127.0.0.1:{p}")))),
        ("Memory limit", show(record.memory.map(output::size))),
        ("Links", if links.is_empty() { "-".into() } else { links.join(", ") }),
        ("Backup schedule", show(backup_schedule)),
        ("Last backup", show(last_backup)),
    ];
    for (key, value) in rows {
        println!("       {:<20}{value}", format!("{key}:"));
    }
    Ok(())
}

/// `KIND:link NAME APP [--alias VAR]`: the app gets the service's URL in VAR (default
/// DATABASE_URL / REDIS_URL) and joins its network, as a new release with its processes
/// restarted. When the release fails, the link and the var are as they were.
pub async fn link(p: &Platform, svc: &Service, app: &str, alias: Option<&str>) -> Result<()> {
    let state = p.state()?;
    svc.require(&state)?;
    state.require_app(app)?;
    let var = alias.unwrap_or(svc.kind.default_var()).to_string();
    crate::engine::envdir::parse_assignment(&format!("{var}=x"))
        .map_err(|_| anyhow::anyhow!("{var:?} is not a valid config var name (--alias)"))?;
    if svc.links(&state)?.iter().any(|l| l.app == app) {
        bail!("the {} is already linked to {app}", svc.label());
    }
    if state.config(app)?.contains_key(&var) {
        bail!("{app} already has {var}: unset it, or link with --alias NAME_URL");
    }
    let url = svc.url(&svc.password(&p.data_dir)?);
    let description = format!("Link {} {}", svc.kind.as_str(), svc.name);
    let linked = super::config::change(p, app, std::slice::from_ref(&var), false, &description, |tx, scope| {
        svc.link(tx, scope, &var)?;
        State::set_config(tx, scope, &Vars::from([(var.clone(), url)]))
    })
    .await;
    if let Err(e) = linked {
        let mut state = p.state()?;
        let tx = state.transaction()?;
        svc.unlink(&tx, app)?;
        tx.commit()?;
        return Err(e);
    }
    output::header(format!("Linked the {} to {app} as {var}", svc.label()));
    Ok(())
}

/// `KIND:unlink NAME APP`: the var goes and the app leaves the network, as a new release.
pub async fn unlink(p: &Platform, svc: &Service, app: &str) -> Result<()> {
    let state = p.state()?;
    svc.require(&state)?;
    state.require_app(app)?;
    let Some(link) = svc.links(&state)?.into_iter().find(|l| l.app == app) else {
        bail!("the {} is not linked to {app}", svc.label());
    };
    let description = format!("Unlink {} {}", svc.kind.as_str(), svc.name);
    let var = link.var.clone();
    let unlinked = super::config::change(p, app, std::slice::from_ref(&var), false, &description, |tx, scope| {
        svc.unlink(tx, scope)?;
        State::unset_config(tx, scope, std::slice::from_ref(&var))
    })
    .await;
    if let Err(e) = unlinked {
        let mut state = p.state()?;
        if !svc.links(&state)?.iter().any(|l| l.app == app) {
            let tx = state.transaction()?;
            svc.link(&tx, app, &link.var)?;
            tx.commit()?;
        }
        return Err(e);
    }
    output::header(format!("Unlinked the {} from {app}", svc.label()));
    Ok(())
}

/// `KIND:restart NAME`: a new container on the same data.
pub async fn restart(p: &Platform, svc: &Service) -> Result<()> {
    let record = svc.require(&p.state()?)?;
    container::recreate(&Engine::connect().await?, svc, &record, &p.data_dir).await?;
    output::header(format!("Restarted the {}", svc.label()));
    Ok(())
}

/// `KIND:expose NAME PORT` / `KIND:unexpose NAME`: published on 127.0.0.1:PORT, or not.
pub async fn expose(p: &Platform, svc: &Service, port: Option<u16>) -> Result<()> {
    let state = p.state()?;
    let before = svc.require(&state)?;
    if port == Some(0) {
        bail!("the port must be between 1 and 65535");
    }
    svc.set_exposed(&state, port)?;
    let record = svc.require(&state)?;
    let engine = Engine::connect().await?;
    if let Err(e) = container::recreate(&engine, svc, &record, &p.data_dir).await {
        svc.set_exposed(&state, before.exposed_port)?;
        let _ = container::recreate(&engine, svc, &before, &p.data_dir).await;
        return Err(e.context("it was not changed"));
    }
    match port {
        Some(port) => output::header(format!("The {} is exposed on 127.0.0.1:{port}", svc.label())),
        None => output::header(format!("The {} is no longer exposed", svc.label())),
    }
    Ok(())
}

/// `KIND:logs NAME [-t]`
pub async fn logs(p: &Platform, svc: &Service, follow: bool, lines: usize) -> Result<()> {
    use futures_util::StreamExt;
    use std::io::Write;
    svc.require(&p.state()?)?;
    let engine = Engine::connect().await?;
    let tail = lines.to_string();
    let opts = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail)
        .build();
    let mut logs = engine.api.logs(&svc.container(), Some(opts));
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = logs.next().await {
        let chunk = chunk.with_context(|| format!("cannot read the logs of {}", svc.container()))?;
        out.write_all(output::printable(&String::from_utf8_lossy(&chunk.into_bytes())).as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

/// `KIND:connect NAME`: psql or redis-cli; interactive on a terminal, else it reads standard input.
pub async fn connect(p: &Platform, svc: &Service) -> Result<i32> {
    svc.require(&p.state()?)?;
    let engine = Engine::connect().await?;
    let db = svc.database();
    let (cmd, user): (Vec<&str>, _) = match svc.kind {
        Kind::Postgres => (vec!["psql", "-U", "postgres", "-d", &db], Some("postgres")),
        Kind::Redis => (vec!["sh", "-c", "REDISCLI_AUTH=$(cat /run/slipway/password) exec redis-cli"], None),
    };
    Ok(engine.exec_stdio(&svc.container(), &cmd, user, Stdio::for_interactive()).await? as i32)
}

/// `KIND:export NAME > FILE`: the dump on standard output (never to a terminal).
pub async fn export(p: &Platform, svc: &Service) -> Result<()> {
    svc.require(&p.state()?)?;
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!(
            "{} export writes binary data: redirect it to a file (`> {}.{}`)",
            svc.kind.as_str(),
            svc.name,
            svc.kind.dump_format().1
        );
    }
    let engine = Engine::connect().await?;
    dump::export_into(&engine, svc, &mut tokio::io::stdout()).await
}

/// `KIND:import NAME < FILE`: standard input replaces the service's data.
pub async fn import(p: &Platform, svc: &Service) -> Result<()> {
    svc.require(&p.state()?)?;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "{} import reads a dump from standard input: `< FILE` (written by {}:export)",
            svc.kind.as_str(),
            svc.kind.as_str()
        );
    }
    let engine = Engine::connect().await?;
    dump::import_stdin(&engine, svc, &p.data_dir).await?;
    output::header(format!("Imported into the {}", svc.label()));
    Ok(())
}

/// `KIND:backup NAME DIR [--keep N]` (on this host): a dump file in DIR; its result, failed or
/// not, is kept for `KIND:info`.
pub async fn backup(p: &Platform, svc: &Service, dir: &str, keep: Option<u32>) -> Result<()> {
    let state = p.state()?;
    svc.require(&state)?;
    let dir = backup::check_dir(dir)?;
    let made = async { backup::backup(&Engine::connect().await?, svc, &dir, keep).await }.await;
    match made {
        Ok(file) => {
            svc.set_last_backup(&state, &format!("ok {}", file.display()))?;
            output::header(format!("Backed up the {} to {}", svc.label(), file.display()));
            Ok(())
        }
        Err(e) => {
            svc.set_last_backup(&state, &format!("failed: {e:#}"))?;
            Err(e.context(format!("the backup of the {} failed", svc.label())))
        }
    }
}

/// `KIND:backup-schedule NAME "CRON" DIR [--keep N]` (on this host): backups on a schedule, by
/// the daemon's scheduler (`cron:list --global`).
pub fn backup_schedule(p: &Platform, svc: &Service, schedule: &str, dir: &str, keep: Option<u32>) -> Result<()> {
    let state = p.state()?;
    svc.require(&state)?;
    let parsed: crate::platform::cron::Schedule = schedule.parse()?;
    let dir_path = backup::check_dir(dir)?;
    if keep == Some(0) {
        bail!("--keep must be at least 1");
    }
    std::fs::create_dir_all(&dir_path).with_context(|| format!("cannot create the backup directory {dir}"))?;
    let probe = dir_path.join(".slipway-write-test");
    std::fs::write(&probe, b"").with_context(|| format!("slipway cannot write into {dir}"))?;
    let _ = std::fs::remove_file(&probe);
    let schedule = parsed.to_string();
    svc.set_backup_schedule(&state, Some((&schedule, dir, keep.unwrap_or(7))))?;
    output::header(format!("Backups of the {} run at \"{schedule}\" (UTC) into {dir}", svc.label()));
    Ok(())
}

/// `KIND:backup-unschedule NAME`
pub fn backup_unschedule(p: &Platform, svc: &Service) -> Result<()> {
    let state = p.state()?;
    svc.require(&state)?;
    svc.set_backup_schedule(&state, None)?;
    output::header(format!("No more scheduled backups of the {}", svc.label()));
    Ok(())
}

/// `KIND:destroy NAME --force`: refused while an app links to it; the data goes with it.
pub async fn destroy(p: &Platform, svc: &Service, force: bool) -> Result<()> {
    let state = p.state()?;
    svc.require(&state)?;
    let links = svc.links(&state)?;
    if !links.is_empty() {
        let apps: Vec<String> = links.into_iter().map(|l| l.app).collect();
        bail!(
            "the {} is linked to {}: unlink it first (`{}:unlink {} APP`)",
            svc.label(),
            apps.join(", "),
            svc.kind.as_str(),
            svc.name
        );
    }
    if !force {
        bail!("destroying the {} deletes its data: run it again with --force", svc.label());
    }
    container::remove(&Engine::connect().await?, svc).await?;
    let _ = std::fs::remove_dir_all(svc.dir(&p.data_dir));
    svc.delete(&state)?;
    output::header(format!("Deleted the {}", svc.label()));
    Ok(())
}

/// At `ps:restore --all`: every service's container runs again (before the apps that use them).
pub async fn restore_all(p: &Platform) -> Vec<String> {
    let mut failed = Vec::new();
    let Ok(state) = p.state() else { return vec!["the state".into()] };
    let engine = match Engine::connect().await {
        Ok(engine) => engine,
        Err(_) => return vec!["services (no Docker engine)".into()],
    };
    for kind in Kind::ALL {
        for svc in services::all(&state, kind).unwrap_or_default() {
            let record: Record = svc.require(&state).unwrap_or_default();
            match container::up(&engine, &svc, &record, &p.data_dir).await {
                Ok(()) => output::header(format!("{}: running", svc.label())),
                Err(e) => {
                    output::warn(format!("the {} was not restored: {e:#}", svc.label()));
                    failed.push(svc.label());
                }
            }
        }
    }
    failed
}
