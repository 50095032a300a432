//! Backing services with the real engine: a Python app (psycopg and redis from PyPI) linked to
//! a Postgres and a Redis service writes and reads a row and a key; the data survives a
//! redeploy, `KIND:restart`, a killed container and a simulated reboot (dockerd restarted, then
//! `ps:restore --all`); export/import and a scheduled backup bring it back in other services;
//! destroy is refused while linked; unlink removes the var as a new release. It restarts dockerd,
//! so it is a test binary of its own.

#[path = "common/mod.rs"]
mod common;
use common::platform::*;
use common::*;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Removes the services' containers, volumes and networks, whatever happened.
struct Services(Vec<String>);

impl Drop for Services {
    fn drop(&mut self) {
        for name in &self.0 {
            docker(&["rm", "-f", name]);
            docker(&["volume", "rm", &format!("{name}-data")]);
            docker(&["network", "rm", name]);
            docker(&["network", "rm", &format!("{name}-publish")]);
        }
    }
}

/// GET PATH through the router with the app's host name: (status, body).
fn get(p: &Platform, app: &str, path: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "15", "-o", "-", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Host: {app}.slipway.test"))
        .arg(format!("http://127.0.0.1:{}{path}", p.port))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.trim().to_string())
}

/// `/read` until it says `want` (services coming back take a moment), at most 90 s.
fn read_until(p: &Platform, app: &str, want: &str, after: &str) {
    let started = Instant::now();
    loop {
        let got = get(p, app, "/read");
        if got == (200, want.to_string()) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "after {after}: /read says {got:?}, not {want:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `slipway ARGS` with `input` on standard input; its output.
fn with_stdin(p: &Platform, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = p.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn linked_postgres_and_redis_keep_their_data_and_restore_elsewhere() {
    require_root("it restarts the Docker daemon");
    let id = std::process::id();
    let (db, cache, db2, cache2) =
        (format!("db{id}"), format!("cache{id}"), format!("db{id}-copy"), format!("cache{id}-copy"));
    // Dropped after the platform (its apps' containers leave the services' networks first).
    let _cleanup = Services(vec![
        format!("slipway-postgres-{db}"),
        format!("slipway-redis-{cache}"),
        format!("slipway-postgres-{db2}"),
        format!("slipway-redis-{cache2}"),
    ]);
    let mut p = Platform::new();
    let app = "t-svc-app";
    p.create(app);
    let source = fixture("services/python-pg-redis");
    p.ok(&["deploy", app, source.to_str().unwrap()]);
    let info = p.ok(&["postgres:create", &db]);
    assert!(info.contains("Status:             running") && info.contains(":********@"), "{info}");
    p.ok(&["redis:create", &cache]);
    assert!(docker(&["port", &format!("slipway-postgres-{db}")]).is_empty(), "never published unless exposed");

    // Linking makes a release each, with the var set and the processes restarted.
    let releases = p.ok(&["releases", app]).lines().count();
    p.ok(&["postgres:link", &db, app]);
    p.ok(&["redis:link", &cache, app]);
    assert_eq!(p.ok(&["releases", app]).lines().count(), releases + 2);
    let config = p.ok(&["config:show", app]);
    assert!(config.contains(&format!("@slipway-postgres-{db}:5432/{db}")), "{config}");
    assert!(config.contains(&format!("@slipway-redis-{cache}:6379")), "{config}");
    let password = std::fs::metadata(p.data.path().join(format!("services/postgres/{db}/password"))).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&password.permissions()) & 0o777, 0o600);
    assert_eq!(get(&p, app, "/write/first"), (200, "wrote first".to_string()));
    read_until(&p, app, "db=first redis=first", "writing");

    // Kept across a redeploy, restarts, a killed container and a reboot.
    p.ok(&["deploy", app, source.to_str().unwrap()]);
    read_until(&p, app, "db=first redis=first", "a redeploy");
    p.ok(&["postgres:restart", &db]);
    p.ok(&["redis:restart", &cache]);
    read_until(&p, app, "db=first redis=first", "KIND:restart");
    // Killed as the kernel's OOM killer would (SIGKILL from outside, not `docker stop`): the
    // containers' restart policy brings them back.
    for name in [format!("slipway-postgres-{db}"), format!("slipway-redis-{cache}")] {
        let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &name]);
        assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success(), "{name}: {pid}");
    }
    read_until(&p, app, "db=first redis=first", "killing the containers (restarted on failure)");
    restart_docker();
    let restored = p.ok(&["ps:restore", "--all"]);
    assert!(restored.contains(&format!("Postgres service {db}: running")), "{restored}");
    read_until(&p, app, "db=first redis=first", "a reboot and ps:restore");

    // Export one, import into another: the row and the key come back.
    let dump = p.slipway(&["postgres:export", &db]);
    assert!(dump.status.success() && dump.stdout.starts_with(b"PGDMP"), "{}", text(&dump));
    p.ok(&["postgres:create", &db2]);
    let imported = with_stdin(&p, &["postgres:import", &db2], &dump.stdout);
    assert!(imported.status.success(), "{}", text(&imported));
    let rows = with_stdin(&p, &["postgres:connect", &db2], b"SELECT v FROM notes;\n");
    assert!(text(&rows).contains("first") && text(&rows).contains("(1 row)"), "{}", text(&rows));
    // Exposed on 127.0.0.1 only, from a network of its own; and back.
    let exposed = free_port();
    p.ok(&["postgres:expose", &db2, &exposed.to_string()]);
    assert_eq!(docker(&["port", &format!("slipway-postgres-{db2}")]), format!("5432/tcp -> 127.0.0.1:{exposed}"));
    assert!(std::net::TcpStream::connect(("127.0.0.1", exposed)).is_ok());
    let networks = docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &format!("slipway-postgres-{db2}")]);
    assert!(!networks.contains("\"bridge\""), "not on Docker's default bridge: {networks}");
    p.ok(&["postgres:unexpose", &db2]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", exposed)).is_err());
    let rdb = p.slipway(&["redis:export", &cache]);
    assert!(rdb.status.success() && rdb.stdout.starts_with(b"REDIS"), "{}", text(&rdb));
    p.ok(&["redis:create", &cache2]);
    let imported = with_stdin(&p, &["redis:import", &cache2], &rdb.stdout);
    assert!(imported.status.success(), "{}", text(&imported));
    assert_eq!(
        String::from_utf8_lossy(&with_stdin(&p, &["redis:connect", &cache2], b"GET note\n").stdout).trim(),
        "first"
    );
    let refused = with_stdin(&p, &["redis:import", &cache2], b"not an rdb");
    assert!(!refused.status.success() && text(&refused).contains("not an RDB file"), "{}", text(&refused));

    // A scheduled backup, run by the platform's scheduler, restores; a failed one shows.
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_str().unwrap();
    p.ok(&["postgres:backup-schedule", &db, "*/5 * * * *", dir, "--keep", "2"]);
    let tasks = p.ok(&["cron:list", "--global"]);
    let line = tasks.lines().find(|l| l.contains(&format!("postgres:backup {db} {dir} --keep 2"))).expect(&tasks);
    let task = line.split_whitespace().next().unwrap();
    for _ in 0..3 {
        p.ok(&["cron:run", "--global", task]);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 2, "--keep 2: {files:?}");
    assert!(p.ok(&["postgres:info", &db]).contains("Last backup:"), "recorded");
    docker(&[
        "exec",
        &format!("slipway-postgres-{db2}"),
        "psql",
        "-U",
        "postgres",
        "-d",
        &db2.replace('-', "_"),
        "-c",
        "DROP TABLE notes",
    ]);
    let newest = files.iter().max().unwrap();
    let imported = with_stdin(&p, &["postgres:import", &db2], &std::fs::read(newest).unwrap());
    assert!(imported.status.success(), "{}", text(&imported));
    let rows = with_stdin(&p, &["postgres:connect", &db2], b"SELECT v FROM notes;\n");
    assert!(text(&rows).contains("first"), "the backup restores: {}", text(&rows));
    docker(&["stop", &format!("slipway-postgres-{db2}")]);
    let failed = p.slipway(&["postgres:backup", &db2, dir]);
    assert!(!failed.status.success());
    assert!(p.ok(&["postgres:info", &db2]).contains("failed:"), "a failed backup shows in info");

    // Destroy is refused while linked; unlink removes the var as a new release.
    let refused = p.slipway(&["postgres:destroy", &db, "--force"]);
    assert!(!refused.status.success() && text(&refused).contains("unlink it first"), "{}", text(&refused));
    let releases = p.ok(&["releases", app]).lines().count();
    p.ok(&["postgres:unlink", &db, app]);
    assert_eq!(p.ok(&["releases", app]).lines().count(), releases + 1);
    assert!(!p.ok(&["config:show", app]).contains("DATABASE_URL"));
    let (status, body) = get(&p, app, "/read");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("DATABASE_URL"), "{body}");
    for (kind, name) in [("postgres", &db), ("redis", &cache2), ("postgres", &db2)] {
        p.ok(&[&format!("{kind}:destroy"), name, "--force"]);
    }
    p.ok(&["redis:unlink", &cache, app]);
    p.ok(&["redis:destroy", &cache, "--force"]);
    assert!(docker(&["volume", "ls", "-q", "--filter", &format!("name=slipway-postgres-{db}-data")]).is_empty());
}
