//! The swarm scheduler on two real Docker engines: this host's, made a swarm manager, and a
//! second one in a network namespace of its own that joins as a worker (`common::cluster`).
//! Images go through the local registry (Debian's docker-registry) that `slipway daemon` runs;
//! traffic goes through the daemon's router to the tasks' node addresses.
//!
//! This kernel has no IPVS, so swarm's routing mesh cannot run here (nor on many small VPS
//! kernels): the design does without it (web tasks publish their port on their own node,
//! the router follows the tasks), which is what these tests exercise.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{swarm_state, Load, SecondNode, MANAGER_ADDR, WORKER_ADDR};
use common::*;

const USER: &str = "slipwaycluster";
const APP: &str = "fleet";

/// A platform with `slipway daemon` running (its router, registry and task following).
struct Host {
    exe: PathBuf,
    data: PathBuf,
    router_port: u16,
    sshd_port: u16,
    daemon: Option<Child>,
}

impl Host {
    fn start() -> Host {
        let data = PathBuf::from("/srv/slipway-test-cluster");
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let exe_dir = PathBuf::from("/srv/slipway-test-cluster-bin");
        std::fs::create_dir_all(&exe_dir).unwrap();
        let exe = exe_dir.join("slipway");
        std::fs::copy(bin(), &exe).unwrap();
        let mut h = Host { exe, data, router_port: free_port(), sshd_port: free_port(), daemon: None };
        let listen = format!("127.0.0.1:{}", h.router_port);
        h.ok(&["--router-listen", &listen, "domains:set-global", "cluster.test"]);
        h.ok(&["install", "--sshd-port", &h.sshd_port.to_string(), "--no-daemon"]);
        let mut child = h.cmd(&["daemon"]).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        h.daemon = Some(child);
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
        assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains("its router is in ")), "the daemon started");
        std::thread::spawn(move || lines.for_each(drop));
        h
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(args).env("SLIPWAY_DATA", &self.data).env("SLIPWAY_GIT_USER", USER).env("CI", "true");
        c
    }

    fn slipway(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.slipway(args);
        assert!(o.status.success(), "slipway {args:?} failed:\n{}", text(&o));
        text(&o)
    }

    fn get(&self) -> Result<(u16, String), String> {
        common::platform::get_via(self.router_port, &format!("{APP}.cluster.test"))
    }

    /// The upstreams of the app's router entry (root's copy, which nginx serves).
    fn upstreams(&self) -> Vec<String> {
        let report = self.ok(&["ps:report", APP, "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&report).unwrap();
        let mut serving: Vec<String> = v["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["type"] == "web" && p["running"] == true)
            .filter_map(|p| p["endpoint"].as_str().map(str::to_string))
            .collect();
        serving.sort();
        serving
    }

    fn router_entry(&self) -> String {
        std::fs::read_to_string(self.data.join("nginx/apps").join(format!("{APP}.conf"))).unwrap_or_default()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.slipway(&["apps:destroy", APP, "--force"]);
        if let Some(mut daemon) = self.daemon.take() {
            // SAFETY: a signal to the daemon this test started.
            unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
            let _ = daemon.wait();
        }
        let _ = self.slipway(&["ssh-keys:list"]);
        if let Ok(pid) = std::fs::read_to_string(format!("/run/slipway/sshd-{}.pid", self.sshd_port)) {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
        let _ = Command::new("docker").args(["swarm", "leave", "--force"]).output();
        let _ = std::fs::remove_dir_all(format!("/etc/docker/certs.d/{MANAGER_ADDR}:5000"));
        let _ = std::fs::remove_dir_all(format!("/etc/slipway/sshd-{}", self.sshd_port));
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what} did not happen within {} s", within.as_secs());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Under a bounded request loop: `f` runs; no request fails.
fn without_failures(h: &Host, body: &str, what: &str, f: impl FnOnce()) {
    let load = Load::start(h.router_port, &format!("{APP}.cluster.test"), body);
    std::thread::sleep(Duration::from_millis(500));
    f();
    std::thread::sleep(Duration::from_millis(500));
    let (ok, failed) = load.finish();
    eprintln!("{what}: {ok} requests answered, {} failed", failed.len());
    assert!(ok > 20, "{what}: the request loop ran ({ok} answered)");
    assert!(failed.is_empty(), "{what}: {} requests failed: {:?}", failed.len(), failed);
}

/// Two nodes; an app with web=2 runs a task on each, its config as secrets (never in `docker
/// service inspect`); a redeploy and `ps:scale web=1 -> 3 -> 1` under a request loop lose no
/// request; a deploy whose healthcheck fails is rolled back by swarm and the old release
/// answers; `run` is a swarm job; `rollback` points the services at the older release; when
/// the second engine stops, its task moves to the first node, the daemon's router follows, and
/// the request loop sees no failure; `cluster:remove` takes the node out.
#[test]
fn apps_on_swarm_spread_roll_and_survive_a_node() {
    require_root("it starts a second Docker engine in a network namespace and makes this engine a swarm manager");
    assert_eq!(
        swarm_state(),
        "inactive",
        "this host's Docker engine is in a swarm already; the test makes one of its own (`docker swarm leave --force`)"
    );
    let mut node = SecondNode::start();
    let h = Host::start();
    let init = h.ok(&["cluster:init", "--advertise-addr", MANAGER_ADDR]);
    assert!(init.contains("manager of a new swarm"), "{init}");
    let join = h.ok(&["cluster:join-token"]);
    node.join(join.lines().next().unwrap());
    wait_for("two ready nodes", Duration::from_secs(30), || h.ok(&["cluster:list"]).matches(" ready ").count() == 2);

    // The routing mesh needs IPVS: where the kernel has none, it does not answer, and slipway's
    // design (mode=host ports, the router following the tasks) is what runs below.
    let mesh = common::cluster::routing_mesh("slipway/stack:run", free_port());
    match &mesh {
        Ok(()) => eprintln!("swarm's routing mesh works on this kernel"),
        Err(e) => eprintln!("swarm's routing mesh does not work on this kernel (no IPVS): {e}"),
    }
    assert_eq!(
        mesh.is_ok(),
        common::cluster::kernel_has_ipvs(),
        "the mesh works exactly where the kernel has IPVS: {mesh:?}"
    );

    h.ok(&["apps:create", APP]);
    h.ok(&["scheduler:set", APP, "selected", "swarm"]);
    assert!(h.ok(&["scheduler:report", APP]).contains("Scheduler computed selected: swarm"));
    h.ok(&["ps:scale", APP, "web=2"]);
    h.ok(&["config:set", "--no-restart", APP, "GREETING=hello-swarm"]);
    let out = h.ok(&["deploy", APP, fixture("null/null-greeting").to_str().unwrap()]);
    assert!(out.contains("to the swarm's registry") && out.contains("is serving on swarm"), "{out}");
    assert_eq!(h.get(), Ok((200, "hello-swarm".into())), "{out}\n{}", h.router_entry());
    let nodes: std::collections::BTreeSet<String> =
        h.upstreams().iter().map(|e| e.split(':').next().unwrap().to_string()).collect();
    assert_eq!(nodes, [MANAGER_ADDR.to_string(), WORKER_ADDR.to_string()].into(), "a task on each node");
    let inspect = String::from_utf8_lossy(
        &Command::new("docker").args(["service", "inspect", &format!("{APP}_web")]).output().unwrap().stdout,
    )
    .into_owned();
    assert!(inspect.contains("\"Replicas\": 2") && !inspect.contains("hello-swarm"), "config stays out of inspect");
    let registry = h.ok(&["registry:report"]);
    assert!(registry.contains(&format!("{MANAGER_ADDR}:5000")), "{registry}");

    without_failures(&h, "hello-swarm", "a redeploy", || {
        h.ok(&["ps:restart", APP]);
    });
    without_failures(&h, "hello-swarm", "ps:scale web=1 -> 3 -> 1", || {
        let t = Instant::now();
        h.ok(&["ps:scale", APP, "web=1"]);
        eprintln!("web=1 at {} ms: {}", t.elapsed().as_millis(), h.router_entry());
        h.ok(&["ps:scale", APP, "web=3"]);
        eprintln!("web=3 at {} ms: {}", t.elapsed().as_millis(), h.router_entry());
        assert_eq!(h.upstreams().len(), 3);
        h.ok(&["ps:scale", APP, "web=1"]);
        eprintln!("web=1 at {} ms: {}", t.elapsed().as_millis(), h.router_entry());
    });
    assert_eq!(h.upstreams().len(), 1);

    // A release whose healthcheck fails: swarm rolls it back by itself.
    let o = h.slipway(&["deploy", APP, fixture("broken/failing-check").to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("rolled the web service back") && text(&o).contains("keeps serving"), "{}", text(&o));
    assert_eq!(h.get(), Ok((200, "hello-swarm".into())), "the old release answers");

    let run = h.slipway(&["run", APP, "sh", "-c", "echo from-a-job:$GREETING; exit 7"]);
    assert_eq!(run.status.code(), Some(7), "{}", text(&run));
    assert!(text(&run).contains("from-a-job:hello-swarm"), "{}", text(&run));
    let logs = h.slipway(&["logs", APP, "-n", "5"]);
    assert!(logs.status.success(), "{}", text(&logs));

    h.ok(&["config:set", APP, "GREETING=second"]);
    assert_eq!(h.get(), Ok((200, "second".into())));
    h.ok(&["rollback", APP]);
    assert_eq!(h.get(), Ok((200, "hello-swarm".into())), "rolled back to the older release");

    // One task per node, then the second node goes down.
    h.ok(&["ps:scale", APP, "web=2"]);
    assert!(h.upstreams().iter().any(|e| e.starts_with(WORKER_ADDR)), "{:?}", h.upstreams());
    without_failures(&h, "hello-swarm", "the second engine stopping", || {
        node.stop();
        wait_for("the task to move to this node and the router to follow", Duration::from_secs(90), || {
            let up = h.upstreams();
            up.len() == 2 && up.iter().all(|e| e.starts_with(MANAGER_ADDR)) && {
                let entry = h.router_entry();
                up.iter().all(|e| entry.contains(&format!("server {e} ")))
            }
        });
    });
    let worker = h.ok(&["cluster:list", "--format", "json"]);
    let nodes: serde_json::Value = serde_json::from_str(&worker).unwrap();
    let id = nodes.as_array().unwrap().iter().find(|n| n["address"] == WORKER_ADDR).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.ok(&["cluster:remove", &id]);
    assert!(!h.ok(&["cluster:list"]).contains(WORKER_ADDR));
}
