//! `make bench`: measured side by side in one run, medians of 5, printed as ratios.
//!
//! 1. Slug compression: `slipway slug generate` vs `tar -czf` (gzip -6) vs `tar | pigz` on the
//!    same tree of 200+ MB of mixed files (source-like text, logs, binaries, already-compressed
//!    data, many small files). Targets: time <= pigz's, size <= gzip -6's + 5%.
//! 2. The engine's own overhead for a null-buildpack build (total minus time inside buildpack
//!    scripts). Target: under 100 ms.
//! 3. With Docker and the stack images: each stack's image sizes (targets: run <= 400 MB, build <= 950 MB),
//!    cold and warm container builds of the Python fixture, and the time from `docker start` to
//!    the static fixture answering, release image vs the same slug extracted at start (target:
//!    the release image under 500 ms).
//! 4. The runner: the latency a zero-downtime rollout adds on top of the app's own boot
//!    (target: under 1 s; Dokku waits a fixed 10 s), and requests served / failed through the
//!    router during redeploys and scaling.
//!    Then the peak memory (RSS) of `slipway deploy` for an app with a 320 MB slug (target:
//!    under 100 MB: the slug is streamed, never held whole).
//! 5. As root: `git push` to the first 200 with the new content, warm, for the null and static
//!    fixtures over a real sshd on loopback (target: under 3 s for the null fixture).
//! 6. As root, with pebble: `letsencrypt:enable` to the first HTTPS 200, HTTPS vs HTTP
//!    requests per second for the same app (wrk), and `ps:restore --all` for 20 stopped apps
//!    (see `parts/https.rs`).
//! 7. As root: `postgres:create` + `postgres:link`, and a deploy with a linked Postgres vs
//!    without (see `parts/services.rs`).
//! 8. As root: a deploy on swarm (two engines) vs on docker-local, and `ps:scale web=1 -> 4`
//!    on swarm (see `parts/swarm.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::root;

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "parts/https.rs"]
mod https;
#[path = "parts/services.rs"]
mod services;
#[path = "parts/swarm.rs"]
mod swarm;

const RUNS: usize = 5;

/// xorshift64*: a deterministic stream, so every run measures the same tree.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "mut", "self", "return", "if", "else", "match", "struct", "impl", "pub", "use", "for", "in", "while",
    "loop", "import", "from", "def", "class", "const", "function", "var", "async", "await", "true", "false", "null",
    "None", "string", "value", "request", "response", "config", "handler", "buffer", "error", "result", "index",
    "length", "users", "session", "render", "template", "database", "query", "cache",
];

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let indent = rng.below(4) as usize * 4;
        out.extend(std::iter::repeat_n(b' ', indent));
        for _ in 0..(3 + rng.below(9)) {
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            out.push(if rng.below(7) == 0 { b'(' } else { b' ' });
        }
        if rng.below(5) == 0 {
            out.extend_from_slice(format!("{}", rng.next() % 100_000).as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

fn random(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Machine code-ish: runs of repeated structure with random operands.
fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let patterns: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            let len = 4 + rng.below(12) as usize;
            random(rng, len)
        })
        .collect();
    while out.len() < len {
        out.extend_from_slice(&patterns[rng.below(64) as usize]);
        if rng.below(3) == 0 {
            out.extend_from_slice(&rng.next().to_le_bytes()[..(1 + rng.below(4) as usize)]);
        }
        if rng.below(10) == 0 {
            out.extend(std::iter::repeat_n(0u8, rng.below(32) as usize));
        }
    }
    out.truncate(len);
    out
}

/// A 200+ MB app-like tree, made once and kept under .bench/.
fn make_tree(dir: &Path) -> u64 {
    let marker = dir.join(".complete");
    if marker.exists() {
        return std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut total = 0u64;
    let mut write = |rel: String, data: Vec<u8>| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        total += data.len() as u64;
        std::fs::write(p, data).unwrap();
    };
    // 60 MB of source files, 2-30 KB each, in nested packages (node_modules-like).
    let mut n = 0;
    let mut size = 0;
    while size < 60_000_000 {
        let len = 2_000 + rng.below(28_000) as usize;
        let rel = format!("node_modules/pkg{}/lib/sub{}/file{n}.js", n / 40, n % 7);
        write(rel, text(&mut rng, len));
        size += len;
        n += 1;
    }
    // 45 MB of logs and JSON-like data in bigger files.
    for i in 0..15 {
        write(format!("data/log{i}.txt"), text(&mut rng, 3_000_000));
    }
    // 55 MB of shared libraries / executables.
    for i in 0..11 {
        write(format!("vendor/lib/libthing{i}.so"), binary(&mut rng, 5_000_000));
    }
    // 45 MB of already-compressed assets (images, archives).
    for i in 0..30 {
        write(format!("public/assets/image{i}.png"), random(&mut rng, 1_500_000));
    }
    std::fs::write(&marker, total.to_string()).unwrap();
    total
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn sh(script: &str) {
    let status = Command::new("bash").args(["-c", script]).status().unwrap();
    assert!(status.success(), "failed: {script}");
}

fn main() {
    let slipway = env!("CARGO_BIN_EXE_slipway");
    // `make bench BENCH=https`, `BENCH=services` or `BENCH=swarm`: only part 6, 7 or 8.
    match std::env::var("BENCH").as_deref() {
        Ok("https") => return https::https_benchmarks(),
        Ok("services") => return services::services_benchmarks(),
        Ok("swarm") => return swarm::swarm_benchmarks(),
        _ => {}
    }
    let bench = root().join(".bench");
    std::fs::create_dir_all(&bench).unwrap();
    let tree = bench.join("tree");
    println!("== slug compression");
    let bytes = make_tree(&tree);
    println!("tree: {} MB of mixed files in {}", bytes / 1_000_000, tree.display());
    let out = bench.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let t = tree.display();
    let o = out.display().to_string();
    let cases: [(&str, String, PathBuf); 3] = [
        (
            "slipway slug generate",
            format!("{slipway} slug generate --app {t} -o {o}/slipway.tgz >/dev/null"),
            out.join("slipway.tgz"),
        ),
        ("tar -czf (gzip -6)", format!("tar -C {t} -czf {o}/gzip.tgz ."), out.join("gzip.tgz")),
        ("tar | pigz -6", format!("tar -C {t} -cf - . | pigz -6 > {o}/pigz.tgz"), out.join("pigz.tgz")),
    ];
    let mut results = Vec::new();
    for (name, script, file) in &cases {
        sh(script); // warm the page cache
        let runs: Vec<Duration> = (0..RUNS).map(|_| time(|| sh(script))).collect();
        let size = std::fs::metadata(file).unwrap().len();
        let m = median(runs);
        println!("{name:<24} median {:>7.2}s  size {:>6.1} MB", m.as_secs_f64(), size as f64 / 1e6);
        results.push((m, size));
    }
    let (ours, gzip, pigz) = (results[0], results[1], results[2]);
    println!("ratio time  slipway/pigz  = {:.2}  (target <= 1.00)", ours.0.as_secs_f64() / pigz.0.as_secs_f64());
    println!("ratio time  slipway/gzip  = {:.2}", ours.0.as_secs_f64() / gzip.0.as_secs_f64());
    println!("ratio size  slipway/gzip6 = {:.3} (target <= 1.050)", ours.1 as f64 / gzip.1 as f64);
    println!("ratio size  pigz/gzip6    = {:.3}", pigz.1 as f64 / gzip.1 as f64);

    println!("\n== engine overhead (null buildpack)");
    let app = root().join("fixtures/null/null-app");
    let mut overhead = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let o = Command::new(slipway)
            .args(["build", "--local", app.to_str().unwrap(), "-o", &format!("{o}/null.tgz"), "--json"])
            .output()
            .unwrap();
        walls.push(t.elapsed());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let total = summary["total_ms"].as_u64().unwrap();
        let inside = summary["in_buildpacks_ms"].as_u64().unwrap();
        overhead.push(Duration::from_millis(total - inside));
    }
    println!("whole `slipway build` wall time: median {} ms", median(walls).as_millis());
    println!(
        "engine overhead (total - inside buildpack scripts): median {} ms (target < 100 ms)",
        median(overhead).as_millis()
    );

    if docker_benchmarks(slipway, &out) {
        runner_benchmarks(slipway);
        push_benchmarks(slipway);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            https::https_benchmarks();
            services::services_benchmarks();
            swarm::swarm_benchmarks();
        }
    }
}

fn docker_ok(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().unwrap();
    assert!(o.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A docker command's output, empty when it fails.
fn docker_out(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| if o.status.success() { String::from_utf8_lossy(&o.stdout).trim().to_string() } else { String::new() })
        .unwrap_or_default()
}

/// Returns false when there is no Docker stack to measure.
fn docker_benchmarks(slipway: &str, out: &Path) -> bool {
    let have_stack = Command::new("docker")
        .args(["image", "inspect", "slipway/stack:run", "slipway/stack:build"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_stack {
        println!("\n(no Docker stack images: run `make stack-image` for the container benchmarks)");
        return false;
    }
    println!("\n== stack images (per stack: run <= 400 MB, build <= 950 MB; heroku-24: 665 / 1090 MB)");
    for suite in ["trixie", "bookworm"] {
        for (image, target, heroku) in
            [(format!("slipway/stack:{suite}"), 400.0, 665.0), (format!("slipway/stack:{suite}-build"), 950.0, 1090.0)]
        {
            let Ok(size) = docker_out(&["image", "inspect", "-f", "{{.Size}}", &image]).parse::<f64>() else {
                println!("{image:<30} not built (make stack-image)");
                continue;
            };
            let mb = size / 1e6;
            let verdict = if mb <= target { "within" } else { "OVER" };
            println!(
                "{image:<30} {mb:>7.1} MB  {verdict} the target of {target} MB; {:.2} of heroku-24's",
                mb / heroku
            );
        }
    }

    for fixture in ["python/flask", "nodejs/express"] {
        cold_and_warm_builds(slipway, out, fixture);
    }

    println!("\n== start to listening, fixtures/static/static-site");
    let static_app = "bench-static";
    let slug = out.join("static.tgz");
    let o = Command::new(slipway)
        .args(["build", root().join("fixtures/static/static-site").to_str().unwrap(), "--app", static_app])
        .arg("-o")
        .arg(&slug)
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let image = format!("slipway-app/{static_app}:latest");
    let slug_mount = format!("{}:/tmp/slug.tgz:ro", slug.display());
    let release = median((0..RUNS).map(|_| start_to_listening(&["-p", "127.0.0.1::5000", &image])).collect());
    let extracted = median(
        (0..RUNS)
            .map(|_| {
                start_to_listening(&[
                    "-p",
                    "127.0.0.1::5000",
                    "-v",
                    &slug_mount,
                    "slipway/stack:run",
                    "bash",
                    "-c",
                    "slipway slug import /tmp/slug.tgz && exec /start web",
                ])
            })
            .collect(),
    );
    println!("release image:              median {:>4} ms (target < 500 ms)", release.as_millis());
    println!("slug extracted at start:    median {:>4} ms", extracted.as_millis());
    println!("ratio release/extracted = {:.2}", release.as_secs_f64() / extracted.as_secs_f64());
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    let _ = Command::new("docker").args(["volume", "rm", "-f", &format!("slipway-cache-{static_app}")]).output();
    matrix_wall_times(slipway);
    true
}

/// A fixture built with an empty cache, then three times with the cache the first left.
fn cold_and_warm_builds(slipway: &str, out: &Path, fixture: &str) {
    println!("\n== container builds of fixtures/{fixture}");
    let app = format!("bench-{}", fixture.replace('/', "-"));
    let volume = format!("slipway-cache-{app}");
    let _ = Command::new("docker").args(["volume", "rm", "-f", &volume]).output();
    let build = |label: &str| -> Duration {
        let t = Instant::now();
        let o = Command::new(slipway)
            .args(["build", root().join("fixtures").join(fixture).to_str().unwrap(), "--app", &app, "--no-image"])
            .arg("-o")
            .arg(out.join(format!("{app}.tgz")))
            .env("CI", "true")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let took = t.elapsed();
        println!("{label:<6} build: {:>6.2}s", took.as_secs_f64());
        took
    };
    let cold = build("cold");
    let warm = median((0..3).map(|_| build("warm")).collect());
    println!("ratio warm/cold = {:.2} (target <= 0.33)", warm.as_secs_f64() / cold.as_secs_f64());
    let _ = Command::new("docker").args(["volume", "rm", "-f", &volume]).output();
}

/// The whole first-party matrix, one fixture at a time and two at a time.
fn matrix_wall_times(slipway: &str) {
    println!("\n== slipway matrix (every first-party buildpack's fixtures)");
    let mut walls = Vec::new();
    for jobs in ["1", "2"] {
        let t = Instant::now();
        let o = Command::new(slipway)
            .current_dir(root())
            .args(["matrix", "--jobs", jobs])
            .env("CI", "true")
            .output()
            .unwrap();
        let took = t.elapsed();
        let stdout = String::from_utf8_lossy(&o.stdout);
        let summary = stdout.lines().rev().find(|l| l.contains(" fixtures: ")).unwrap_or("no summary");
        println!("--jobs {jobs}: {:>7.1}s  ({summary})", took.as_secs_f64());
        walls.push(took);
    }
    println!("ratio --jobs 2 / --jobs 1 = {:.2}", walls[1].as_secs_f64() / walls[0].as_secs_f64());
}

/// `docker create ARGS`, then the time from `docker start` until GET / answers.
fn start_to_listening(create_args: &[&str]) -> Duration {
    let mut args = vec!["create", "--label", "io.slipway.managed=true"];
    args.extend_from_slice(create_args);
    let id = docker_ok(&args);
    let t = Instant::now();
    docker_ok(&["start", &id]);
    let port: u16 =
        docker_ok(&["port", &id, "5000/tcp"]).lines().next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
    let took = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut buf = String::new();
            if s.read_to_string(&mut buf).is_ok() && buf.starts_with("HTTP/1.0 200") {
                break t.elapsed();
            }
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the container never answered");
        std::thread::sleep(Duration::from_millis(5));
    };
    docker_ok(&["rm", "-f", &id]);
    took
}

fn runner_benchmarks(slipway: &str) {
    println!("\n== the runner (router on loopback)");
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = |args: &[&str]| -> String {
        let o = Command::new(slipway)
            .args(args)
            .env("SLIPWAY_DATA", data.path())
            .env("SLIPWAY_ROUTER_LISTEN", format!("127.0.0.1:{port}"))
            .env("CI", "true")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let app = "bench-runner";
    run(&["domains:set-global", "bench.test"]);
    run(&["apps:create", app]);
    run(&["deploy", app, root().join("fixtures/null/null-greeting").to_str().unwrap()]);
    let added: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let out = run(&["ps:restart", app]);
            let ms: u64 = out
                .split("slipway ")
                .nth(1)
                .and_then(|r| r.split(" ms").next())
                .and_then(|n| n.parse().ok())
                .expect("the rollout reports its own time");
            Duration::from_millis(ms)
        })
        .collect();
    println!("added deploy latency (rollout time on top of the app's boot): median {} ms (target < 1000 ms; Dokku: 10 s wait)", median(added).as_millis());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                    let ok = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut s| {
                        write!(s, "GET / HTTP/1.0\r\nHost: bench-runner.bench.test\r\n\r\n").ok()?;
                        let mut r = String::new();
                        s.read_to_string(&mut r).ok()?;
                        r.starts_with("HTTP/1.1 200").then_some(())
                    });
                    let counter = if ok.is_some() { &served } else { &failed };
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..3 {
        run(&["config:set", app, &format!("GREETING=round-{i}")]);
    }
    run(&["ps:scale", app, "web=3"]);
    run(&["ps:scale", app, "web=1"]);
    while started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    println!(
        "load during 3 redeploys and scale 1 -> 3 -> 1 ({} s): {} requests served, {} failed",
        started.elapsed().as_secs(),
        served.load(std::sync::atomic::Ordering::Relaxed),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    run(&["apps:destroy", app, "--force"]);
    deploy_memory(slipway, data.path(), port);
    if let Ok(pid) = std::fs::read_to_string(data.path().join("nginx/nginx.pid")) {
        let _ = Command::new("kill").arg(pid.trim()).output();
    }
}

/// Peak memory (RSS) of `slipway deploy` for an app whose slug is over 300 MB (incompressible
/// data): the slug is streamed out of the build container and into the release image, never
/// held whole. Target: under 100 MB.
fn deploy_memory(slipway: &str, data: &Path, port: u16) {
    let src = tempfile::tempdir().unwrap();
    for f in ["Procfile", "server.py"] {
        std::fs::copy(root().join("fixtures/null/null-greeting").join(f), src.path().join(f)).unwrap();
    }
    // Written in chunks: this process never holds the blob (a child's peak memory counts its
    // parent's from before the exec, so it is read from /proc below instead).
    let mut rng = Rng(0x5eed_0fb1);
    let mut blob = std::io::BufWriter::new(std::fs::File::create(src.path().join("blob.bin")).unwrap());
    for _ in 0..320 {
        std::io::Write::write_all(&mut blob, &random(&mut rng, 1_000_000)).unwrap();
    }
    std::io::Write::flush(&mut blob).unwrap();
    drop(blob);
    let app = "bench-big";
    let env = |c: &mut Command| {
        c.env("SLIPWAY_DATA", data).env("SLIPWAY_ROUTER_LISTEN", format!("127.0.0.1:{port}")).env("CI", "true");
    };
    let mut create = Command::new(slipway);
    env(&mut create);
    assert!(create.args(["apps:create", app]).output().unwrap().status.success());
    let mut deploy = Command::new(slipway);
    env(&mut deploy);
    let log = src.path().join("deploy.log");
    let mut child = deploy
        .args(["deploy", app, src.path().to_str().unwrap()])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    // VmHWM: the deploy's own peak resident memory so far, sampled until it exits.
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse::<u64>().ok());
        peak_kb = peak_kb.max(hwm.unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "the big deploy failed:\n{text}");
    let slug = text.lines().find(|l| l.contains("Compressed slug")).unwrap_or("(slug size not printed)").trim();
    println!("peak RSS of `slipway deploy` ({slug}): {:.1} MB (target < 100 MB)", peak_kb as f64 * 1024.0 / 1e6);
    let mut destroy = Command::new(slipway);
    env(&mut destroy);
    let _ = destroy.args(["apps:destroy", app, "--force"]).output();
}

fn push_benchmarks(slipway: &str) {
    if unsafe { libc::geteuid() } != 0 {
        println!("\n(not root: skipping the git push benchmark, which sets up a git user and sshd)");
        return;
    }
    println!("\n== git push to first 200 (warm: the second and later pushes)");
    let data = PathBuf::from("/srv/slipway-bench");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let work = tempfile::tempdir().unwrap();
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (router, sshd) = (free(), free());
    let run = |args: &[&str]| {
        let o = Command::new(slipway)
            .args(args)
            .env("SLIPWAY_DATA", &data)
            .env("SLIPWAY_GIT_USER", "slipwaybench")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&["install", "--sshd-port", &sshd.to_string()]);
    run(&["--router-listen", &format!("127.0.0.1:{router}"), "domains:set-global", "bench.test"]);
    let key = work.path().join("id");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let _ = Command::new(slipway).args(["ssh-keys:remove", "bench"]).env("SLIPWAY_GIT_USER", "slipwaybench").output();
    run(&["ssh-keys:add", "bench", key.with_extension("pub").to_str().unwrap()]);
    let ssh = format!(
        "ssh -i {} -p {sshd} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        key.display()
    );
    for (fixture, app, file, marker) in [
        ("null/null-greeting", "bench-null", "server.py", "null-greeting"),
        ("static/static-site", "bench-static", "index.html", "static-site"),
    ] {
        let dir = work.path().join(app);
        assert!(Command::new("cp")
            .arg("-r")
            .arg(root().join("fixtures").join(fixture))
            .arg(&dir)
            .status()
            .unwrap()
            .success());
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .args(["-c", "user.name=b", "-c", "user.email=b@b"])
                .args(args)
                .current_dir(&dir)
                .env("GIT_SSH_COMMAND", &ssh)
                .output()
                .unwrap();
            assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "-A"]);
        git(&["commit", "-qm", "0"]);
        git(&["remote", "add", "slipway", &format!("slipwaybench@127.0.0.1:{app}")]);
        git(&["push", "-q", "slipway", "main"]);
        let times: Vec<Duration> = (1..=3)
            .map(|i| {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                let new = format!("{marker}-{i}");
                let previous = if i == 1 { marker.to_string() } else { format!("{marker}-{}", i - 1) };
                std::fs::write(dir.join(file), text.replace(&previous, &new)).unwrap();
                git(&["commit", "-qam", &i.to_string()]);
                let t = Instant::now();
                git(&["push", "-q", "slipway", "main"]);
                loop {
                    use std::io::{Read, Write};
                    let body = std::net::TcpStream::connect(("127.0.0.1", router)).ok().and_then(|mut s| {
                        write!(s, "GET / HTTP/1.0\r\nHost: {app}.bench.test\r\n\r\n").ok()?;
                        let mut r = String::new();
                        s.read_to_string(&mut r).ok()?;
                        Some(r)
                    });
                    if body.is_some_and(|b| b.starts_with("HTTP/1.1 200") && b.contains(&new)) {
                        break t.elapsed();
                    }
                    assert!(t.elapsed() < Duration::from_secs(60), "the new content never answered");
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .collect();
        println!(
            "{fixture:<20} push to first 200: median {:>5} ms{}",
            median(times).as_millis(),
            if app == "bench-null" { " (target < 3000 ms)" } else { "" }
        );
        run(&["apps:destroy", app, "--force"]);
    }
    let _ = Command::new(slipway).args(["ssh-keys:remove", "bench"]).env("SLIPWAY_GIT_USER", "slipwaybench").output();
    for pid in [data.join("nginx/nginx.pid"), PathBuf::from(format!("/run/slipway/sshd-{sshd}.pid"))] {
        if let Ok(p) = std::fs::read_to_string(pid) {
            let _ = Command::new("kill").arg(p.trim()).output();
        }
    }
    let _ = std::fs::remove_dir_all(&data);
}
