//! What Dokku users type, with the real engine and router: `buildpacks:set` to a buildpack
//! whose detect would not pick the app, `--format json` reports parsed, `logs:failed`,
//! `apps:exists`, `ps:inspect`; `ports:*`; `apps:rename`; deploys from a prebuilt image (`git:from-image`, built by a
//! Dockerfile outside slipway) and from an archive on standard input (`git:from-archive`).

#[path = "common/mod.rs"]
mod common;
use common::platform::*;
use common::*;

use std::io::Write;
use std::process::{Command, Stdio};

fn json(p: &Platform, args: &[&str]) -> serde_json::Value {
    let out = p.ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {out}"))
}

fn write_exec(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn buildpacks_set_wins_over_detection_and_reports_are_json() {
    let mut p = Platform::new();
    let work = tempfile::tempdir().unwrap();
    // An app nothing detects, and a buildpack whose own detect says no.
    let app_dir = work.path().join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    std::fs::write(app_dir.join("hello.txt"), "from a chosen buildpack\n").unwrap();
    let bp = work.path().join("chosen-bp");
    write_exec(&bp.join("bin/detect"), "#!/bin/sh\nexit 1\n");
    write_exec(
        &bp.join("bin/compile"),
        "#!/bin/sh\nset -e\nmkdir -p \"$1/site\"\ncp \"$1/hello.txt\" \"$1/site/index.html\"\n",
    );
    write_exec(
        &bp.join("bin/release"),
        "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: cd site && exec python3 -m http.server $PORT\\n'\n",
    );
    let app = "t-dokku-bp";
    p.create(app);
    let failed = p.slipway(&["deploy", app, app_dir.to_str().unwrap()]);
    assert!(!failed.status.success(), "nothing detects it: {}", text(&failed));
    let log = p.ok(&["logs:failed", app]);
    assert!(log.contains("failed") && log.to_lowercase().contains("buildpack"), "{log}");

    p.ok(&["buildpacks:set", app, bp.to_str().unwrap()]);
    assert!(p.ok(&["buildpacks:list", app]).contains(bp.to_str().unwrap()));
    p.ok(&["deploy", app, app_dir.to_str().unwrap()]);
    assert_eq!(p.get(app).unwrap(), (200, "from a chosen buildpack".to_string()));

    // Reports for scripts.
    let apps = json(&p, &["apps:list", "--format", "json"]);
    assert!(apps.as_array().unwrap().iter().any(|a| a == app), "{apps}");
    let report = json(&p, &["apps:report", app, "--format", "json"]);
    assert_eq!(report["buildpacks"][0], bp.to_str().unwrap());
    assert_eq!(report["formation"]["web"], 1);
    let releases = json(&p, &["releases", app, "--format", "json"]);
    let current: Vec<_> = releases.as_array().unwrap().iter().filter(|r| r["current"] == true).collect();
    assert_eq!(current.len(), 1, "{releases}");
    assert_eq!(current[0]["status"], "succeeded");
    let ps = json(&p, &["ps:report", app, "--format", "json"]);
    assert_eq!(ps["processes"][0]["type"], "web");
    assert_eq!(ps["processes"][0]["running"], true);
    p.ok(&["config:set", app, "GREETING=hi there", "--no-restart"]);
    assert_eq!(json(&p, &["config:show", app, "--format", "json"])["GREETING"], "hi there");
    p.ok(&["domains:add", app, "www.t-dokku-bp.test"]);
    let domains = json(&p, &["domains:report", app, "--format", "json"]);
    assert_eq!(domains["global"], "t-dokku-bp.slipway.test");
    assert_eq!(domains["domains"][0], "www.t-dokku-bp.test");
    let builds = json(&p, &["builds:list", app, "--format", "json"]);
    let statuses: Vec<&str> = builds.as_array().unwrap().iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert!(statuses.contains(&"failed") && statuses.contains(&"succeeded"), "{builds}");
    let inspect = json(&p, &["ps:inspect", app]);
    assert!(inspect[0]["Id"].as_str().is_some_and(|id| id.len() == 64), "{inspect}");
    assert!(!inspect.to_string().contains("hi there"), "config values are not in the containers' config");
    assert!(p.slipway(&["apps:exists", app]).status.success());
    assert_eq!(p.slipway(&["apps:exists", "t-no-such-app"]).status.code(), Some(1));

    // Cleared, the app is back to detection: nothing detects it, and v-current keeps serving.
    p.ok(&["buildpacks:clear", app]);
    assert!(!p.slipway(&["deploy", app, app_dir.to_str().unwrap()]).status.success());
    assert_eq!(p.get(app).unwrap().0, 200, "the running release keeps serving");
}

#[test]
fn deploys_from_a_prebuilt_image_and_from_an_archive_on_stdin() {
    let mut p = Platform::new();
    let work = tempfile::tempdir().unwrap();
    // An image built outside slipway, by a plain `docker build`.
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(fixture("dockerfile/dockerfile-app/server.py"), ctx.join("server.py")).unwrap();
    std::fs::write(ctx.join("Procfile"), "worker: sleep 1000\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM slipway/stack:run\nWORKDIR /srv\nCOPY server.py Procfile /srv/\nEXPOSE 8080\nCMD [\"python3\", \"/srv/server.py\", \"from-image\"]\n",
    )
    .unwrap();
    let image = format!("t-prebuilt-{}:v1", std::process::id());
    let built = Command::new("docker").args(["build", "-q", "-t", &image]).arg(&ctx).output().unwrap();
    assert!(built.status.success(), "{}", text(&built));
    let app = "t-dokku-image";
    p.create(app);
    p.ok(&["git:from-image", app, &image]);
    assert_eq!(p.get(app).unwrap(), (200, "from-image".to_string()));
    let releases = json(&p, &["releases", app, "--format", "json"]);
    assert_eq!(releases[0]["source_version"], format!("image:{image}"));
    let ports = p.ok(&["ports:list", app]);
    assert!(ports.contains(&format!("http    {:<12}8080", p.port)), "EXPOSE gives the default mapping: {ports}");
    p.ok(&["ps:scale", app, "worker=1"]);
    let ps = json(&p, &["ps:report", app, "--format", "json"]);
    assert!(ps["processes"].as_array().unwrap().iter().any(|c| c["type"] == "worker"), "the image's Procfile: {ps}");
    let missing = p.slipway(&["git:from-image", app, "t-no-such-image:v9"]);
    assert!(!missing.status.success() && text(&missing).contains("no image"), "{}", text(&missing));
    Command::new("docker").args(["rmi", &image]).output().unwrap();

    // An archive on standard input: a .tar.gz, then a .zip with the app in one directory.
    let archived = "t-dokku-archive";
    p.create(archived);
    let tgz =
        Command::new("tar").arg("-C").arg(fixture("null/null-greeting")).args(["-czf", "-", "."]).output().unwrap();
    let send = |bytes: &[u8]| {
        let mut child = p
            .cmd(&["git:from-archive", archived, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = send(&tgz.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.get(archived).unwrap(), (200, "null-greeting".to_string()));
    let zip = work.path().join("app.zip");
    let zipped = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(fixture("null/null-greeting"))
        .output()
        .unwrap();
    assert!(zipped.status.success(), "{}", text(&zipped));
    p.ok(&["config:set", archived, "GREETING=zipped"]);
    let o = send(&std::fs::read(&zip).unwrap());
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(p.get(archived).unwrap(), (200, "zipped".to_string()));
    let o = send(b"this is not an archive");
    assert!(!o.status.success() && text(&o).contains("not a .tar"), "{}", text(&o));
    assert_eq!(p.get(archived).unwrap(), (200, "zipped".to_string()), "a refused archive changes nothing");
}

#[test]
fn ports_add_another_host_port_and_set_the_container_port() {
    let mut p = Platform::new();
    let app = "t-dokku-ports";
    p.create(app);
    p.ok(&["deploy", app, fixture("null/null-greeting").to_str().unwrap()]);
    let list = p.ok(&["ports:list", app]);
    assert!(list.contains(&format!("http    {:<12}5000", p.port)), "the default mapping: {list}");
    let extra = free_port();
    p.ok(&["ports:add", app, &format!("http:{extra}:5000")]);
    assert_eq!(get_via(extra, &format!("{app}.slipway.test")).unwrap(), (200, "null-greeting".to_string()));
    assert_eq!(p.get(app).unwrap().0, 200, "still on the router's own port");
    // Another container port: the processes get it as PORT.
    let other = free_port();
    p.ok(&["ports:set", app, &format!("http:{other}:7000")]);
    assert_eq!(get_via(other, &format!("{app}.slipway.test")).unwrap(), (200, "null-greeting".to_string()));
    let report = json(&p, &["ports:report", app, "--format", "json"]);
    assert_eq!(report["map"], serde_json::json!([format!("http:{other}:7000")]));
    let ps = json(&p, &["ps:inspect", app]);
    let env = ps[0]["Config"]["Env"].to_string();
    assert!(env.contains("PORT=7000"), "{env}");
    assert!(get_via(extra, &format!("{app}.slipway.test")).is_err(), "the old extra port is gone");
    // A port in use is refused, and nothing changes.
    let busy = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let refused = p.slipway(&["ports:add", app, &format!("http:{busy_port}:7000")]);
    assert!(!refused.status.success() && text(&refused).contains(&format!("port {busy_port}")), "{}", text(&refused));
    assert_eq!(json(&p, &["ports:report", app, "--format", "json"])["map"], report["map"]);
    p.ok(&["ports:clear", app]);
    assert_eq!(p.get(app).unwrap(), (200, "null-greeting".to_string()));
}

#[test]
fn a_renamed_app_keeps_serving_under_its_new_name_with_its_history() {
    let mut p = Platform::new();
    let (old, new) = ("t-dokku-old", "t-dokku-new");
    p.create(old);
    p.apps.push(new.to_string());
    let source = fixture("null/null-greeting");
    p.ok(&["deploy", old, source.to_str().unwrap()]);
    p.ok(&["config:set", old, "GREETING=renamed"]);
    p.ok(&["domains:add", old, "www.rename.test"]);
    let releases = json(&p, &["releases", old, "--format", "json"]).as_array().unwrap().len();
    p.ok(&["apps:rename", old, new]);
    assert_eq!(p.get(new).unwrap(), (200, "renamed".to_string()));
    assert_eq!(get_via(p.port, "www.rename.test").unwrap(), (200, "renamed".to_string()), "the domain moved");
    assert_ne!(p.get(old).map(|r| r.0), Ok(200), "the old name is gone");
    assert!(!p.slipway(&["apps:exists", old]).status.success());
    assert!(containers_of(old).is_empty(), "the old containers are gone");
    let history = json(&p, &["releases", new, "--format", "json"]);
    assert_eq!(history.as_array().unwrap().len(), releases + 1, "{history}");
    assert!(history.to_string().contains(&format!("Rename from {old}")));
    assert!(!history.to_string().contains(&format!("slipway-app/{old}:")), "every image is the new app's: {history}");
    assert_eq!(json(&p, &["config:show", new, "--format", "json"])["GREETING"], "renamed");
    // Its history works: a rollback to the first release.
    p.ok(&["rollback", new, "v1"]);
    assert_eq!(p.get(new).unwrap(), (200, "null-greeting".to_string()));
    let taken = p.slipway(&["apps:rename", new, new]);
    assert!(!taken.status.success() && text(&taken).contains("already exists"), "{}", text(&taken));
}
