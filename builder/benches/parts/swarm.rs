//! `make bench`, part 8 (as root, with Docker): the swarm scheduler on two engines (this
//! host's as manager, a second one in a network namespace of its own as worker; see
//! `tests/common/cluster.rs`). A deploy of the same app on swarm vs on docker-local (medians of
//! 3, side by side, each after a warm-up deploy; the ratio's target: under 2.0), and
//! `ps:scale web=1 -> 4` on swarm (median of 3; target: under 10 s).

use std::process::Command;
use std::time::Instant;

use crate::common::cluster::{swarm_state, SecondNode, MANAGER_ADDR};
use crate::common::{fixture, free_port};
use crate::https::Bench;
use crate::median;

const RUNS: usize = 3;

pub fn swarm_benchmarks() {
    println!("\n== swarm scheduler");
    assert_eq!(
        swarm_state(),
        "inactive",
        "this host's Docker engine is in a swarm already: the bench makes its own (`docker swarm leave --force` first)"
    );
    let node = SecondNode::start();
    let b = Bench { data: tempfile::tempdir().unwrap(), port: free_port(), https_port: free_port() };
    b.run(&["domains:set-global", "bench.test"], &[]);
    b.run(&["cluster:init", "--advertise-addr", MANAGER_ADDR], &[]);
    node.join(b.run(&["cluster:join-token"], &[]).lines().next().unwrap());
    let source = fixture("null/null-greeting");
    let source = source.to_str().unwrap();
    for app in ["bench-local", "bench-swarm"] {
        b.run(&["apps:create", app], &[]);
    }
    b.run(&["scheduler:set", "bench-swarm", "selected", "swarm"], &[]);
    // Warm: the stack's layers pushed to the registry and pulled on the worker once.
    b.run(&["ps:scale", "bench-swarm", "web=2"], &[]);
    for app in ["bench-local", "bench-swarm"] {
        b.run(&["deploy", app, source], &[]);
    }
    b.run(&["ps:scale", "bench-swarm", "web=1"], &[]);
    let (mut local, mut swarm) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (app, into) in [("bench-local", &mut local), ("bench-swarm", &mut swarm)] {
            let t = Instant::now();
            b.run(&["deploy", app, source], &[]);
            into.push(t.elapsed());
        }
    }
    let (local, swarm) = (median(local), median(swarm));
    println!("deploy on docker-local          median {:>6} ms", local.as_millis());
    println!("deploy on swarm (2 nodes)       median {:>6} ms", swarm.as_millis());
    println!("ratio deploy swarm/docker-local = {:.2} (target < 2.0)", swarm.as_secs_f64() / local.as_secs_f64());
    let mut scale = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        b.run(&["ps:scale", "bench-swarm", "web=4"], &[]);
        scale.push(t.elapsed());
        b.run(&["ps:scale", "bench-swarm", "web=1"], &[]);
    }
    println!("ps:scale web=1 -> 4 on swarm    median {:>6} ms (target < 10000)", median(scale).as_millis());
    for app in ["bench-local", "bench-swarm"] {
        b.run(&["apps:destroy", app, "--force"], &[]);
    }
    if let Ok(pid) = std::fs::read_to_string(b.data.path().join("registry/registry.pid")) {
        let _ = Command::new("kill").arg(pid.trim()).output();
    }
    let _ = Command::new("docker").args(["swarm", "leave", "--force"]).output();
    let _ = std::fs::remove_dir_all(format!("/etc/docker/certs.d/{MANAGER_ADDR}:5000"));
    drop(node);
}
