//! A simulated reboot, with the real Docker engine: the router is killed and the Docker daemon
//! restarted (every container stops), then `ps:restore --all` brings back every app that was
//! running, over HTTP and HTTPS, rebuilding nothing, with releases and config unchanged; an app
//! stopped with `ps:stop` stays stopped. It restarts dockerd, so it is a test binary of its own
//! (cargo runs test binaries one after another).

#[path = "common/mod.rs"]
mod common;
use common::platform::*;
use common::*;

use std::process::Command;
use std::time::Instant;

fn https_body(ca: &std::path::Path, host: &str, port: u16) -> String {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1"), &format!("https://{host}:{port}/")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn after_a_reboot_ps_restore_brings_back_what_ran_and_nothing_else() {
    require_root("it restarts the Docker daemon");
    let mut p = Platform::new();
    let https_port = free_port();
    p.ok(&["settings:set", "https-listen", &format!("127.0.0.1:{https_port}")]);
    let source = fixture("null/null-greeting");
    for app in ["t-boot-web", "t-boot-pair", "t-boot-off"] {
        p.create(app);
        p.ok(&["deploy", app, source.to_str().unwrap()]);
    }
    p.ok(&["ps:scale", "t-boot-pair", "web=2", "worker=1"]);
    p.ok(&["config:set", "t-boot-web", "GREETING=back again"]);
    p.ok(&["ps:stop", "t-boot-off"]);
    // t-boot-web is served over HTTPS too.
    let work = tempfile::tempdir().unwrap();
    let host = "t-boot-web.slipway.test";
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap().self_signed(&key).unwrap();
    let (crt, key_file) = (work.path().join("c.crt"), work.path().join("c.key"));
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    p.ok(&["certs:add", "t-boot-web", crt.to_str().unwrap(), key_file.to_str().unwrap()]);
    assert_eq!(https_body(&crt, host, https_port), "back again");
    let before: Vec<(String, String, String)> = ["t-boot-web", "t-boot-pair", "t-boot-off"]
        .iter()
        .map(|a| {
            (p.ok(&["releases", a]), p.ok(&["config:show", a]), docker(&["images", "-q", &format!("slipway-app/{a}")]))
        })
        .collect();

    // The reboot: the router is gone, Docker restarts, every container stops.
    let nginx_pid = std::fs::read_to_string(p.data.path().join("nginx/nginx.pid")).unwrap();
    Command::new("kill").arg(nginx_pid.trim()).status().unwrap();
    restart_docker();
    for app in ["t-boot-web", "t-boot-pair"] {
        let running = docker(&["ps", "-q", "--filter", &format!("label=io.slipway.app={app}")]);
        if running.is_empty() {
            assert!(p.get(app).is_err(), "{app} is down: nothing answers");
        }
    }

    let started = Instant::now();
    let out = p.ok(&["ps:restore", "--all"]);
    eprintln!("ps:restore --all took {} ms:\n{out}", started.elapsed().as_millis());
    assert_eq!(p.get("t-boot-web").unwrap().0, 301, "HTTP redirects to HTTPS again");
    assert_eq!(https_body(&crt, host, https_port), "back again", "HTTPS is back");
    assert_eq!(p.get("t-boot-pair").unwrap(), (200, "null-greeting".to_string()));
    let pair = docker(&["ps", "-q", "--filter", "label=io.slipway.app=t-boot-pair"]);
    assert_eq!(pair.lines().count(), 3, "web=2 worker=1 again");
    assert!(docker(&["ps", "-q", "--filter", "label=io.slipway.app=t-boot-off"]).is_empty(), "stopped stays stopped");
    assert!(p.get("t-boot-off").is_ok_and(|r| r.0 != 200), "the stopped app does not answer");
    let after: Vec<(String, String, String)> = ["t-boot-web", "t-boot-pair", "t-boot-off"]
        .iter()
        .map(|a| {
            (p.ok(&["releases", a]), p.ok(&["config:show", a]), docker(&["images", "-q", &format!("slipway-app/{a}")]))
        })
        .collect();
    assert_eq!(after, before, "no release, config or image changed");
    assert!(p.ok(&["ps:restore", "--all"]).contains("runs as it should"), "a second restore changes nothing");
}
