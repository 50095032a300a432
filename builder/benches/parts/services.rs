//! `make bench`, part 7 (as root, with Docker): `postgres:create` + `postgres:link` for a
//! deployed app (the service image already made), and a deploy of the same app with a linked
//! Postgres vs without (medians of 3, side by side; the ratio's target: under 1.10).

use std::time::{Duration, Instant};

use crate::common::{fixture, free_port};
use crate::https::Bench;

const RUNS: usize = 3;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

pub fn services_benchmarks() {
    println!("\n== backing services");
    let b = Bench { data: tempfile::tempdir().unwrap(), port: free_port(), https_port: free_port() };
    b.run(&["domains:set-global", "bench.test"], &[]);
    let source = fixture("services/python-pg-redis");
    let source = source.to_str().unwrap();
    for app in ["bench-plain", "bench-linked"] {
        b.run(&["apps:create", app], &[]);
        b.run(&["deploy", app, source], &[]);
    }
    // The service image is made once per machine: not part of what is measured.
    let warm = format!("benchwarm{}", std::process::id());
    b.run(&["postgres:create", &warm], &[]);
    b.run(&["postgres:destroy", &warm, "--force"], &[]);
    let mut created = Vec::new();
    let mut linked = Vec::new();
    for i in 0..RUNS {
        let name = format!("bench{}x{i}", std::process::id());
        let t = Instant::now();
        b.run(&["postgres:create", &name], &[]);
        created.push(t.elapsed());
        b.run(&["postgres:link", &name, "bench-linked"], &[]);
        linked.push(t.elapsed());
        if i + 1 < RUNS {
            b.run(&["postgres:unlink", &name, "bench-linked"], &[]);
            b.run(&["postgres:destroy", &name, "--force"], &[]);
        }
    }
    println!("postgres:create                 median {:>6} ms", median(created).as_millis());
    println!("postgres:create + postgres:link median {:>6} ms", median(linked).as_millis());
    let (mut plain, mut with_link) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (app, into) in [("bench-plain", &mut plain), ("bench-linked", &mut with_link)] {
            let t = Instant::now();
            b.run(&["deploy", app, source], &[]);
            into.push(t.elapsed());
        }
    }
    let (plain, with_link) = (median(plain), median(with_link));
    println!("deploy without a link           median {:>6} ms", plain.as_millis());
    println!("deploy with a linked Postgres   median {:>6} ms", with_link.as_millis());
    println!("ratio deploy linked/plain = {:.2} (target < 1.10)", with_link.as_secs_f64() / plain.as_secs_f64());
    let last = format!("bench{}x{}", std::process::id(), RUNS - 1);
    b.run(&["postgres:unlink", &last, "bench-linked"], &[]);
    b.run(&["postgres:destroy", &last, "--force"], &[]);
}
