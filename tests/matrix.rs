//! The buildpack test matrix (`slipway matrix`), with the real Docker engine and stack images:
//! broken fixtures fail at the step that is wrong, a third-party buildpack in a local git repo
//! runs at the ref asked for, and runs leave nothing behind, Ctrl-C included.
//!
//! The first-party matrix itself (every buildpack's fixtures) runs in `make test`, which writes
//! its reports to target/matrix/.

#[path = "common/mod.rs"]
mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests compare the engine's whole state before and after: one at a time.
static ENGINE: Mutex<()> = Mutex::new(());

fn docker_lines(args: &[&str]) -> BTreeSet<String> {
    let o = Command::new("docker").args(args).output().expect("the docker CLI runs");
    assert!(o.status.success(), "docker {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

/// Every container, image and volume the engine has.
fn engine_state() -> [BTreeSet<String>; 3] {
    [
        docker_lines(&["ps", "-aq", "--no-trunc"]),
        docker_lines(&["images", "-aq", "--no-trunc"]),
        docker_lines(&["volume", "ls", "-q"]),
    ]
}

fn matrix(args: &[&str], dir: &Path) -> (i32, String, serde_json::Value) {
    let json = dir.join("outcomes.json");
    let o = Command::new(bin())
        .current_dir(root())
        .env("CI", "true")
        .arg("matrix")
        .arg("--json")
        .arg(&json)
        .args(args)
        .output()
        .expect("slipway runs");
    let out = text(&o);
    let outcomes = std::fs::read_to_string(&json).map(|t| serde_json::from_str(&t).unwrap()).unwrap_or_default();
    (o.status.code().unwrap_or(-1), out, outcomes)
}

fn outcome<'a>(outcomes: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    outcomes.as_array().unwrap().iter().find(|o| o["fixture"] == id).unwrap_or_else(|| panic!("no outcome for {id}"))
}

#[test]
fn broken_fixtures_fail_at_the_step_that_is_wrong_and_nothing_is_left() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let before = engine_state();
    let dir = tempfile::tempdir().unwrap();
    let fixtures = [
        "broken/nothing-detects",
        "broken/npm-build-fails",
        "broken/crash-at-boot",
        "broken/wrong-body",
        "broken/go-test-fails",
    ];
    let mut args: Vec<String> = vec!["--jobs".into(), "2".into()];
    args.push("--junit".into());
    args.push(dir.path().join("junit.xml").display().to_string());
    args.extend(fixtures.iter().map(|f| fixture(f).display().to_string()));
    args.push(fixture("null/null-app").display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, outcomes) = matrix(&args, dir.path());
    assert_eq!(code, 1, "a failing fixture fails the run:\n{out}");

    let failed_at = |id: &str| {
        let o = outcome(&outcomes, id);
        assert_eq!(o["result"], "failed", "{id}: {o}");
        (o["failure"]["step"].as_str().unwrap().to_string(), o["failure"]["message"].as_str().unwrap().to_string(), o)
    };
    let (step, message, _) = failed_at("broken/nothing-detects");
    assert_eq!(step, "detect");
    assert!(message.starts_with("no buildpack detected this app (tried: python, ruby, nodejs"), "{message}");
    let (step, message, o) = failed_at("broken/npm-build-fails");
    assert_eq!((step.as_str(), o["detected"][0].as_str()), ("build", Some("Node.js")), "{message}");
    let log = o["failure"]["log_tail"].to_string();
    assert!(log.contains("error TS1005"), "the build's last log lines are in the report: {log}");
    let (step, message, o) = failed_at("broken/crash-at-boot");
    assert_eq!(step, "start");
    assert_eq!(message, "web exited with status 3 before answering");
    assert!(o["failure"]["log_tail"].to_string().contains("DATABASE_URL is not set"), "{o}");
    let (step, message, _) = failed_at("broken/wrong-body");
    assert_eq!(step, "request");
    assert_eq!(message, "GET / answered \"a different answer\", expected \"wrong-body\"");
    let (step, message, o) = failed_at("broken/go-test-fails");
    assert_eq!(step, "test", "it builds, starts and answers; only its tests fail: {message}");
    assert!(o["start_ms"].as_u64().is_some(), "{o}");
    assert!(o["failure"]["log_tail"].to_string().contains("want \\\"something else\\\""), "{o}");
    let ok = outcome(&outcomes, "null/null-app");
    assert_eq!(ok["result"], "passed", "{ok}");
    assert!(ok["slug_size"].as_u64().unwrap() > 0 && ok["start_ms"].as_u64().is_some(), "{ok}");

    // The summary names each failing step; the JUnit report has a failure per broken fixture.
    assert!(out.contains("FAILED at request"), "{out}");
    assert!(out.contains("6 fixtures: 1 passed, 5 failed"), "{out}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<failure").count(), 5, "{junit}");
    assert!(junit.contains("<testsuite name=\"broken\""), "{junit}");

    assert_eq!(engine_state(), before, "the run left containers, images or volumes behind");
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", text(&o));
}

/// A third-party buildpack in a local git repo: tag v1 writes "from v1", main "from v2".
fn external_buildpack(root: &Path) -> std::path::PathBuf {
    let repo = root.join("heroku-buildpack-answer");
    std::fs::create_dir_all(repo.join("bin")).unwrap();
    let write = |name: &str, body: &str| {
        let path = repo.join("bin").join(name);
        std::fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write("detect", "[ -f \"$1/answer.me\" ] && echo Answer");
    write("release", "printf -- '---\\ndefault_process_types:\\n  web: python3 -m http.server $PORT\\n'");
    write("compile", "echo 'from v1' > \"$1/answer.txt\"");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "v1"]);
    git(&repo, &["tag", "v1"]);
    write("compile", "echo 'from v2' > \"$1/answer.txt\"");
    git(&repo, &["commit", "-qam", "v2"]);
    repo
}

#[test]
fn an_external_buildpack_runs_at_the_ref_asked_for() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let repo = external_buildpack(dir.path());
    let app = dir.path().join("answer-app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("answer.me"), "").unwrap();
    std::fs::write(app.join("test.toml"), "path = \"/answer.txt\"\nbody = \"from v1\"\n").unwrap();
    let other = dir.path().join("no-answer");
    std::fs::create_dir_all(&other).unwrap();

    let spec = format!("{}#v1", repo.display());
    let (code, out, outcomes) = matrix(&["--external", &spec, app.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Testing buildpack answer"), "{out}");
    let o = outcome(&outcomes, &format!("{}/answer-app", file_name(dir.path())));
    assert_eq!((o["result"].as_str(), o["detected"][0].as_str()), (Some("passed"), Some("Answer")), "{o}");

    // main is v2: the body differs, and an app its bin/detect refuses fails at detect.
    let spec = format!("{}#main", repo.display());
    let (code, out, outcomes) =
        matrix(&["--external", &spec, app.to_str().unwrap(), other.to_str().unwrap()], dir.path());
    assert_eq!(code, 1, "{out}");
    let o = outcome(&outcomes, &format!("{}/answer-app", file_name(dir.path())));
    assert_eq!(o["failure"]["step"], "request", "{o}");
    assert!(o["failure"]["message"].as_str().unwrap().contains("answered \"from v2\""), "{o}");
    let o = outcome(&outcomes, &format!("{}/no-answer", file_name(dir.path())));
    assert_eq!(o["failure"]["step"], "detect", "{o}");

    let (code, out, _) = matrix(&["--external", &format!("{}#v9", repo.display()), app.to_str().unwrap()], dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("v9"), "a missing ref is named: {out}");
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn ctrl_c_stops_a_parallel_run_and_removes_what_it_made() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let before = engine_state();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin())
        .current_dir(root())
        .env("CI", "true")
        .args(["matrix", "--jobs", "2"])
        .arg(fixture("python/flask"))
        .arg(fixture("nodejs/express"))
        .arg(fixture("null/null-app"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run has containers of its own, then interrupt it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mine = docker_lines(&["ps", "-aq", "--filter", "label=io.slipway.matrix"]);
        let volumes = docker_lines(&["volume", "ls", "-q", "--filter", "label=io.slipway.matrix"]);
        if mine.len() >= 2 && !volumes.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the matrix made no containers");
        assert!(child.try_wait().unwrap().is_none(), "the matrix ended before it was interrupted");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(130), "{out}");
    assert!(out.contains("interrupted: the matrix run stopped and removed what it had made"), "{out}");
    assert_eq!(engine_state(), before, "Ctrl-C left containers, images or volumes behind:\n{out}");
    drop(dir);
}
