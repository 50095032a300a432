//! The HTTP router in front of the apps: nginx (Debian's package), as Dokku does it. Each app
//! gets a generated vhost file whose upstream lists its web containers' loopback ports; a
//! deploy writes the new file and reloads nginx gracefully, so requests in flight finish on
//! the old workers while new ones go to the new containers. nginx runs with its own config
//! under the data dir, not the system's.
//!
//! Why nginx and not an embedded router: it is what Dokku users know, its graceful reload is
//! proven under load, and upstream retries (`proxy_next_upstream`) cover a container that stops
//! between a reload and the request.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub struct Router {
    pub dir: PathBuf,
    pub listen: String,
}

/// Default listen address: 0.0.0.0:80 as root, else 127.0.0.1:8080.
pub fn default_listen() -> String {
    if unsafe { libc::geteuid() } == 0 {
        "0.0.0.0:80".into()
    } else {
        "127.0.0.1:8080".into()
    }
}

fn nginx() -> Result<PathBuf> {
    crate::stack::which("nginx")
        .or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
        .context("nginx is not installed: apt-get install nginx-light (make deps does it)")
}

impl Router {
    pub fn new(data_dir: &Path, listen: &str) -> Router {
        Router { dir: data_dir.join("nginx"), listen: listen.to_string() }
    }

    fn main_conf(&self) -> String {
        let d = self.dir.display();
        format!(
            "# Written by slipway; regenerated on every change.
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    client_max_body_size 100m;
    server_names_hash_bucket_size 128;
    include {d}/apps/*.conf;
    server {{
        listen {listen} default_server;
        location / {{ default_type text/plain; return 404 \"no app is served at this host name\\n\"; }}
    }}
}}
",
            listen = self.listen
        )
    }

    fn app_conf(&self, app: &str, hosts: &[String], ports: &[u16]) -> String {
        let servers: String = ports.iter().map(|p| format!("    server 127.0.0.1:{p} max_fails=0;\n")).collect();
        let upstream = if ports.is_empty() { "    server 127.0.0.1:1 down;\n".to_string() } else { servers };
        format!(
            "# app {app}: written by slipway
upstream slipway-{app} {{
{upstream}    keepalive 32;
}}
server {{
    listen {listen};
    server_name {names};
    location / {{
        proxy_pass http://slipway-{app};
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Request-Id $request_id;
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_next_upstream_tries 3;
        proxy_connect_timeout 5s;
    }}
}}
",
            listen = self.listen,
            names = hosts.join(" ")
        )
    }

    fn ensure_layout(&self) -> Result<()> {
        for sub in ["apps", "tmp"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        write_atomic(&self.dir.join("nginx.conf"), &self.main_conf())
    }

    fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("nginx.pid")).ok()?.trim().parse().ok()?;
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    fn run_nginx(&self, extra: &[&str]) -> Result<()> {
        let conf = self.dir.join("nginx.conf");
        let out = Command::new(nginx()?)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&self.dir)
            .args(extra)
            .output()
            .context("cannot run nginx")?;
        if !out.status.success() {
            bail!("nginx {}: {}", extra.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Starts nginx when it is not running; reloads it gracefully when it is.
    pub fn apply(&self) -> Result<()> {
        self.ensure_layout()?;
        self.run_nginx(&["-t", "-q"]).context("the router's configuration is invalid")?;
        match self.pid() {
            Some(_) => self.run_nginx(&["-s", "reload"]),
            None => self.run_nginx(&[]).context("cannot start the router (nginx); is its port free?"),
        }
    }

    /// Points an app's host names at these loopback ports, then reloads. When the new
    /// configuration does not pass `nginx -t`, the old one is put back.
    pub fn set_app(&self, app: &str, hosts: &[String], ports: &[u16]) -> Result<()> {
        self.ensure_layout()?;
        let path = self.dir.join("apps").join(format!("{app}.conf"));
        let previous = std::fs::read_to_string(&path).ok();
        write_atomic(&path, &self.app_conf(app, hosts, ports))?;
        if let Err(e) = self.apply() {
            match previous {
                Some(p) => write_atomic(&path, &p)?,
                None => std::fs::remove_file(&path)?,
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn remove_app(&self, app: &str) -> Result<()> {
        let path = self.dir.join("apps").join(format!("{app}.conf"));
        if path.exists() {
            std::fs::remove_file(&path)?;
            if self.pid().is_some() {
                self.apply()?;
            }
        }
        Ok(())
    }

    pub fn has_app(&self, app: &str) -> bool {
        self.dir.join("apps").join(format!("{app}.conf")).exists()
    }

    pub fn stop(&self) -> Result<()> {
        if self.pid().is_some() {
            self.run_nginx(&["-s", "quit"])?;
        }
        Ok(())
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
