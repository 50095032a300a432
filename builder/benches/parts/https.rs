//! `make bench`, part 6 (as root, with Docker and pebble): the time from `letsencrypt:enable`
//! to the first HTTPS 200 (Debian's pebble as the ACME server); requests per second through the
//! router over HTTPS vs HTTP for the same app (wrk, side by side); and `ps:restore --all` for 20
//! apps whose containers were all stopped (a reboot).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::pebble::Pebble;
use crate::common::{fixture, free_port};

pub struct Bench {
    pub data: tempfile::TempDir,
    pub port: u16,
    pub https_port: u16,
}

impl Bench {
    pub fn run(&self, args: &[&str], extra_env: &[(&str, &Path)]) -> String {
        let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
        c.args(args)
            .env("SLIPWAY_DATA", self.data.path())
            .env("SLIPWAY_ROUTER_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("CI", "true");
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let list = self.run(&["apps:list"], &[]);
        for app in list.lines().skip(1) {
            let _ = Command::new(env!("CARGO_BIN_EXE_slipway"))
                .args(["apps:destroy", app, "--force"])
                .env("SLIPWAY_DATA", self.data.path())
                .output();
        }
        if let Ok(pid) = std::fs::read_to_string(self.data.path().join("nginx/nginx.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}

fn https_ok(ca: &Path, host: &str, port: u16) -> bool {
    Command::new("curl")
        .args(["-fsS", "-o", "/dev/null", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1"), &format!("https://{host}:{port}/")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Requests per second wrk measures against `url` with `host` as Host header (5 s, 2 threads,
/// 16 connections).
fn wrk(url: &str, host: &str) -> f64 {
    let o = Command::new("wrk").args(["-t2", "-c16", "-d5s", "-H", &format!("Host: {host}"), url]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk said: {out}"))
}

pub fn https_benchmarks() {
    println!("\n== HTTPS and reboots (router on loopback, pebble as the ACME server)");
    if Command::new("sh").args(["-c", "command -v wrk"]).output().is_ok_and(|o| !o.status.success()) {
        let _ = Command::new("apt-get").args(["install", "-y", "-qq", "wrk"]).output();
    }
    let b = Bench { data: tempfile::tempdir().unwrap(), port: free_port(), https_port: free_port() };
    b.run(&["domains:set-global", "bench.test"], &[]);
    b.run(&["settings:set", "https-listen", &format!("127.0.0.1:{}", b.https_port)], &[]);
    let pebble = Pebble::start(b.port);
    let app = "bench-tls";
    b.run(&["apps:create", app], &[]);
    let source = fixture("null/null-greeting");
    b.run(&["deploy", app, source.to_str().unwrap()], &[]);
    b.run(&["letsencrypt:set", "--global", "server", &pebble.directory], &[]);
    let host = format!("{app}.bench.test");
    // HTTP first: once it has a certificate, the app's HTTP requests are redirected.
    let http = wrk(&format!("http://127.0.0.1:{}/", b.port), &host);
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    b.run(&["letsencrypt:enable", app], &[("SSL_CERT_FILE", &pebble.listener_ca)]);
    let root = pebble.issuing_root(work.path());
    while !https_ok(&root, &host, b.https_port) {
        assert!(started.elapsed() < Duration::from_secs(60), "no HTTPS 200");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("letsencrypt:enable to the first HTTPS 200: {} ms", started.elapsed().as_millis());

    let https = wrk(&format!("https://127.0.0.1:{}/", b.https_port), &host);
    println!("requests/s through the router: HTTP {http:.0}, HTTPS {https:.0}; ratio HTTPS/HTTP = {:.2}", https / http);

    let apps: Vec<String> = (1..=19).map(|i| format!("bench-boot-{i}")).collect();
    for a in &apps {
        b.run(&["apps:create", a], &[]);
        b.run(&["deploy", a, source.to_str().unwrap()], &[]);
    }
    let ids = Command::new("docker").args(["ps", "-q", "--filter", "label=io.slipway.app"]).output().unwrap();
    let ours: Vec<String> = String::from_utf8_lossy(&ids.stdout)
        .lines()
        .filter(|id| {
            let o = Command::new("docker")
                .args(["inspect", "-f", "{{index .Config.Labels \"io.slipway.app\"}}", id])
                .output();
            o.is_ok_and(|o| {
                let name = String::from_utf8_lossy(&o.stdout).trim().to_string();
                name.starts_with("bench-boot-") || name == app
            })
        })
        .map(str::to_string)
        .collect();
    let mut stop = Command::new("docker");
    stop.args(["stop", "-t", "1"]).args(&ours);
    assert!(stop.output().unwrap().status.success());
    if let Ok(pid) = std::fs::read_to_string(b.data.path().join("nginx/nginx.pid")) {
        let _ = Command::new("kill").arg(pid.trim()).output();
    }
    let started = Instant::now();
    b.run(&["ps:restore", "--all"], &[]);
    let took = started.elapsed();
    assert!(https_ok(&root, &host, b.https_port), "HTTPS is back");
    println!("ps:restore --all for 20 apps (all containers stopped, router down): {} ms", took.as_millis());
}
