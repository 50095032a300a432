//! A second Docker engine for the cluster tests: its own network namespace (a veth pair to
//! this host: 10.231.77.1 here, 10.231.77.2 there), data-root, exec-root and socket; it joins the
//! swarm this host's engine manages as a worker. Test traffic goes only to those two addresses.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::text;

pub const MANAGER_ADDR: &str = "10.231.77.1";
pub const WORKER_ADDR: &str = "10.231.77.2";
const NETNS: &str = "slipway-node2";
const VETH: &str = "slw-node2";
const VETH_INSIDE: &str = "slw-node2-in";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn must(program: &str, args: &[&str]) {
    let o = run(program, args);
    assert!(o.status.success(), "{program} {args:?} failed: {}", text(&o));
}

/// The main engine's swarm state (`inactive`, `active`).
pub fn swarm_state() -> String {
    let o = run("docker", &["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The other node: a dockerd in its own network namespace, stopped and removed when dropped.
pub struct SecondNode {
    dir: PathBuf,
    dockerd: Option<Child>,
}

impl SecondNode {
    pub fn start() -> SecondNode {
        let dir = PathBuf::from("/tmp/slipway-test-node2");
        Self::remove_network();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        must("ip", &["netns", "add", NETNS]);
        must("ip", &["link", "add", VETH, "type", "veth", "peer", "name", VETH_INSIDE]);
        must("ip", &["link", "set", VETH_INSIDE, "netns", NETNS]);
        must("ip", &["addr", "add", &format!("{MANAGER_ADDR}/24"), "dev", VETH]);
        must("ip", &["link", "set", VETH, "up"]);
        let inside = |args: &[&str]| must("ip", &[&["netns", "exec", NETNS, "ip"], args].concat());
        inside(&["addr", "add", &format!("{WORKER_ADDR}/24"), "dev", VETH_INSIDE]);
        inside(&["link", "set", VETH_INSIDE, "up"]);
        inside(&["link", "set", "lo", "up"]);
        // nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroups dockerd needs.
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let d = dir.display();
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{NETNS}"))
            .args(["dockerd", "--data-root", &format!("{d}/data"), "--exec-root", &format!("{d}/exec")])
            .args(["-H", &format!("unix://{d}/docker.sock"), "--pidfile", &format!("{d}/docker.pid")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start the second dockerd");
        let node = SecondNode { dir, dockerd: Some(child) };
        let started = Instant::now();
        while !node.docker(&["info"]).status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the second dockerd did not start: {}",
                std::fs::read_to_string(node.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        node
    }

    /// `docker` against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        let host = format!("unix://{}/docker.sock", self.dir.display());
        Command::new("docker").arg("-H").arg(host).args(args).output().unwrap()
    }

    /// Joins the swarm as a worker with Docker's own `swarm join`.
    pub fn join(&self, command: &str) {
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(&words[..3], ["docker", "swarm", "join"], "not a join command: {command}");
        let mut args = words[1..].to_vec();
        args.extend(["--advertise-addr", WORKER_ADDR]);
        let o = self.docker(&args);
        assert!(o.status.success(), "the second engine did not join: {}", text(&o));
    }

    /// Stops the engine as a host going down would (SIGTERM: its containers stop with it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.dockerd.take() {
            // SAFETY: a signal to the dockerd this test started.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn remove_network() {
        let _ = run("ip", &["netns", "del", NETNS]);
        let _ = run("ip", &["link", "del", VETH]);
    }
}

impl Drop for SecondNode {
    fn drop(&mut self) {
        self.stop();
        Self::remove_network();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this kernel has IPVS, which swarm's routing mesh (ingress, VIPs) needs.
pub fn kernel_has_ipvs() -> bool {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        return true;
    }
    let o = run("sh", &["-c", "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null"]);
    String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "CONFIG_IP_VS=y" || l == "CONFIG_IP_VS=m")
}

/// Swarm's routing mesh, tried as Docker documents it: a service publishing `port` in ingress
/// mode, asked at this node's swarm address for up to 20 s. Ok, or the exact errors seen (the request's and
/// the task's).
pub fn routing_mesh(image: &str, port: u16) -> Result<(), String> {
    let name = "slipway-mesh-probe";
    let _ = run("docker", &["service", "rm", name]);
    let publish = format!("published={port},target=5000,mode=ingress");
    let o = run(
        "docker",
        &[
            "service",
            "create",
            "-d",
            "--name",
            name,
            "--publish",
            &publish,
            "--constraint",
            "node.role==manager",
            image,
            "python3",
            "-m",
            "http.server",
            "5000",
        ],
    );
    let mut result = Err(format!("cannot create the service: {}", text(&o).trim()));
    if o.status.success() {
        let started = Instant::now();
        result = loop {
            let last = match http_status(MANAGER_ADDR, port) {
                Ok(_) => break Ok(()),
                Err(e) => e,
            };
            if started.elapsed() > Duration::from_secs(20) {
                let task =
                    run("docker", &["service", "ps", "--no-trunc", "--format", "{{.CurrentState}} {{.Error}}", name]);
                break Err(format!(
                    "GET {MANAGER_ADDR}:{port}: {last}; task: {}",
                    String::from_utf8_lossy(&task.stdout).trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        };
    }
    let _ = run("docker", &["service", "rm", name]);
    result
}

/// GET / at `addr:port`: the status line's code.
fn http_status(addr: &str, port: u16) -> Result<u16, String> {
    use std::io::{Read, Write};
    let target: std::net::SocketAddr = format!("{addr}:{port}").parse().map_err(|e| format!("{e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "GET / HTTP/1.0\r\nHost: mesh.test\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    s.read_to_string(&mut response).map_err(|e| e.to_string())?;
    response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| "no status line".to_string())
}

/// Requests through the router, one every 20 ms, until stopped (at most 6000, or 3 minutes):
/// how many answered 200 with the expected body, and the failures.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Load {
    pub fn start(port: u16, host: &str, body: &str) -> Load {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, host, body) = (stop.clone(), host.to_string(), body.to_string());
        let handle = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            let started = Instant::now();
            for _ in 0..6000 {
                if flag.load(Ordering::SeqCst) || started.elapsed() > Duration::from_secs(180) {
                    break;
                }
                match super::platform::get_via(port, &host) {
                    Ok((200, b)) if b == body => ok += 1,
                    other => failed.push(format!("at {} ms: {other:?}", started.elapsed().as_millis())),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (ok, failed)
        });
        Load { stop, handle: Some(handle) }
    }

    pub fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}
