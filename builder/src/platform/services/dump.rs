//! A service's data as one file, out and in: pg_dump's custom format for Postgres (restored
//! with pg_restore into the service's database), an RDB snapshot for Redis (swapped in while
//! the server is stopped; its start script loads it and writes a new append-only file).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{container, Kind, Service};
use crate::containers::docker::{Engine, TarStream};
use crate::containers::exec::Stdio;

/// The command that writes the service's dump to standard output, and the user it runs as.
pub fn export_command(svc: &Service) -> (Vec<String>, Option<&'static str>) {
    match svc.kind {
        Kind::Postgres => {
            (vec!["pg_dump".into(), "-Fc".into(), "-U".into(), "postgres".into(), svc.database()], Some("postgres"))
        }
        // redis-cli --rdb to a file (to standard output it leaves the transfer's end marker in).
        Kind::Redis => (
            vec![
                "sh".into(),
                "-c".into(),
                "f=$(mktemp /tmp/slipway-export.XXXXXX); out=$(REDISCLI_AUTH=$(cat /run/slipway/password) redis-cli --rdb $f 2>&1) \
                 || { echo \"$out\" >&2; rm -f $f; exit 1; }; cat $f; s=$?; rm -f $f; exit $s"
                    .into(),
            ],
            None,
        ),
    }
}

/// Writes the service's dump to `into`.
pub async fn export_into(
    engine: &Engine,
    svc: &Service,
    into: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<()> {
    let (cmd, user) = export_command(svc);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let (code, err) = engine.exec_into(&svc.container(), &cmd, user, into).await?;
    if code != 0 {
        bail!("{} failed (exit status {code}): {}", cmd[0], err.trim());
    }
    Ok(())
}

/// `KIND:import`: standard input (a dump `KIND:export` wrote) replaces the service's data.
pub async fn import_stdin(engine: &Engine, svc: &Service, data_dir: &Path) -> Result<()> {
    match svc.kind {
        Kind::Postgres => {
            let db = svc.database();
            let cmd = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-acl", "-U", "postgres", "-d", &db];
            let code = engine.exec_stdio(&svc.container(), &cmd, Some("postgres"), Stdio::Piped).await?;
            if code != 0 {
                bail!("pg_restore failed (exit status {code}); its messages are above");
            }
            Ok(())
        }
        Kind::Redis => import_rdb(engine, svc, data_dir).await,
    }
}

/// The most an RDB import may hold.
const MAX_RDB: u64 = 8 << 30;

async fn import_rdb(engine: &Engine, svc: &Service, data_dir: &Path) -> Result<()> {
    // Read all of it first: the server is stopped only once the file is whole and looks right.
    let spool = tempfile::Builder::new().prefix("slipway-import-").tempfile_in(svc.dir(data_dir))?;
    let copied = tokio::task::spawn_blocking({
        let mut file = spool.reopen()?;
        move || std::io::copy(&mut std::io::stdin().lock().take(MAX_RDB + 1), &mut file)
    })
    .await??;
    if copied > MAX_RDB {
        bail!("standard input holds more than 8 GiB: nothing was imported");
    }
    let mut magic = [0u8; 5];
    let looks_right = spool.reopen()?.read_exact(&mut magic).is_ok() && &magic == b"REDIS";
    if !looks_right {
        bail!("standard input is not an RDB file (`redis:export` writes one): nothing was imported");
    }
    let record = svc.require(&crate::platform::state::State::open(data_dir)?)?;
    container::stop(engine, svc).await;
    let path = spool.path().to_path_buf();
    let tar = TarStream::new(move |b| {
        let mut header = tar::Header::new_gnu();
        header.set_size(std::fs::metadata(&path)?.len());
        header.set_mode(0o600);
        header.set_cksum();
        b.append_data(&mut header, "import.rdb", std::fs::File::open(&path)?)?;
        Ok(())
    });
    let uploaded = engine.upload(&svc.container(), svc.kind.data_path(), tar, false).await;
    // Started again either way: a failed upload leaves the data as it was.
    container::up(engine, svc, &record, data_dir).await.context("the server did not come back")?;
    uploaded
}
