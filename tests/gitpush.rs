//! `git push` deploys end to end: real git, a real OpenSSH sshd on a loopback port, the real
//! Docker engine and router. Needs root (it creates the git user) and the stack images.

#[path = "common/mod.rs"]
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "slipwaytest";

struct Server {
    /// A copy of the binary the git user can run, wherever the checkout lives.
    exe: PathBuf,
    key_name: String,
    data: PathBuf,
    sshd_port: u16,
    router_port: u16,
    key: PathBuf,
    work: tempfile::TempDir,
}

impl Server {
    /// A platform with its own data dir, sshd, router and an authorized key `tester`.
    fn start(name: &str) -> Server {
        require_root("it creates a git user and runs sshd");
        let o = Command::new("docker").args(["image", "inspect", "slipway/stack:build"]).output().unwrap();
        assert!(o.status.success(), "the stack images are missing: run `make stack-image` first");
        let work = tempfile::tempdir().unwrap();
        let data = PathBuf::from(format!("/srv/slipway-test-{name}"));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let (sshd_port, router_port) = (free_port(), free_port());
        let key_name = format!("tester-{name}");
        let exe_dir = PathBuf::from(format!("/srv/slipway-test-{name}-bin"));
        std::fs::create_dir_all(&exe_dir).unwrap();
        let exe = exe_dir.join("slipway");
        std::fs::copy(bin(), &exe).unwrap();
        let s = Server { exe, key_name, data, sshd_port, router_port, key: work.path().join("id"), work };
        let o = s.slipway(&["--router-listen", &format!("127.0.0.1:{router_port}"), "domains:set-global", "push.test"]);
        assert!(o.status.success(), "{}", text(&o));
        let o = s.slipway(&["install", "--sshd-port", &sshd_port.to_string(), "--no-daemon"]);
        assert!(o.status.success(), "{}", text(&o));
        keygen(&s.key);
        let _ = s.slipway(&["ssh-keys:remove", &s.key_name]); // from an interrupted earlier run
        let o = s.slipway(&["ssh-keys:add", &s.key_name, s.key.with_extension("pub").to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        s
    }

    fn slipway(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args).env("SLIPWAY_DATA", &self.data).env("SLIPWAY_GIT_USER", USER);
        // The tests run in threads: while this one copied the binary, another may have forked,
        // and its child holds the write handle until it execs ("Text file busy"). That passes.
        for _ in 0..100 {
            match cmd.output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::sleep(Duration::from_millis(20)),
                other => return other.unwrap(),
            }
        }
        panic!("{} stayed busy", self.exe.display());
    }

    fn ssh_command(&self, key: &Path) -> String {
        format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes",
            key.display(),
            self.sshd_port
        )
    }

    fn ssh(&self, key: &Path, remote_command: &str) -> Output {
        self.ssh_with_input(key, remote_command, "")
    }

    fn ssh_with_input(&self, key: &Path, remote_command: &str, input: &str) -> Output {
        use std::io::Write;
        let cmd = format!("{} {USER}@127.0.0.1 {}", self.ssh_command(key), shell_quote(remote_command));
        let mut child = Command::new("bash")
            .args(["-c", &cmd])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// A git checkout of `fixture` with the slipway remote for `app`.
    fn checkout(&self, fixture_dir: &Path, app: &str) -> PathBuf {
        let dir = self.work.path().join(format!("{app}-{}", free_port()));
        copy_dir(fixture_dir, &dir);
        self.git(&dir, &["init", "-q", "-b", "main"]);
        self.git(&dir, &["add", "-A"]);
        self.git(&dir, &["commit", "-qm", "first"]);
        self.git(&dir, &["remote", "add", "slipway", &format!("{USER}@127.0.0.1:{app}")]);
        dir
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Output {
        let o = self.git_cmd(dir, args).output().unwrap();
        assert!(o.status.success() || args[0] == "push", "git {args:?}: {}", text(&o));
        o
    }

    fn git_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        // A HOME of the test's own: its .gitconfig trusts the test's repos (some belong to the
        // git user), without touching this machine's real git config.
        let home = self.work.path().join("home");
        if !home.join(".gitconfig").exists() {
            std::fs::create_dir_all(&home).unwrap();
            std::fs::write(home.join(".gitconfig"), "[safe]\n\tdirectory = *\n[protocol \"file\"]\n\tallow = always\n")
                .unwrap();
        }
        c.args(["-c", "user.name=tester", "-c", "user.email=t@example.test"])
            .args(args)
            .current_dir(dir)
            .env("HOME", &home)
            .env("GIT_SSH_COMMAND", self.ssh_command(&self.key));
        c
    }

    fn get(&self, app: &str) -> Result<(u16, String), String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.router_port)).map_err(|e| e.to_string())?;
        write!(s, "GET / HTTP/1.0\r\nHost: {app}.push.test\r\n\r\n").map_err(|e| e.to_string())?;
        let mut r = String::new();
        s.read_to_string(&mut r).map_err(|e| e.to_string())?;
        let code = r.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status")?;
        Ok((code, r.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A daemon `install` started (it would start sshd again).
        let _ = self.slipway(&["daemon", "--stop"]);
        let list = self.slipway(&["apps:list"]);
        for app in String::from_utf8_lossy(&list.stdout).lines().skip(1) {
            let _ = self.slipway(&["apps:destroy", app, "--force"]);
        }
        let _ = self.slipway(&["ssh-keys:remove", &self.key_name]);
        let sshd_pid = PathBuf::from(format!("/run/slipway/sshd-{}.pid", self.sshd_port));
        for pid_file in [self.data.join("nginx/nginx.pid"), sshd_pid] {
            if let Ok(pid) = std::fs::read_to_string(pid_file) {
                let _ = Command::new("kill").arg(pid.trim()).output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_dir_all(format!("/etc/slipway/sshd-{}", self.sshd_port));
        for end in ["pid", "log"] {
            let _ = std::fs::remove_file(format!("/run/slipway/sshd-{}.{end}", self.sshd_port));
        }
        if let Some(dir) = self.exe.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn keygen(path: &Path) {
    let o = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // ssh refuses keys others can read; the test's temp dir is root's, the key too.
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn copy_dir(from: &Path, to: &Path) {
    let o = Command::new("cp").arg("-r").arg(from).arg(to).output().unwrap();
    assert!(o.status.success());
}

#[test]
fn push_creates_deploys_redeploys_and_rejects_failures() {
    let s = Server::start("main");
    let app = "pushed";
    let dir = s.checkout(&fixture("null/null-greeting"), app);

    // First push: the app is created, built and deployed; the log streams back.
    let o = s.git(&dir, &["push", "slipway", "main"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("remote: -----> Created app pushed") || out.contains("Created app pushed"), "{out}");
    assert!(out.contains("remote: -----> Null app detected"), "{out}");
    assert_eq!(s.get(app).unwrap(), (200, "null-greeting".to_string()));
    assert_private_files(&s, app);

    // A second push with a change redeploys with no failed request meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let port = s.router_port;
    let load = {
        let (stop, failed, served) = (stop.clone(), failed.clone(), served.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                use std::io::{Read, Write};
                let ok = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut c| {
                    write!(c, "GET / HTTP/1.0\r\nHost: pushed.push.test\r\n\r\n").ok()?;
                    let mut r = String::new();
                    c.read_to_string(&mut r).ok()?;
                    r.starts_with("HTTP/1.1 200").then_some(())
                });
                let counter = if ok.is_some() { &served } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    std::fs::write(
        dir.join("server.py"),
        std::fs::read_to_string(dir.join("server.py")).unwrap().replace("\"null-greeting\"", "\"second push\""),
    )
    .unwrap();
    s.git(&dir, &["commit", "-qam", "second"]);
    let o = s.git(&dir, &["push", "slipway", "main"]);
    assert!(o.status.success(), "{}", text(&o));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(s.get(app).unwrap().1, "second push");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed during the redeploy");
    assert!(served.load(Ordering::Relaxed) > 10);

    // A failing app is rejected; the old release still answers.
    std::fs::write(dir.join("Procfile"), "web: exec python3 -c 'import sys; sys.exit(3)'\n").unwrap();
    s.git(&dir, &["commit", "-qam", "broken"]);
    let o = s.git(&dir, &["push", "slipway", "main"]);
    assert!(!o.status.success(), "a failing app must be rejected");
    let out = text(&o);
    assert!(out.contains("pre-receive hook declined"), "{out}");
    assert!(out.contains("the running release keeps serving"), "{out}");
    assert_eq!(s.get(app).unwrap().1, "second push");

    // `git push --force` of an older commit redeploys it.
    let o = s.git(&dir, &["push", "--force", "slipway", "HEAD~2:main"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s.get(app).unwrap().1, "null-greeting");

    // A push to another branch is accepted with a warning, nothing deployed.
    s.git(&dir, &["checkout", "-q", "-b", "feature"]);
    let o = s.git(&dir, &["push", "slipway", "feature"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing was deployed (the deploy branch of pushed is main)"), "{}", text(&o));
    assert_eq!(s.get(app).unwrap().1, "null-greeting");

    // Build records with their logs.
    let o = s.slipway(&["builds:list", app]);
    assert!(text(&o).matches("succeeded").count() >= 3, "{}", text(&o));
    assert!(text(&o).contains("failed"), "{}", text(&o));
    let o = s.slipway(&["builds:output", app]);
    assert!(text(&o).contains("Null app detected"), "{}", text(&o));

    // App commands over ssh; anything else is refused.
    let o = s.ssh(&s.key, &format!("config:set {app} GREETING=over-ssh"));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s.get(app).unwrap().1, "over-ssh");
    for escape in [
        "sh -c id",
        "git-receive-pack '../x'",
        "git-upload-pack '/etc/passwd'",
        "apps:destroy pushed --force",
        "cat /etc/shadow",
    ] {
        let o = s.ssh(&s.key, escape);
        assert!(!o.status.success(), "{escape:?} was allowed: {}", text(&o));
        assert!(!text(&o).contains("uid="), "{escape:?} ran: {}", text(&o));
    }
    // ps:rebuild builds the deploy branch again: a new release, the same answer.
    let releases = text(&s.slipway(&["releases", app])).lines().count();
    let o = s.ssh(&s.key, &format!("ps:rebuild {app}"));
    assert!(o.status.success() && text(&o).contains("Null app detected"), "{}", text(&o));
    assert_eq!(text(&s.slipway(&["releases", app])).lines().count(), releases + 1);
    assert_eq!(s.get(app).unwrap().1, "over-ssh");
    // apps:clone: the config and the pushed source, built under the new name.
    let o = s.ssh(&s.key, &format!("apps:clone {app} {app}-copy"));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s.get(&format!("{app}-copy")).unwrap(), (200, "over-ssh".to_string()));
    assert_eq!(s.get(app).unwrap().1, "over-ssh", "the original keeps serving");
    let o = s.ssh(&s.key, &format!("apps:clone {app}-copy {app}"));
    assert!(!o.status.success() && text(&o).contains("already exists"), "{}", text(&o));
    assert!(s.slipway(&["apps:destroy", &format!("{app}-copy"), "--force"]).status.success());
    // A key that was never added gets nothing.
    let stranger = s.work.path().join("stranger");
    keygen(&stranger);
    let o = s.ssh(&stranger, "apps:list");
    assert!(!o.status.success());
    assert!(text(&o).contains("Permission denied"), "{}", text(&o));
}

/// The pusher sees each line as the build prints it, and a second push while one deploys is
/// refused at once; a cancelled build rejects its push.
#[test]
fn pushes_stream_live_lock_and_cancel() {
    let s = Server::start("stream");
    let app = "streamed";
    let src = s.work.path().join("slow-src");
    std::fs::create_dir_all(src.join("bp/bin")).unwrap();
    std::fs::copy(fixture("null/null-greeting/server.py"), src.join("server.py")).unwrap();
    std::fs::write(src.join("Procfile"), "web: exec python3 server.py\n").unwrap();
    std::fs::write(src.join(".buildpacks"), "./bp\n").unwrap();
    std::fs::write(src.join("bp/bin/detect"), "#!/bin/sh\necho Slowpoke\n").unwrap();
    std::fs::write(
        src.join("bp/bin/compile"),
        "#!/bin/sh\necho '-----> first line'\nsleep ${SLOW:-6}\necho '-----> last line'\n",
    )
    .unwrap();
    for f in ["detect", "compile"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join("bp/bin").join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dir = s.checkout(&src, app);
    let mut push = s
        .git_cmd(&dir, &["push", "--progress", "slipway", "main"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(push.stderr.take().unwrap());
    let (mut first, mut last) = (None, None);
    let mut concurrent: Option<Output> = None;
    let other = s.checkout(&src, app);
    let mut seen = Vec::new();
    for line in lines.lines().map_while(Result::ok) {
        seen.push(line.clone());
        if line.contains("-----> first line") {
            first = Some(Instant::now());
            // While this one builds, a second push is refused at once.
            let t = Instant::now();
            let o = s.git_cmd(&other, &["push", "--force", "slipway", "main"]).output().unwrap();
            assert!(t.elapsed() < Duration::from_secs(5), "the second push waited instead of being refused");
            concurrent = Some(o);
        }
        if line.contains("-----> last line") {
            last = Some(Instant::now());
        }
    }
    assert!(push.wait().unwrap().success(), "the first push failed:\n{}", seen.join("\n"));
    let (first, last) = (first.expect("the first line arrived"), last.expect("the last line arrived"));
    assert!(last.duration_since(first) >= Duration::from_secs(4), "lines were batched, not streamed");
    let o = concurrent.unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("is being deployed right now"), "{}", text(&o));

    // builds:cancel stops a running build; its push is rejected cleanly.
    std::fs::write(dir.join("touch.txt"), "x").unwrap();
    s.git(&dir, &["add", "-A"]);
    s.git(&dir, &["commit", "-qm", "again"]);
    let mut push =
        s.git_cmd(&dir, &["push", "slipway", "main"]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(push.stderr.take().unwrap()).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if line.contains("-----> first line") {
            let o = s.ssh(&s.key, &format!("builds:cancel {app}"));
            assert!(o.status.success(), "{}", text(&o));
            break;
        }
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(!push.wait().unwrap().success(), "a cancelled build must reject its push: {rest:?}");
    assert_eq!(s.get(app).unwrap(), (200, "null-greeting".to_string()), "the old release keeps serving");
    let builds = text(&s.slipway(&["builds:list", app]));
    assert!(builds.lines().nth(1).is_some_and(|l| l.contains("failed")), "{builds}");
    let leftovers = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=io.slipway.role=build",
            "--filter",
            &format!("label=io.slipway.app={app}"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&leftovers.stdout).trim().is_empty(), "the build container survived the cancel");
}

/// Config values and build logs are the git user's alone: the data dir 0700, the database (and
/// its WAL, when there is one) 0600, the running release's env files 0400.
fn assert_private_files(s: &Server, app: &str) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.data), 0o700, "the data dir");
    assert_eq!(mode(&s.data.join("slipway.db")), 0o600, "the database");
    // The WAL exists while a connection is open (the last one to close removes it).
    if let Ok(m) = std::fs::metadata(s.data.join("slipway.db-wal")) {
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "the WAL");
    }
    let o = s.slipway(&["config:set", app, "MODE_CHECK=1"]);
    assert!(o.status.success(), "{}", text(&o));
    let releases = s.data.join("apps").join(app).join("releases");
    let env_files: Vec<PathBuf> =
        walkdir(&releases).into_iter().filter(|p| p.parent().is_some_and(|d| d.ends_with("env"))).collect();
    assert!(env_files.iter().any(|p| p.ends_with("MODE_CHECK")), "{env_files:?}");
    for f in &env_files {
        assert_eq!(mode(f), 0o400, "{}", f.display());
    }
}

/// Every file under `dir`.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A git host the way a code host is one: bare repos served over https (git's dumb HTTP
/// protocol: static files) by nginx on a loopback port, with a certificate of its own that the
/// git user trusts through its git config (`http.<url>.sslCAInfo`, as an admin would set for a
/// private CA).
struct HttpsGit {
    root: PathBuf,
    port: u16,
    nginx: std::process::Child,
    git_config: PathBuf,
}

impl HttpsGit {
    fn start(name: &str) -> HttpsGit {
        use std::os::unix::fs::PermissionsExt;
        let root = PathBuf::from(format!("/srv/slipway-test-{name}-https"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let o = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(root.join("key.pem"))
            .arg("-out")
            .arg(root.join("cert.pem"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let port = free_port();
        let r = root.display();
        let conf = format!(
            "daemon off; user root root; worker_processes 1; pid {r}/nginx.pid; error_log {r}/error.log;\n\
             events {{}}\nhttp {{ access_log off; client_body_temp_path {r}/tmp/b; proxy_temp_path {r}/tmp/p;\n\
             fastcgi_temp_path {r}/tmp/f; uwsgi_temp_path {r}/tmp/u; scgi_temp_path {r}/tmp/s;\n\
             server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {r}/cert.pem; ssl_certificate_key {r}/key.pem;\n\
             root {r}/www; }} }}\n"
        );
        std::fs::write(root.join("nginx.conf"), conf).unwrap();
        let nginx = Command::new("nginx")
            .arg("-p")
            .arg(&root)
            .arg("-e")
            .arg(root.join("error.log"))
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let home = Command::new("getent").args(["passwd", USER]).output().unwrap();
        let home = String::from_utf8_lossy(&home.stdout).split(':').nth(5).unwrap_or("").trim().to_string();
        let git_config = PathBuf::from(home).join(".gitconfig");
        let https = HttpsGit { root, port, nginx, git_config };
        let key = format!("http.{}.sslCAInfo", https.url(""));
        let o = Command::new("git")
            .args(["config", "--file"])
            .arg(&https.git_config)
            .arg(&key)
            .arg(https.cert())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        Command::new("chown").arg(format!("{USER}:{USER}")).arg(&https.git_config).status().unwrap();
        https
    }

    fn url(&self, repo: &str) -> String {
        format!("https://127.0.0.1:{}/{repo}", self.port)
    }

    fn cert(&self) -> PathBuf {
        self.root.join("cert.pem")
    }

    /// Serves the repo at `src` as `NAME.git`; its URL.
    fn publish(&self, src: &Path, name: &str) -> String {
        let bare = self.root.join("www").join(format!("{name}.git"));
        let o = Command::new("git").args(["clone", "-q", "--bare"]).arg(src).arg(&bare).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let o = Command::new("git").arg("--git-dir").arg(&bare).arg("update-server-info").output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        self.url(&format!("{name}.git"))
    }
}

impl Drop for HttpsGit {
    fn drop(&mut self) {
        // TERM to the master: it stops its workers too (a KILL would leave them behind).
        unsafe { libc::kill(self.nginx.id() as i32, libc::SIGTERM) };
        let _ = self.nginx.wait();
        let key = format!("http.{}", self.url(""));
        let _ = Command::new("git")
            .args(["config", "--file"])
            .arg(&self.git_config)
            .args(["--remove-section", &key])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Submodules are honoured: the pushed tree's gitlinks are fetched from their https:// URLs at
/// their recorded commits.
#[test]
fn submodules_are_part_of_the_build() {
    let s = Server::start("submodules");
    let https = HttpsGit::start("submodules");
    let lib_src = s.work.path().join("lib-src");
    std::fs::create_dir_all(&lib_src).unwrap();
    std::fs::write(lib_src.join("index.html"), "from-submodule\n").unwrap();
    s.git(&lib_src, &["init", "-q", "-b", "main"]);
    s.git(&lib_src, &["add", "-A"]);
    s.git(&lib_src, &["commit", "-qm", "lib"]);
    let lib_url = https.publish(&lib_src, "lib");

    let app = "with-submodule";
    let src = s.work.path().join("sub-app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Procfile"), "web: exec python3 -m http.server $PORT --directory vendor/lib\n").unwrap();
    let dir = s.checkout(&src, app);
    // The client trusts the test's certificate too (the variable wins over any git config).
    let o = s
        .git_cmd(&dir, &["submodule", "add", "-q", &lib_url, "vendor/lib"])
        .env("GIT_SSL_CAINFO", https.cert())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    s.git(&dir, &["commit", "-qm", "add the library"]);
    let o = s.git(&dir, &["push", "slipway", "main"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Fetching submodule vendor/lib"), "{}", text(&o));
    assert_eq!(s.get(app).unwrap(), (200, "from-submodule".to_string()));
}

/// A commit of `files` (path, content) plus gitlinks (path, commit), on its own, in `dir`.
fn hostile_commit(s: &Server, dir: &Path, files: &[(&str, &str)], gitlinks: &[(&str, &str)]) {
    for (path, content) in files {
        std::fs::write(dir.join(path), content).unwrap();
        s.git(dir, &["add", path]);
    }
    for (path, sha) in gitlinks {
        s.git(dir, &["update-index", "--add", "--cacheinfo", &format!("160000,{sha},{path}")]);
    }
    s.git(dir, &["commit", "-qm", "hostile", "--allow-empty"]);
}

/// What one key holder could try with a push: submodules through a symlink or from this host's
/// repos, option-like URLs, a tree that expands far beyond its pack, a pack over the cap. Each
/// is refused with one line naming the cause, and the host is unchanged.
#[test]
fn hostile_pushes_are_refused_and_change_nothing() {
    let s = Server::start("hostile");
    let canary = PathBuf::from("/srv/slipway-test-hostile-canary");
    let _ = std::fs::remove_dir_all(&canary);
    std::fs::create_dir_all(&canary).unwrap();
    std::fs::write(canary.join("keep"), "untouched\n").unwrap();
    Command::new("chown").args(["-R", &format!("{USER}:{USER}")]).arg(&canary).status().unwrap();
    let marker = PathBuf::from("/tmp/slipway-test-hostile-marker");
    let _ = std::fs::remove_file(&marker);

    let src = s.work.path().join("hostile-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Procfile"), "web: exec python3 -m http.server $PORT\n").unwrap();
    let dir = s.checkout(&src, "hostile");
    let head = text(&s.git(&dir, &["rev-parse", "HEAD"])).trim().to_string();
    // A symlink to the canary's parent, and a submodule whose path climbs out through it.
    std::os::unix::fs::symlink("/srv", dir.join("x")).unwrap();
    s.git(&dir, &["add", "x"]);
    let modules = "[submodule \"s\"]\n\tpath = x/../slipway-test-hostile-canary\n\turl = https://127.0.0.1:1/lib.git\n";
    hostile_commit(&s, &dir, &[(".gitmodules", modules)], &[("slipway-test-hostile-canary", &head)]);
    let o = s.git(&dir, &["push", "slipway", "main"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("is not a plain relative path inside the app"), "{}", text(&o));

    // URLs that reach this host's files or another app's repo, or that git would read as options.
    for url in ["file:///srv/slipway-test-hostile/repos/hostile.git", "../other.git", "/srv", "ssh://127.0.0.1/x"] {
        let modules = format!("[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = {url}\n");
        s.git(&dir, &["reset", "-q", "--hard", &head]);
        std::fs::create_dir_all(dir.join("vendor")).unwrap();
        hostile_commit(&s, &dir, &[(".gitmodules", &modules)], &[("vendor/lib", &head)]);
        let o = s.git(&dir, &["push", "-f", "slipway", "main"]);
        assert!(!o.status.success(), "{url}: {}", text(&o));
        assert!(text(&o).contains("is not an https:// URL"), "{url}: {}", text(&o));
    }
    let modules =
        format!("[submodule \"lib\"]\n\tpath = vendor/lib\n\turl = --upload-pack=touch {}\n", marker.display());
    s.git(&dir, &["reset", "-q", "--hard", &head]);
    hostile_commit(&s, &dir, &[(".gitmodules", &modules)], &[("vendor/lib", &head)]);
    let o = s.git(&dir, &["push", "-f", "slipway", "main"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!marker.exists(), "a submodule URL ran as an option");

    // A `.env` pointing at a host file is refused, never read (the host reads it for a Dockerfile app).
    s.git(&dir, &["reset", "-q", "--hard", &head]);
    std::fs::write(dir.join("Dockerfile"), "FROM slipway/stack:run\n").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", dir.join(".env")).unwrap();
    s.git(&dir, &["add", "Dockerfile", ".env"]);
    s.git(&dir, &["commit", "-qm", "a link to a host file"]);
    let o = s.git(&dir, &["push", "-f", "slipway", "main"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(".env of the app is a symbolic link"), "{}", text(&o));
    assert!(!text(&o).contains("root:"), "{}", text(&o));

    // 954 files of the same MiB of zeros: a pack of a few KiB, a tree of 954 MiB.
    let o = s.slipway(&["settings:set", "max-push-size", "100M"]);
    assert!(o.status.success(), "{}", text(&o));
    let zeros = s.work.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    let blob = text(&s.git(&dir, &["hash-object", "-w", zeros.to_str().unwrap()])).trim().to_string();
    let listing: String = (0..954).map(|i| format!("100644 blob {blob}\tzeros-{i:03}\n")).collect();
    let mut mktree = s.git_cmd(&dir, &["mktree"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    mktree.stdin.take().unwrap().write_all(listing.as_bytes()).unwrap();
    let tree = String::from_utf8_lossy(&mktree.wait_with_output().unwrap().stdout).trim().to_string();
    let bomb = text(&s.git(&dir, &["commit-tree", &tree, "-m", "954 MiB"])).trim().to_string();
    let o = s.git(&dir, &["push", "-f", "slipway", &format!("{bomb}:refs/heads/main")]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("the pushed tree is larger than max-push-size (100.0 MB)"), "{}", text(&o));

    // A pack over the cap is refused while it arrives.
    let o = s.slipway(&["settings:set", "max-push-size", "6M"]);
    assert!(o.status.success(), "{}", text(&o));
    s.git(&dir, &["reset", "-q", "--hard", &head]);
    let mut noise = Vec::with_capacity(8 << 20);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    while noise.len() < 8 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(dir.join("noise.bin"), &noise).unwrap();
    s.git(&dir, &["add", "noise.bin"]);
    s.git(&dir, &["commit", "-qm", "8 MB of noise"]);
    let o = s.git(&dir, &["push", "-f", "slipway", "main"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("pack exceeds maximum allowed size"), "{}", text(&o));

    // Config values can stay off command lines: `config:set --stdin` over SSH.
    let o = s.ssh_with_input(&s.key, "config:set hostile --stdin --no-restart", "FROM_STDIN='kept secret'\n");
    assert!(o.status.success(), "{}", text(&o));
    let o = s.ssh(&s.key, "config:get hostile FROM_STDIN");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "kept secret", "{}", text(&o));

    assert_eq!(std::fs::read_to_string(canary.join("keep")).unwrap(), "untouched\n");
    assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 1, "nothing was written into the canary");
    let releases = text(&s.slipway(&["releases", "hostile"]));
    assert!(!releases.contains("v1"), "nothing was deployed: {releases}");
    let _ = std::fs::remove_dir_all(&canary);
}

/// A developer key works on the apps it created and the ones granted to it, nothing else; an
/// admin key (every key added without --role) reaches everything; pushes record the key.
#[test]
fn developer_keys_reach_their_own_and_granted_apps_only() {
    let s = Server::start("acl");
    let dev = s.work.path().join("dev");
    keygen(&dev);
    let dev_name = "dev-acl";
    let _ = s.slipway(&["ssh-keys:remove", dev_name]);
    let o = s.slipway(&["ssh-keys:add", dev_name, dev.with_extension("pub").to_str().unwrap(), "--role", "developer"]);
    assert!(o.status.success(), "{}", text(&o));
    let keys = text(&s.slipway(&["ssh-keys:list"]));
    assert!(keys.lines().any(|l| l.starts_with(dev_name) && l.contains("developer")), "{keys}");
    assert!(keys.lines().any(|l| l.starts_with(&s.key_name) && l.contains("admin")), "{keys}");

    // An app the admin made: the developer can neither read, change, run, pull nor push it.
    assert!(s.ssh(&s.key, "apps:create adminapp").status.success());
    assert!(s.ssh(&s.key, "config:set adminapp SECRET=admin-only --no-restart").status.success());
    for refused in [
        "config:show adminapp",
        "config:get adminapp SECRET",
        "run adminapp true",
        "domains:add adminapp api.adminapp.push.test",
        "config:set --global X=1",
        "acl:add adminapp dev-acl",
        "git-upload-pack 'adminapp'",
    ] {
        let o = s.ssh(&dev, refused);
        assert!(!o.status.success(), "{refused:?} was allowed: {}", text(&o));
        assert!(!text(&o).contains("admin-only"), "{refused:?} leaked the value: {}", text(&o));
    }
    assert!(text(&s.ssh(&dev, "config:show adminapp")).contains("has no access to app 'adminapp'"));
    // No global option exists over SSH, for anyone: another data dir, a router address.
    for global in ["apps:list --data-dir /tmp", "--data-dir /tmp apps:list", "apps:list --router-listen 127.0.0.1:1"] {
        let o = s.ssh(&s.key, global);
        assert!(!o.status.success(), "{global:?} was allowed: {}", text(&o));
    }
    assert!(!text(&s.ssh(&dev, "apps:list")).contains("adminapp"));
    let null = fixture("null/null-greeting");
    let checkout = s.checkout(&null, "adminapp");
    let as_dev =
        |dir: &Path, args: &[&str]| s.git_cmd(dir, args).env("GIT_SSH_COMMAND", s.ssh_command(&dev)).output().unwrap();
    let o = as_dev(&checkout, &["push", "slipway", "main"]);
    assert!(!o.status.success() && text(&o).contains("has no access"), "{}", text(&o));
    assert!(text(&s.slipway(&["builds:list", "adminapp"])).lines().count() == 1, "nothing was built");

    // Granted by an admin (over SSH), the developer may use it; revoked, not any more.
    assert!(s.ssh(&s.key, "acl:add adminapp dev-acl").status.success());
    assert!(text(&s.ssh(&dev, "config:show adminapp")).contains("admin-only"));
    assert!(text(&s.ssh(&dev, "apps:list")).contains("adminapp"));
    assert!(as_dev(&checkout, &["ls-remote", "slipway"]).status.success());
    // Pushed objects are checked by git before it takes them.
    let repo = s.data.join("repos/adminapp.git");
    let o = Command::new("git").arg("--git-dir").arg(&repo).args(["config", "receive.fsckObjects"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "true", "{}", text(&o));
    assert!(text(&s.ssh(&s.key, "acl:list adminapp")).contains("dev-acl"));
    assert!(s.ssh(&s.key, "acl:remove adminapp dev-acl").status.success());
    assert!(!s.ssh(&dev, "config:show adminapp").status.success());

    // The developer's first push creates its own app; the build and release name the key.
    let own = s.checkout(&null, "devapp");
    let o = as_dev(&own, &["push", "slipway", "main"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s.get("devapp").unwrap().1, "null-greeting");
    assert!(text(&s.ssh(&dev, "builds:list devapp")).contains(dev_name));
    assert!(text(&s.ssh(&dev, "releases devapp")).contains(dev_name));
    assert!(text(&s.ssh(&dev, "acl:list devapp")).contains(&format!("owner: {dev_name}")));
    // Its own domains under APP.GLOBAL_DOMAIN only; an admin may add any.
    assert!(s.ssh(&dev, "domains:add devapp api.devapp.push.test").status.success());
    assert!(text(&s.ssh(&dev, "domains:add devapp www.example.test")).contains("ask an admin"));
    assert!(s.ssh(&s.key, "domains:add devapp www.example.test").status.success());
    // The admin sees and reaches everything.
    let all = text(&s.ssh(&s.key, "apps:list"));
    assert!(all.contains("adminapp") && all.contains("devapp"), "{all}");

    // Services: a developer reaches those its apps link to, and runs no backup (host paths).
    let cache = format!("aclcache{}", std::process::id());
    let container = format!("slipway-redis-{cache}");
    let o = s.ssh(&s.key, &format!("redis:create {cache}"));
    assert!(o.status.success(), "{}", text(&o));
    let refused = text(&s.ssh(&dev, &format!("redis:info {cache}")));
    assert!(refused.contains(&format!("no access to the Redis service {cache}")), "{refused}");
    assert!(!text(&s.ssh(&dev, "redis:list")).contains(&cache));
    assert!(!s.ssh(&s.key, &format!("redis:backup {cache} /tmp")).status.success(), "backups are host-only");
    assert!(!s.ssh(&dev, &format!("redis:link {cache} devapp")).status.success());
    assert!(s.ssh(&s.key, &format!("redis:link {cache} devapp")).status.success());
    let o = s.ssh_with_input(&dev, &format!("redis:connect {cache}"), "SET k over-ssh\nGET k\n");
    assert!(text(&o).contains("over-ssh"), "standard input reaches redis-cli: {}", text(&o));
    assert!(text(&s.ssh(&dev, "config:show devapp")).contains(&format!("@{container}:6379")));
    assert!(s.ssh(&dev, &format!("redis:unlink {cache} devapp")).status.success());
    assert!(s.ssh(&s.key, &format!("redis:destroy {cache} --force")).status.success());
    let _ = Command::new("docker").args(["rm", "-f", &container]).output();
    let _ = s.slipway(&["ssh-keys:remove", dev_name]);
}

/// `slipway daemon`, stopped (SIGTERM) when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// `slipway daemon` for the server's data dir, once it has started; the directory of its router.
fn start_daemon(s: &Server) -> (Daemon, PathBuf) {
    let mut child = Command::new(&s.exe)
        .arg("daemon")
        .env("SLIPWAY_DATA", &s.data)
        .env("SLIPWAY_GIT_USER", USER)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let daemon = Daemon(child);
    let first = lines.by_ref().map_while(Result::ok).find(|l| l.contains("its router is in ")).expect("it started");
    let router_dir = PathBuf::from(first.split("its router is in ").nth(1).unwrap());
    std::thread::spawn(move || lines.for_each(drop));
    (daemon, router_dir)
}

/// The processes whose parent is `pid`, with their /proc status text.
fn children_of(pid: i32) -> Vec<(i32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| Some((p, std::fs::read_to_string(format!("/proc/{p}/status")).ok()?)))
        .filter(|(_, status)| {
            status.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["PPid:", &pid.to_string()])
        })
        .collect()
}

fn status_field<'a>(status: &'a str, field: &str) -> Vec<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.split_whitespace().collect()).unwrap_or_default()
}

fn getent_id(db: &str, name: &str) -> String {
    let o = Command::new("getent").args([db, name]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).split(':').nth(2).unwrap_or("").to_string()
}

/// With `slipway daemon` running (as root), nginx's master is root's and its workers run as
/// slipway-router, in no docker group; a push (as the git user) deploys through it, and a
/// router that stops is started again.
#[test]
fn the_daemon_runs_the_router_outside_the_docker_group() {
    let s = Server::start("daemon");
    // Deployed before the daemon: the git user's nginx serves it, until the daemon takes over.
    let app = "behind-daemon";
    let dir = s.checkout(&fixture("null/null-greeting"), app);
    let o = s.git(&dir, &["push", "slipway", "main"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s.get(app).unwrap(), (200, "null-greeting".to_string()));

    let (_daemon, router_dir) = start_daemon(&s);
    assert_eq!(s.get(app).unwrap(), (200, "null-greeting".to_string()), "served by root's router");
    // Its access log is root's router's: the daemon hands it out.
    let log = text(&s.ssh(&s.key, &format!("logs {app} --router")));
    assert!(log.contains("==> access log <==") && log.contains("\"GET / HTTP/1.0\" 200"), "{log}");
    // A change (as the git user) goes through the daemon.
    let o = s.slipway(&["ps:scale", app, "web=2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(s.get(app).unwrap(), (200, "null-greeting".to_string()));

    let master_pid = || -> i32 {
        std::fs::read_to_string(router_dir.join("nginx.pid")).unwrap_or_default().trim().parse().unwrap_or(0)
    };
    let master = master_pid();
    let status = std::fs::read_to_string(format!("/proc/{master}/status")).unwrap();
    assert_eq!(status_field(&status, "Uid:")[0], "0", "the master is root's");
    let (router_uid, docker_gid) = (getent_id("passwd", "slipway-router"), getent_id("group", "docker"));
    let workers = children_of(master);
    assert!(!workers.is_empty(), "nginx has workers");
    for (pid, status) in &workers {
        assert_eq!(status_field(status, "Uid:")[0], router_uid, "worker {pid} runs as slipway-router");
        let groups = status_field(status, "Groups:");
        assert!(!groups.contains(&docker_gid.as_str()), "worker {pid} is in the docker group: {groups:?}");
    }

    // The router stops: the daemon starts it again, and the app answers.
    unsafe { libc::kill(master, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let back = master_pid() != master && s.get(app).is_ok_and(|r| r.0 == 200);
        if back {
            break;
        }
        assert!(Instant::now() < deadline, "the router was not started again");
        std::thread::sleep(Duration::from_millis(100));
    }

    // slipway's sshd is killed: the daemon starts it again, and git's ssh commands answer.
    let pid_file = format!("/run/slipway/sshd-{}.pid", s.sshd_port);
    let sshd_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert!(std::fs::read_to_string(format!("/proc/{sshd_pid}/cmdline")).unwrap().contains("sshd"));
    unsafe { libc::kill(sshd_pid, libc::SIGKILL) };
    let killed = Instant::now();
    loop {
        let o = s.ssh(&s.key, "apps:list");
        if o.status.success() && text(&o).contains(app) {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "sshd was not started again: {}", text(&o));
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("sshd answered again {} ms after it was killed", killed.elapsed().as_millis());
    let new_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_ne!(new_pid, sshd_pid, "a new sshd");

    // The daemon stops (and with it the router and sshd); the app's containers stop too, as in
    // a reboot. Started again, it brings everything back, and nothing is redeployed.
    let releases = text(&s.slipway(&["releases", app]));
    drop(_daemon);
    assert!(s.ssh(&s.key, "apps:list").status.code() != Some(0), "sshd stopped with the daemon");
    let o = Command::new("docker").args(["ps", "-q", "--filter", &format!("label=io.slipway.app={app}")]).output();
    for id in String::from_utf8_lossy(&o.unwrap().stdout).lines() {
        Command::new("docker").args(["stop", "-t", "1", id]).output().unwrap();
    }
    assert!(!s.get(app).is_ok_and(|r| r.0 == 200), "the app is down");
    let (_daemon, _) = start_daemon(&s);
    let started = Instant::now();
    loop {
        let ssh = s.ssh(&s.key, "apps:list");
        if ssh.status.success() && s.get(app).is_ok_and(|r| r == (200, "null-greeting".to_string())) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "not back: {}", text(&ssh));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(text(&s.slipway(&["releases", app])), releases, "nothing was redeployed");
    let report = s.slipway(&["report"]);
    assert!(report.status.success(), "{}", text(&report));
    assert!(text(&report).contains("web=2/2"), "{}", text(&report));
}

/// Polls `check` every half second until it gives Some, for at most `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {} s", limit.as_secs());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `slipway install` starts the daemon (detached here: no systemd), and its scheduler runs an
/// app.json cron task every minute: each run recorded with its output and status, visible over
/// SSH; a second run of the task while one runs is refused and recorded, never overlapping. A
/// bad schedule fails the push before anything is built.
#[test]
fn the_daemon_runs_cron_tasks_on_schedule_and_never_two_at_once() {
    let s = Server::start("cron");
    let o = s.slipway(&["install", "--sshd-port", &s.sshd_port.to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("Started slipway daemon") && said.contains("at boot"), "{said}");
    let report = text(&s.slipway(&["report"]));
    assert!(report.contains("daemon") && report.contains("running (pid"), "{report}");

    let app = "ticker";
    let dir = s.checkout(&fixture("null/null-greeting"), app);
    let cron = |schedule: &str| {
        let json = format!(
            r#"{{"cron": [{{"command": "echo tick-$((6*7)); sleep 20; echo done", "schedule": "{schedule}"}}]}}"#
        );
        std::fs::write(dir.join("app.json"), json).unwrap();
        s.git(&dir, &["add", "-A"]);
        s.git(&dir, &["commit", "-qm", schedule]);
        s.git(&dir, &["push", "slipway", "main"])
    };
    let o = cron("61 * * * *");
    assert!(!o.status.success() && text(&o).contains("app.json cron[0]: minute field"), "{}", text(&o));
    assert!(!text(&s.slipway(&["releases", app])).contains("v1"), "nothing was released");
    let o = cron("* * * * *");
    assert!(o.status.success(), "{}", text(&o));
    let list = text(&s.ssh(&s.key, &format!("cron:list {app}")));
    let id = list.lines().nth(2).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    assert!(list.contains("* * * * *") && list.contains("echo tick"), "{list}");

    // Within a minute (and a bit) the scheduler starts it.
    let runs = || text(&s.ssh(&s.key, &format!("cron:runs {app}")));
    let first = wait_for(Duration::from_secs(80), "a scheduled run", || {
        let runs = runs();
        runs.lines().find(|l| l.contains("schedule")).map(|l| l.split_whitespace().next().unwrap().to_string())
    });
    // While it runs, running it by hand is refused, and recorded as not run.
    let o = s.ssh(&s.key, &format!("cron:run {app} {id}"));
    assert!(!o.status.success() && text(&o).contains("runs of a task never overlap"), "{}", text(&o));
    assert!(runs().contains("not run: its run started"), "{}", runs());
    wait_for(Duration::from_secs(60), "the run's end", || {
        runs().lines().find(|l| l.starts_with(&format!("{first} ")) && l.contains("succeeded")).map(drop)
    });
    let output = text(&s.ssh(&s.key, &format!("cron:output {app} {first}")));
    assert!(output.contains("tick-42") && output.contains("done"), "{output}");
    // By hand, once the scheduled run is over: it runs, its output shown and recorded.
    let o = s.ssh(&s.key, &format!("cron:run {app} {id}"));
    assert!(o.status.success() && text(&o).contains("tick-42"), "{}", text(&o));
    assert!(runs().lines().any(|l| l.contains("manual") && l.contains("succeeded")), "{}", runs());
    let report = s.slipway(&["report"]);
    let shown = text(&report);
    assert!(report.status.success(), "{shown}");
    assert!(shown.contains("scheduler") && shown.contains(&format!("{app:<24} {id}")), "{shown}");

    // Stopped, the daemon takes its sshd down with it; no scheduled run starts any more.
    let o = s.slipway(&["daemon", "--stop"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&s.slipway(&["report"])).contains("not running"));
    assert!(!s.ssh(&s.key, "apps:list").status.success(), "sshd stopped with the daemon");
}
