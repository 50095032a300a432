//! One platform for the runner's and HTTPS tests: its own data dir, router port and nginx,
//! torn down on drop.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::*;

pub fn docker(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// One platform: its own data dir, router port and nginx; torn down on drop.
pub struct Platform {
    pub data: tempfile::TempDir,
    pub port: u16,
    pub apps: Vec<String>,
}

impl Platform {
    pub fn new() -> Platform {
        let o = Command::new("docker").args(["image", "inspect", "slipway/stack:build"]).output().unwrap();
        assert!(o.status.success(), "the stack images are missing: run `make stack-image` first");
        let port = free_port();
        let p = Platform { data: tempfile::tempdir().unwrap(), port, apps: Vec::new() };
        let o = p.slipway(&["domains:set-global", "slipway.test"]);
        assert!(o.status.success(), "{}", text(&o));
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("SLIPWAY_DATA", self.data.path())
            .env("SLIPWAY_ROUTER_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("CI", "true")
            .env_remove("BUILDPACK_URL");
        c
    }

    pub fn slipway(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.slipway(args);
        assert!(o.status.success(), "slipway {args:?} failed:\n{}", text(&o));
        text(&o)
    }

    pub fn create(&mut self, app: &str) {
        self.ok(&["apps:create", app]);
        self.apps.push(app.to_string());
    }

    /// GET / through the router with the app's host name.
    pub fn get(&self, app: &str) -> Result<(u16, String), String> {
        get_via(self.port, &format!("{app}.slipway.test"))
    }
}

pub fn get_via(port: u16, host: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    s.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let status: u16 = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status line")?;
    Ok((status, response.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string()))
}

impl Drop for Platform {
    fn drop(&mut self) {
        for app in &self.apps {
            let _ = self.slipway(&["apps:destroy", app, "--force"]);
        }
        if let Ok(pid) = std::fs::read_to_string(self.data.path().join("nginx/nginx.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}

pub fn containers_of(app: &str) -> Vec<String> {
    docker(&["ps", "-aq", "--filter", &format!("label=io.slipway.app={app}")]).lines().map(str::to_string).collect()
}

pub fn docker_answers() -> bool {
    Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success())
}

/// A simulated reboot's half: restarts the Docker daemon (every container stops): through systemd where it runs docker, else by stopping dockerd
/// (SIGTERM: it stops every container) and starting it again as it was started.
pub fn restart_docker() {
    let systemd = std::path::Path::new("/run/systemd/system").is_dir()
        && Command::new("systemctl").args(["is-active", "--quiet", "docker"]).status().is_ok_and(|s| s.success());
    if systemd {
        assert!(Command::new("systemctl").args(["restart", "docker"]).status().unwrap().success());
    } else {
        let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd's pid file").trim().to_string();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let args: Vec<String> =
            cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into()).collect();
        assert!(args[0].ends_with("dockerd"), "{args:?}");
        Command::new("kill").arg(&pid).status().unwrap();
        let stopping = Instant::now();
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(stopping.elapsed() < Duration::from_secs(60), "dockerd did not stop");
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open("/var/log/slipway-dockerd.log").unwrap();
        // setsid --fork: dockerd runs on in a session of its own; setsid itself returns.
        let started = Command::new("setsid")
            .arg("--fork")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap();
        assert!(started.success(), "cannot start {args:?}");
    }
    let starting = Instant::now();
    while !docker_answers() {
        assert!(starting.elapsed() < Duration::from_secs(90), "dockerd did not come back");
        std::thread::sleep(Duration::from_millis(500));
    }
}
