//! Integration tests of the engine through the `slipway` binary, on this host (no Docker):
//! every fixture is built, started on a loopback port and asked for `/`; broken fixtures fail
//! with their documented errors; herokuish's surface works under its own names.

#[path = "common/mod.rs"]
mod common;
use common::*;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn slipway(args: &[&str]) -> Output {
    Command::new(bin()).args(args).env_remove("BUILDPACK_URL").output().expect("slipway runs")
}

/// GET / on 127.0.0.1:port, waiting for the server to come up.
fn get_root(port: u16, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the process exited ({status}) before answering");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
            let mut response = String::new();
            if s.read_to_string(&mut response).is_ok() && response.starts_with("HTTP/1.") {
                assert!(response.lines().next().unwrap().contains(" 200 "), "{response}");
                return response.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "no answer on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Builds on this host with config vars `env` (KEY=VALUE), starts web, checks GET /.
fn build_and_serve(app: &Path, expected: &str, env: &[String]) {
    let out_dir = tempfile::tempdir().unwrap();
    let slug = out_dir.path().join("app.slug.tgz");
    let mut args = vec!["build", "--local", app.to_str().unwrap(), "-o", slug.to_str().unwrap()];
    for e in env {
        args.extend(["-e", e.as_str()]);
    }
    let o = slipway(&args);
    assert!(o.status.success(), "build of {} failed:\n{}", app.display(), text(&o));
    let port = free_port();
    let child = Command::new(bin())
        .args(["start", slug.to_str().unwrap(), "web", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut started = Started(child);
    assert_eq!(get_root(port, &mut started.0), expected, "fixture {}", app.display());
}

/// Every working fixture: its web process answers its own name (host mode: the Python and
/// Node.js fixtures use this host's python3 and node, and fetch from PyPI and npm).
#[test]
fn every_fixture_builds_starts_and_answers_its_name() {
    for bp in ["null", "static", "python", "nodejs"] {
        for entry in std::fs::read_dir(fixture(bp)).unwrap() {
            let app = entry.unwrap().path();
            let name = app.file_name().unwrap().to_string_lossy().into_owned();
            // Fixtures that test a buildpack's refusal, expect differently per stack (this host is
            // none) or start no web process are the matrix's (tests/matrix.rs, make matrix).
            let spec: toml::Table =
                std::fs::read_to_string(app.join("test.toml")).map(|t| t.parse().unwrap()).unwrap_or_default();
            if ["expect_failure", "on", "process"].iter().any(|k| spec.contains_key(*k)) {
                continue;
            }
            let env: Vec<String> = spec
                .get("env")
                .and_then(|e| e.as_table())
                .map(|t| t.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect())
                .unwrap_or_default();
            build_and_serve(&app, &name, &env);
        }
    }
}

#[test]
fn start_serves_the_slug_on_the_given_port_and_stops_on_sigterm() {
    let out_dir = tempfile::tempdir().unwrap();
    let slug = out_dir.path().join("s.tgz");
    let o =
        slipway(&["build", "--local", fixture("static/static-site").to_str().unwrap(), "-o", slug.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // The app root is served: its two files are counted (a root of "." once counted 0).
    assert!(text(&o).contains("Serving the app root as static files") && text(&o).contains(" 2 files"), "{}", text(&o));
    let port = free_port();
    let mut child = Command::new(bin())
        .args(["start", slug.to_str().unwrap(), "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(get_root(port, &mut child), "static-site");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "slipway start did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the app kept running after slipway stopped");
}

#[test]
fn build_prints_the_contract_output_and_a_json_summary() {
    let out_dir = tempfile::tempdir().unwrap();
    let slug = out_dir.path().join("s.tgz");
    let o = slipway(&[
        "build",
        "--local",
        fixture("null/null-multi").to_str().unwrap(),
        "-o",
        slug.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("-----> Null app detected"), "{stdout}");
    assert!(stdout.contains("Procfile declares types -> web, worker, clock"), "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["buildpacks"][0]["name"], "Null");
    assert!(summary["slug_size"].as_u64().unwrap() > 0);
    assert!(summary["durations_ms"]["compile (Null)"].is_u64());
    let inspect = slipway(&["slug", "inspect", slug.to_str().unwrap()]);
    let inspect = text(&inspect);
    assert!(inspect.contains("Stack:         slipway-trixie"), "{inspect}");
    assert!(inspect.contains("clock: echo 'a \"quoted\" | piped' | tr a-z A-Z"), "{inspect}");
}

#[test]
fn procfile_commands_run_through_bash() {
    let out_dir = tempfile::tempdir().unwrap();
    let slug = out_dir.path().join("s.tgz");
    assert!(slipway(&["build", "--local", fixture("null/null-multi").to_str().unwrap(), "-o", slug.to_str().unwrap()])
        .status
        .success());
    let o = slipway(&["start", slug.to_str().unwrap(), "clock"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "A \"QUOTED\" | PIPED");
}

/// Broken fixtures: a clear one-line cause, a non-zero exit, and no slug written.
#[test]
fn broken_fixtures_fail_with_their_documented_errors() {
    let cases = [
        (
            "broken/nothing-detects",
            "Error: no buildpack detected this app (tried: python, ruby, nodejs, php, go, static, null)",
        ),
        ("broken/compile-fails", "Error: Failing bin/compile failed: exit status 1"),
        (
            "broken/malformed-procfile",
            "Error: Procfile line 3: expected `type: command`, found \"this line is not a process\"",
        ),
    ];
    for (app, expected) in cases {
        let out_dir = tempfile::tempdir().unwrap();
        let slug = out_dir.path().join("s.tgz");
        let o = slipway(&["build", "--local", fixture(app).to_str().unwrap(), "-o", slug.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{app}: {}", text(&o));
        assert!(text(&o).contains(expected), "{app}: {}", text(&o));
        assert!(!slug.exists(), "{app}: a slug was written");
    }
    // The failing buildpack's own output reached the log as it ran.
    let o = slipway(&["build", "--local", fixture("broken/compile-fails").to_str().unwrap(), "-o", "/dev/null"]);
    assert!(text(&o).contains("compile-fails: dependency 'unobtainium' not found"));
}

#[test]
fn unreachable_buildpack_is_an_error_naming_the_url() {
    let o = slipway(&[
        "build",
        "--local",
        fixture("static/static-site").to_str().unwrap(),
        "-o",
        "/dev/null",
        "--buildpack",
        "http://127.0.0.1:9/nowhere.tgz",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("could not fetch buildpack http://127.0.0.1:9/nowhere.tgz"), "{}", text(&o));
}

#[test]
fn buildpack_from_a_local_git_repo_at_a_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("bp");
    std::fs::create_dir_all(repo.join("bin")).unwrap();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    };
    let write = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = repo.join("bin").join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write("detect", "#!/bin/sh\necho Versioned\n");
    write("compile", "#!/bin/sh\necho 'web: python3 -m http.server $PORT' > $1/Procfile; echo v1 > $1/version.txt\n");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "v1"]);
    git(&["tag", "v1"]);
    write("compile", "#!/bin/sh\necho 'web: python3 -m http.server $PORT' > $1/Procfile; echo v2 > $1/version.txt\n");
    git(&["commit", "-qam", "v2"]);
    let url = format!("file://{}", repo.display());
    for (r, expected) in [("#v1", "v1"), ("", "v2")] {
        let slug = tmp.path().join("s.tgz");
        let o = slipway(&[
            "build",
            "--local",
            fixture("static/static-site").to_str().unwrap(),
            "-o",
            slug.to_str().unwrap(),
            "-b",
            &format!("{url}{r}"),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let dest = tmp.path().join(format!("x{expected}"));
        std::fs::create_dir(&dest).unwrap();
        let o = Command::new("tar").arg("-xzf").arg(&slug).arg("-C").arg(&dest).output().unwrap();
        assert!(o.status.success());
        assert_eq!(std::fs::read_to_string(dest.join("version.txt")).unwrap().trim(), expected);
    }
}

/// herokuish's surface: paths, version, buildpack install/list, and argv[0] names /build,
/// /start and /exec working on APP_PATH etc.
#[test]
fn herokuish_surface_under_its_own_names() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let links = t.join("bin");
    std::fs::create_dir(&links).unwrap();
    for name in ["build", "start", "exec", "herokuish"] {
        std::os::unix::fs::symlink(bin(), links.join(name)).unwrap();
    }
    let env = |cmd: &mut Command| {
        cmd.env("APP_PATH", t.join("app"))
            .env("BUILD_PATH", t.join("build"))
            .env("CACHE_PATH", t.join("cache"))
            .env("ENV_PATH", t.join("env"))
            .env("IMPORT_PATH", t.join("import"))
            .env("BUILDPACK_PATH", t.join("buildpacks"))
            .env("SLUG_PATH", t.join("slug.tgz"))
            .env("SLIPWAY_APP_USER", "root")
            .env_remove("BUILDPACK_URL")
            .env_remove("PORT");
    };
    let run = |name: &str, args: &[&str]| {
        let mut cmd = Command::new(links.join(name));
        cmd.args(args);
        env(&mut cmd);
        cmd.output().unwrap()
    };
    let o = run("herokuish", &["paths"]);
    assert!(text(&o).contains(&format!("APP_PATH={}\n", t.join("app").display())), "{}", text(&o));
    let version = text(&run("herokuish", &["version"]));
    assert!(version.starts_with("slipway ") && version.contains("\nbuildpacks:\n  python "), "{version}");

    // Source in IMPORT_PATH, config in ENV_PATH; /build leaves the compiled app in APP_PATH.
    let import = t.join("import");
    std::fs::create_dir_all(&import).unwrap();
    std::fs::copy(fixture("null/null-app/server.py"), import.join("server.py")).unwrap();
    std::fs::write(
        import.join("Procfile"),
        "web: python3 server.py\nshow: echo \"$GREETING from $DYNO on $PORT in $PWD\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(t.join("env")).unwrap();
    std::fs::write(t.join("env/GREETING"), "hello").unwrap();
    let o = run("build", &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("-----> Null app detected"), "{}", text(&o));
    assert!(t.join("app/Procfile").is_file() && t.join("app/.slipway/build.json").is_file());

    let o = run("start", &["show"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("hello from show.1 on 5000 in {}", t.join("app").display())
    );
    let o = run("exec", &["sh", "-c", "echo $GREETING:$HOME"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), format!("hello:{}", t.join("app").display()));
    let o = run("herokuish", &["procfile", "parse", "web"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "python3 server.py");
    let o = run("exec", &["sh", "-c", "echo user=$USER"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "user=root", "/exec sets USER");

    // herokuish's own `test [PATH] [EXPECTED]`: build, start web on 5678, compare the body.
    let o = run("herokuish", &["test", "/", "null-app"]);
    assert!(o.status.success() && text(&o).contains("::: TEST FINISHED :::"), "{}", text(&o));
    let o = run("herokuish", &["test", "/", "something else"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("::: TEST FAILED :::"), "{}", text(&o));

    // slug generate / export / import round trip.
    assert!(run("herokuish", &["slug", "generate"]).status.success());
    let exported = run("herokuish", &["slug", "export"]);
    assert_eq!(exported.stdout, std::fs::read(t.join("slug.tgz")).unwrap());
    std::fs::remove_dir_all(t.join("app")).unwrap();
    let mut import_cmd = Command::new(links.join("herokuish"));
    import_cmd.args(["slug", "import"]).stdin(std::fs::File::open(t.join("slug.tgz")).unwrap());
    env(&mut import_cmd);
    assert!(import_cmd.output().unwrap().status.success());
    assert!(t.join("app/server.py").is_file());

    // buildpack install (all defaults) and list, in directory order.
    assert!(run("herokuish", &["buildpack", "install"]).status.success());
    let listed = String::from_utf8_lossy(&run("herokuish", &["buildpack", "list"]).stdout).into_owned();
    let names: Vec<&str> = listed.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["01_python", "02_ruby", "03_nodejs", "04_php", "05_go", "06_static", "07_null"]);
    let o = run("herokuish", &["buildpack", "detect", fixture("static/static-site").to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Static");
    // An app that chooses (.buildpacks): what build would run, named as each bin/detect says;
    // BUILDPACK_URL in the environment comes first.
    let chooser = t.join("chooser");
    std::fs::create_dir_all(&chooser).unwrap();
    std::fs::write(chooser.join("index.html"), "static files, which the default would detect").unwrap();
    // bp names itself; bp2 does not match, so it goes by its directory's name (chosen, it runs).
    for (bp, detect) in [("bp", "echo Chosen"), ("bp2", "exit 1")] {
        std::fs::create_dir_all(chooser.join(bp).join("bin")).unwrap();
        for (script, body) in [("detect", detect), ("compile", "true")] {
            let path = chooser.join(bp).join("bin").join(script);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
    }
    std::fs::write(chooser.join(".buildpacks"), "./bp\n./bp2\n").unwrap();
    let o = run("herokuish", &["buildpack", "detect", chooser.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Chosen\nbp2", "{}", text(&o));
    let mut c = Command::new(links.join("herokuish"));
    env(&mut c);
    let o = c.args(["buildpack", "detect", chooser.to_str().unwrap()]).env("BUILDPACK_URL", "./bp").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Chosen", "{}", text(&o));
}

#[test]
fn hostile_slug_is_refused_by_the_cli_with_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    // A slug whose only entry climbs out of the app: written by hand, as tar-rs will not.
    let mut header = [0u8; 512];
    let name = b"../escaped.txt";
    header[..name.len()].copy_from_slice(name);
    header[100..108].copy_from_slice(b"0000644\0");
    header[124..136].copy_from_slice(b"00000000005\0");
    header[156] = b'0';
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| *b as u32).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(b"pwned");
    tar.resize(512 * 2, 0);
    tar.resize(512 * 4, 0);
    let slug = tmp.path().join("hostile.tar");
    std::fs::write(&slug, &tar).unwrap();
    let app = tmp.path().join("sub/app");
    let o = Command::new(bin())
        .args(["slug", "import", slug.to_str().unwrap()])
        .env("APP_PATH", &app)
        .env("SLIPWAY_APP_USER", "root")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("refusing slug: entry \"../escaped.txt\" contains `..`"), "{}", text(&o));
    assert!(!tmp.path().join("sub/escaped.txt").exists());
    assert!(!app.exists());
}

/// Started as root, herokuish-mode commands run the app as the unprivileged app user, and a
/// build gives what it creates to that user.
#[test]
fn herokuish_mode_drops_root_to_the_app_user() {
    common::require_root("it checks that root drops to the app user");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = t.join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("Procfile"), "web: id -u\n").unwrap();
    let nobody_uid = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let nobody_uid = String::from_utf8_lossy(&nobody_uid.stdout).trim().to_string();
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("APP_PATH", &app)
            .env("BUILD_PATH", t.join("build"))
            .env("CACHE_PATH", t.join("cache"))
            .env("ENV_PATH", t.join("env"))
            .env("IMPORT_PATH", t.join("no-import"))
            .env("BUILDPACK_PATH", t.join("no-buildpacks"))
            .env("SLIPWAY_APP_USER", "nobody")
            .env_remove("BUILDPACK_URL")
            .output()
            .unwrap()
    };
    let o = run(&["buildpack", "build"]);
    assert!(o.status.success(), "{}", text(&o));
    let meta = std::fs::metadata(app.join(".slipway/build.json")).unwrap();
    assert_eq!(meta.uid().to_string(), nobody_uid);
    let o = run(&["procfile", "start", "web"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), nobody_uid, "{}", text(&o));
}

/// The Node.js buildpack's bin/release reads what bin/compile noted about the start script
/// (no node process at release time): `web: npm start` only when there is one.
#[test]
fn nodejs_release_uses_the_start_script_noted_at_compile_time() {
    let release = root().join("buildpacks/nodejs/bin/release");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".heroku")).unwrap();
    let run = || {
        let o = Command::new("bash").arg(&release).arg(dir.path()).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    std::fs::write(dir.path().join(".heroku/nodejs-start-script"), "yes\n").unwrap();
    assert_eq!(run(), "---\ndefault_process_types:\n  web: npm start\n");
    std::fs::write(dir.path().join(".heroku/nodejs-start-script"), "no\n").unwrap();
    assert_eq!(run(), "---\n{}\n");
    std::fs::write(dir.path().join("server.js"), "").unwrap();
    assert_eq!(run(), "---\ndefault_process_types:\n  web: npm start\n");
}
