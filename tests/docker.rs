//! Docker integration tests, with the real engine: builds in the stack image, release images
//! started with their port published on 127.0.0.1, Dockerfile apps, the cache, and broken
//! inputs that must fail clearly and leave no container behind.
//!
//! They need the stack images (`make stack-image`, which `make test` runs first).

#[path = "common/mod.rs"]
mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("the docker CLI runs")
}

fn require_stack() {
    let o = docker(&["image", "inspect", "slipway/stack:build", "slipway/stack:run"]);
    assert!(o.status.success(), "the stack images are missing: run `make stack-image` first");
}

/// Containers of one app, in any state.
fn containers_of(app: &str) -> Vec<String> {
    let o = docker(&["ps", "-aq", "--filter", &format!("label=io.slipway.app={app}")]);
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

/// Removes what a test made: containers, the app's images and cache volume.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in containers_of(&self.0) {
            docker(&["rm", "-f", &id]);
        }
        docker(&["rmi", "-f", &format!("slipway-app/{}:latest", self.0)]);
        docker(&["volume", "rm", "-f", &format!("slipway-cache-{}", self.0)]);
    }
}

fn build(dir: &Path, app: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let slug = out.path().join("app.slug.tgz");
    let mut args = vec!["build", dir.to_str().unwrap(), "--app", app, "-o", slug.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = Command::new(bin()).args(&args).env("CI", "true").env_remove("BUILDPACK_URL").output().unwrap();
    let json = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, json)
}

/// Starts `image` with `slipway run-image --detach`; returns the published port.
fn run_detached(image: &str, process_type: &str) -> u16 {
    let o = Command::new(bin()).args(["run-image", image, process_type, "--detach"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let url = out.split("http://127.0.0.1:").nth(1).expect("a URL is printed");
    url.split('/').next().unwrap().parse().unwrap()
}

fn get_root(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(body) = slipway::get(port, "/", Duration::from_secs(5)) {
            if body.0 == 200 {
                return body.1.trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "nothing answered on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Builds a fixture in a container, runs its release image, checks `/`. The returned guard
/// removes the app's containers, image and cache when dropped.
fn build_run_and_check(fixture_path: &str, app: &str, expected: &str) -> (serde_json::Value, Cleanup) {
    require_stack();
    let cleanup = Cleanup(app.to_string());
    let (o, json) = build(&fixture(fixture_path), app, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let image = json["image"].as_str().expect("an image was made").to_string();
    let port = run_detached(&image, "web");
    assert_eq!(get_root(port), expected, "{fixture_path}");
    (json, cleanup)
}

#[test]
fn null_fixture_in_a_container() {
    build_run_and_check("null/null-app", "t-null-app", "null-app");
}

#[test]
fn static_fixture_release_image_is_owned_by_the_app_user() {
    let (json, _cleanup) = build_run_and_check("static/static-site", "t-static-site", "static-site");
    let image = json["image"].as_str().unwrap();
    let o = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "stat",
        image,
        "-c",
        "%u:%g",
        "/app",
        "/app/Procfile",
        "/app/index.html",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().collect::<Vec<_>>(), ["32767:32767"; 3], "{}", text(&o));
    let labels = docker(&["image", "inspect", "-f", "{{json .Config.Labels}}", image]);
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).unwrap();
    assert_eq!(labels["io.slipway.app"], "t-static-site");
    assert_eq!(labels["io.slipway.buildpack"], "Static");
    assert!(labels["io.slipway.process-types"].as_str().unwrap().contains("static-server"));
}

/// Real dependencies from PyPI through the CA bundle; the second build reads the cache.
#[test]
fn python_fixture_with_dependencies_and_a_warm_cache() {
    require_stack();
    let app = "t-flask";
    let _cleanup = Cleanup(app.to_string());
    let (o, _) = build(&fixture("python/flask"), app, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("cached wheels from the previous build"), "the first build has no cache");
    let (o, _) = build(&fixture("python/flask"), app, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(log.contains("Requirements unchanged: reusing the virtualenv"), "the cached venv was not used:\n{log}");
    assert!(!log.contains("Installing dependencies"), "{log}");
    // Changed requirements: pip runs again, from the wheels the first build cached.
    let changed = tempfile::tempdir().unwrap();
    let app_dir = changed.path().join("flask");
    std::fs::create_dir_all(&app_dir).unwrap();
    for f in ["app.py", "requirements.txt"] {
        std::fs::copy(fixture("python/flask").join(f), app_dir.join(f)).unwrap();
    }
    let mut reqs = std::fs::read_to_string(app_dir.join("requirements.txt")).unwrap();
    reqs.push_str("# changed\n");
    std::fs::write(app_dir.join("requirements.txt"), reqs).unwrap();
    let (o, json) = build(&app_dir, app, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    assert!(log.contains("cached wheels from the previous build"), "{log}");
    assert!(log.contains("Installed from the wheel cache, nothing downloaded"), "the cache was not used:\n{log}");
    let port = run_detached(json["image"].as_str().unwrap(), "web");
    assert_eq!(get_root(port), "flask");
}

#[test]
fn nodejs_fixture_with_dependencies_from_npm() {
    let (json, _cleanup) = build_run_and_check("nodejs/express", "t-express", "express");
    assert_eq!(json["process_types"]["web"], "npm start");
    // Unchanged package files: node_modules comes back from the cache and npm installs nothing.
    let (o, _) = build(&fixture("nodejs/express"), "t-express", &["--no-image"]);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("Dependencies unchanged: reusing node_modules from the previous build"), "{log}");
    assert!(!log.contains("npm ci"), "{log}");
}

/// engines.node: Node.js 22 from the npm registry (not the stack's 18), then from the cache.
#[test]
fn nodejs_engines_downloads_the_runtime_once() {
    let (_, _cleanup) = build_run_and_check("nodejs/node-engines", "t-node-engines", "node-engines");
    let (o, _) = build(&fixture("nodejs/node-engines"), "t-node-engines", &["--no-image"]);
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("for engines.node \"22.x\" (from the build cache)"), "{log}");
    assert!(log.contains("-----> Using Node.js v22."), "{log}");
}

#[test]
fn dockerfile_app_uses_expose_dockerignore_and_procfile() {
    require_stack();
    let app = "t-dockerfile-app";
    let _cleanup = Cleanup(app.to_string());
    let (o, json) = build(&fixture("dockerfile/dockerfile-app"), app, &["--build-args", "-e", "GREETING=from-config"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json["port"], 8080, "EXPOSE 8080 becomes PORT");
    let greeting = docker(&["run", "--rm", json["image"].as_str().unwrap(), "cat", "/srv/greeting.txt"]);
    assert_eq!(String::from_utf8_lossy(&greeting.stdout).trim(), "from-config", "config vars became build args");
    let image = json["image"].as_str().unwrap();
    let port = run_detached(image, "web");
    assert_eq!(get_root(port), "dockerfile-app");
    let o = docker(&["run", "--rm", image, "ls", "/srv"]);
    let files = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(files.contains("server.py") && !files.contains("ignored.txt"), ".dockerignore was not honoured: {files}");
    // The Procfile's worker overrides the command for that process type.
    let before = containers_of(app).len();
    let o = Command::new(bin()).args(["run-image", image, "worker"]).output().unwrap();
    assert!(text(&o).contains("dockerfile-app worker says hi"), "{}", text(&o));
    assert_eq!(containers_of(app).len(), before, "run-image left the worker's container behind");
    // Detached, a process that exits at once is reported so, not as running at a URL.
    let o = Command::new(bin()).args(["run-image", image, "worker", "--detach"]).output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("exited right after it started (exit status 0)"), "{}", text(&o));
    assert!(!text(&o).contains("is running at"), "{}", text(&o));
    assert_eq!(containers_of(app).len(), before, "its container is removed");
    // In the foreground, SIGTERM stops and removes its container.
    let mut child = Command::new(bin())
        .args(["run-image", image, "web"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers_of(app).len() == before {
        assert!(Instant::now() < deadline, "run-image started no container");
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.code().is_some(), "run-image exited on its own terms, not killed by the signal");
    assert_eq!(containers_of(app).len(), before, "SIGTERM left run-image's container behind");
}

/// A Dockerfile that runs `npm install`: its RUN steps trust the host's CA bundle (here, the
/// TLS-intercepting proxy's), and the image keeps none of the variables that said so.
#[test]
fn dockerfile_builds_reach_npm_with_the_hosts_ca_bundle() {
    require_stack();
    let app = "t-dockerfile-npm";
    let _cleanup = Cleanup(app.to_string());
    let (o, json) = build(&fixture("dockerfile/dockerfile-npm"), app, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let image = json["image"].as_str().unwrap();
    let env = docker(&["image", "inspect", "--format", "{{json .Config.Env}}", image]);
    let env = String::from_utf8_lossy(&env.stdout).into_owned();
    assert!(!env.contains("NODE_EXTRA_CA_CERTS") && !env.contains("slipway-build-ca"), "{env}");
    let port = run_detached(image, "web");
    assert_eq!(get_root(port), "dockerfile-npm 1m");
}

/// A broken input: fixture, app name, extra arguments, environment, expected last line.
type BrokenCase<'a> = (&'a str, &'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// Each broken input: a clear one-line cause, a non-zero exit, no container left behind.
#[test]
fn broken_inputs_fail_clearly_and_leave_nothing_behind() {
    require_stack();
    let cases: [BrokenCase; 5] = [
        ("broken/compile-fails", "t-broken-compile", &[], &[], "Error: Failing bin/compile failed: exit status 1"),
        (
            "static/static-site",
            "t-broken-bpurl",
            &["--buildpack", "http://127.0.0.1:9/nowhere.tgz"],
            &[],
            "Error: could not fetch buildpack http://127.0.0.1:9/nowhere.tgz",
        ),
        (
            "broken/dockerfile-syntax",
            "t-broken-dockerfile",
            &[],
            &[],
            "Error: the Dockerfile build failed: dockerfile parse error line 1: unknown instruction: FROMM",
        ),
        (
            "broken/memory-hog",
            "t-broken-memory",
            &["--memory", "128M"],
            &[],
            "Error: the build ran out of memory (limit 128.0 MB): raise it with `slipway build --memory`, or on a platform `slipway settings:set build-memory-limit SIZE`",
        ),
        (
            "static/static-site",
            "t-broken-nodocker",
            &[],
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
            "Error: cannot reach the Docker engine at unix:///nonexistent/docker.sock",
        ),
    ];
    for (dir, app, extra, env, expected) in cases {
        let _cleanup = Cleanup(app.to_string());
        assert!(containers_of(app).is_empty());
        let out = tempfile::tempdir().unwrap();
        let slug = out.path().join("s.tgz");
        let mut args = vec!["build", "--app", app, "-o", slug.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(fixture(dir).to_str().unwrap().to_string().leak());
        let mut cmd = Command::new(bin());
        cmd.args(&args).env("CI", "true");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{app}: {}", text(&o));
        let last = String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string();
        assert!(last.contains(expected), "{app}: the last line is {last:?}, expected {expected:?}\n{}", text(&o));
        let times = String::from_utf8_lossy(&o.stderr).matches(expected).count();
        assert_eq!(times, 1, "{app}: the error is printed once\n{}", text(&o));
        assert!(containers_of(app).is_empty(), "{app}: a container was left behind");
        assert!(!slug.exists(), "{app}: a slug was written");
    }
}

/// Ctrl-C during a build stops and removes the build container; so does the compile timeout.
#[test]
fn interrupted_or_timed_out_builds_remove_their_container() {
    require_stack();
    let app = "t-interrupted";
    let _cleanup = Cleanup(app.to_string());
    let out = tempfile::tempdir().unwrap();
    let slug = out.path().join("s.tgz");
    let child = Command::new(bin())
        .args(["build", "--app", app, "-o", slug.to_str().unwrap(), fixture("broken/slow-compile").to_str().unwrap()])
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers_of(app).is_empty() {
        assert!(Instant::now() < deadline, "the build container never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert!(containers_of(app).is_empty(), "the build container survived Ctrl-C");

    let o = Command::new(bin())
        .args(["build", "--app", app, "--timeout", "3", "-o", slug.to_str().unwrap()])
        .arg(fixture("broken/slow-compile"))
        .env("CI", "true")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("Slow bin/compile did not finish within 3s and was stopped"), "{}", text(&o));
    assert!(containers_of(app).is_empty());
}

/// `-e` config vars reach bin/compile through ENV_DIR (not its environment), and a buildpack
/// that is a directory on this host is sent into the container.
#[test]
fn config_vars_reach_compile_through_env_dir_with_a_local_buildpack() {
    require_stack();
    use std::os::unix::fs::PermissionsExt;
    let app = "t-config-vars";
    let _cleanup = Cleanup(app.to_string());
    let tmp = tempfile::tempdir().unwrap();
    let bp = tmp.path().join("greeting-buildpack");
    std::fs::create_dir_all(bp.join("bin")).unwrap();
    let scripts = [
        ("detect", "#!/bin/sh\necho Greeting\n"),
        (
            "compile",
            "#!/bin/sh\nset -e\necho \"compiling on STACK=$STACK\"\necho \"$(cat \"$3/GREETING\") ${GREETING:-not-exported}\" > \"$1/index.html\"\n",
        ),
        ("release", "#!/bin/sh\nprintf 'default_process_types:\\n  web: python3 -m http.server $PORT\\n'\n"),
    ];
    for (name, body) in scripts {
        let p = bp.join("bin").join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("README"), "an app").unwrap();
    let (o, json) = build(&src, app, &["-e", "GREETING=hello-from-config", "--buildpack", bp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // A buildpack that is not slipway's own sees the Heroku stack the default stack stands in for.
    assert!(text(&o).contains("Building on the slipway-trixie stack"), "{}", text(&o));
    assert!(text(&o).contains("compiling on STACK=heroku-24"), "{}", text(&o));
    let port = run_detached(json["image"].as_str().unwrap(), "web");
    assert_eq!(get_root(port), "hello-from-config not-exported");

    // The same host directory chosen by BUILDPACK_URL in this environment, or named (relative to
    // the app) in .buildpacks: it is uploaded with the build, not looked up inside the container.
    let o = Command::new(bin())
        .args(["build", src.to_str().unwrap(), "--app", app, "--no-image", "-e", "GREETING=from-env-url"])
        .args(["-o", tmp.path().join("a.tgz").to_str().unwrap()])
        .env("CI", "true")
        .env("BUILDPACK_URL", &bp)
        .output()
        .unwrap();
    assert!(o.status.success() && text(&o).contains("Greeting app detected"), "{}", text(&o));
    std::fs::write(src.join(".buildpacks"), "../greeting-buildpack\n").unwrap();
    let (o, _) = build(&src, app, &["-e", "GREETING=from-dot-buildpacks", "--no-image"]);
    assert!(o.status.success() && text(&o).contains("Greeting app detected"), "{}", text(&o));
}

/// herokuish's README runs `/bin/herokuish`: both stack images have it, and its `version` lists
/// the buildpacks.
#[test]
fn stack_images_have_bin_herokuish() {
    require_stack();
    for image in ["slipway/stack:run", "slipway/stack:build"] {
        let o = docker(&["run", "--rm", image, "/bin/herokuish", "version"]);
        assert!(o.status.success(), "{image}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("buildpacks:\n  python "), "{image}: {}", text(&o));
    }
}

/// Every stack's build image has the runtimes the stacks table (which buildpacks read to name
/// another stack) says it has, and the tools official Heroku buildpacks call.
#[test]
fn each_stack_has_the_runtimes_its_table_lists_and_the_buildpack_tools() {
    require_stack();
    let table = docker(&["run", "--rm", "slipway/stack:build", "cat", "/usr/share/slipway/stacks"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let stacks: std::collections::BTreeSet<&str> = table.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(stacks.into_iter().collect::<Vec<_>>(), ["slipway-bookworm", "slipway-trixie"], "{table}");
    let probe = "printf 'python %s\\ngo %s\\nnodejs %s\\nruby %s\\nphp %s\\n' \
        \"$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])')\" \
        \"$(go env GOVERSION | sed -E 's/^go([0-9]+\\.[0-9]+).*/\\1/')\" \
        \"$(node -p 'process.versions.node.split(\".\")[0]')\" \
        \"$(ruby -e 'print RUBY_VERSION[/\\A\\d+\\.\\d+/]')\" \
        \"$(php -r 'echo PHP_MAJOR_VERSION, \".\", PHP_MINOR_VERSION;')\"; \
        for t in jq zstd unzip curl git tar gzip xz file; do command -v $t >/dev/null || echo \"missing $t\"; done; \
        echo \"STACK=$STACK $SLIPWAY_HEROKU_STACK\"";
    for (stack, suite, heroku) in
        [("slipway-trixie", "trixie", "heroku-24"), ("slipway-bookworm", "bookworm", "heroku-22")]
    {
        let o = docker(&["run", "--rm", &format!("slipway/stack:{suite}-build"), "bash", "-c", probe]);
        assert!(o.status.success(), "{stack}: {}", text(&o));
        let found = String::from_utf8_lossy(&o.stdout).into_owned();
        let listed: String =
            table.lines().filter_map(|l| l.strip_prefix(&format!("{stack} "))).map(|l| format!("{l}\n")).collect();
        assert_eq!(found, format!("{listed}STACK={stack} {heroku}\n"), "{stack}'s images against its table");
        let run = docker(&["run", "--rm", &format!("slipway/stack:{suite}"), "printenv", "STACK"]);
        assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), stack);
    }
}
