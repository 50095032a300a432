//! HTTPS through the real router (nginx) on loopback: an app's own certificate (`certs:*`),
//! served over HTTP/2, its HTTP requests redirected, checked before it is taken.
//!
//! They need the stack images (`make stack-image`, which `make test` runs first).

#[path = "common/mod.rs"]
mod common;
use common::pebble::Pebble;
use common::platform::*;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A self-signed certificate for `names` and its key, written as NAME.crt and NAME.key.
fn certificate(dir: &Path, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (crt, key_file) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (crt, key_file)
}

/// curl over HTTPS to `host` on 127.0.0.1:`port`, trusting `ca`: (HTTP version, status, body).
fn https_get(ca: &Path, host: &str, port: u16) -> Result<(String, u16, String), String> {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{host}:{port}:127.0.0.1"), "-w", "\n%{http_version} %{http_code}"])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(text(&o));
    }
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, last) = out.rsplit_once('\n').ok_or("no status")?;
    let (version, code) = last.split_once(' ').ok_or("no status")?;
    Ok((version.to_string(), code.parse().map_err(|_| "bad status")?, body.trim().to_string()))
}

/// The status and Location of a plain HTTP GET through the router.
fn http_head(port: u16, host: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H"])
        .arg(format!("Host: {host}"))
        .arg(format!("http://127.0.0.1:{port}/some/path?q=1"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (code, location) = out.split_once(' ').unwrap_or((&out, ""));
    (code.parse().unwrap_or(0), location.to_string())
}

#[test]
fn an_apps_own_certificate_is_served_over_https_and_http_redirects() {
    let mut p = Platform::new();
    let https_port = free_port();
    let o = p.slipway(&["settings:set", "https-listen", &format!("127.0.0.1:{}", p.port)]);
    assert!(!o.status.success() && text(&o).contains("need different ports"), "{}", text(&o));
    p.ok(&["settings:set", "https-listen", &format!("127.0.0.1:{https_port}")]);
    let app = "t-tls";
    p.create(app);
    p.ok(&["deploy", app, fixture("null/null-greeting").to_str().unwrap()]);
    let host = format!("{app}.slipway.test");
    let work = tempfile::tempdir().unwrap();
    let (crt, key) = certificate(work.path(), "app", &[&host]);
    let (_, other_key) = certificate(work.path(), "other", &[&host]);
    let (elsewhere_crt, elsewhere_key) = certificate(work.path(), "elsewhere", &["shop.example.org"]);

    // Refused with the reason, and nothing changes: HTTP still serves.
    let o = p.slipway(&["certs:add", app, crt.to_str().unwrap(), other_key.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("does not belong to the certificate"), "{}", text(&o));
    let o = p.slipway(&["certs:add", app, elsewhere_crt.to_str().unwrap(), elsewhere_key.to_str().unwrap()]);
    assert!(!o.status.success() && text(&o).contains("names none of the app's hosts"), "{}", text(&o));
    assert!(p.ok(&["certs:report", app]).contains("false"));
    assert_eq!(p.get(app).unwrap(), (200, "null-greeting".to_string()));

    let out = p.ok(&["certs:add", app, crt.to_str().unwrap(), key.to_str().unwrap()]);
    assert!(out.contains(&format!("{host} served over HTTPS")), "{out}");
    let (version, code, body) = https_get(&crt, &host, https_port).unwrap();
    // A name no app serves over HTTPS gets no certificate, nor any app's upstream.
    let err = https_get(&crt, "other.slipway.test", https_port).unwrap_err();
    assert!(err.contains("alert") || err.contains("SSL"), "the handshake is refused: {err}");
    assert_eq!((version.as_str(), code, body.as_str()), ("2", 200, "null-greeting"), "HTTP/2 over TLS");
    assert_eq!(
        http_head(p.port, &host),
        (301, format!("https://{host}:{https_port}/some/path?q=1")),
        "HTTP redirects to HTTPS"
    );
    let report = p.ok(&["certs:report", app]);
    assert!(report.contains("Ssl enabled:") && report.contains(&host) && report.contains("days left"), "{report}");
    // The router keeps the app's own access log, HTTP and HTTPS requests alike.
    let log = p.ok(&["logs", app, "--router"]);
    assert!(log.contains("\"GET /some/path?q=1 HTTP/1.1\" 301") && log.contains("\"GET / HTTP/2.0\" 200"), "{log}");

    // A new release keeps the certificate.
    p.ok(&["config:set", app, "GREETING=over tls"]);
    assert_eq!(https_get(&crt, &host, https_port).unwrap().2, "over tls");

    // Removed: plain HTTP again, and nothing on HTTPS for it.
    p.ok(&["certs:remove", app]);
    assert_eq!(p.get(app).unwrap(), (200, "over tls".to_string()));
    assert!(https_get(&crt, &host, https_port).is_err(), "no HTTPS without a certificate");
    assert!(!p.slipway(&["certs:remove", app]).status.success(), "it has none now");
}

/// The serial number of the certificate the router serves for `host`.
fn served_serial(host: &str, port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername {host} </dev/null 2>/dev/null | openssl x509 -noout -serial"
    );
    let o = Command::new("sh").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Let's Encrypt's flow against a real ACME server: pebble validates HTTP-01 through the router
/// (no always-valid switch), the issued certificate is served, HTTP redirects; a forced renewal
/// serves a new certificate with no failed request meanwhile; a failed renewal is recorded and
/// shown, the old certificate still served; the renewal is the scheduler's platform task.
#[test]
fn lets_encrypt_issues_through_the_router_and_renews_without_a_failed_request() {
    let mut p = Platform::new();
    let https_port = free_port();
    p.ok(&["settings:set", "https-listen", &format!("127.0.0.1:{https_port}")]);
    let pebble = Pebble::start(p.port);
    let app = "t-acme";
    p.create(app);
    let le = |args: &[&str]| p.cmd(args).env("SSL_CERT_FILE", &pebble.listener_ca).output().unwrap();
    p.ok(&["deploy", app, fixture("null/null-greeting").to_str().unwrap()]);
    let host = format!("{app}.slipway.test");
    p.ok(&["letsencrypt:set", "--global", "server", &pebble.directory]);
    p.ok(&["letsencrypt:set", "--global", "email", "ops@example.com"]);
    let started = std::time::Instant::now();
    let o = le(&["letsencrypt:enable", app]);
    assert!(o.status.success(), "{}", text(&o));
    eprintln!("letsencrypt:enable took {} ms", started.elapsed().as_millis());
    let work = tempfile::tempdir().unwrap();
    let root = pebble.issuing_root(work.path());
    assert_eq!(https_get(&root, &host, https_port).unwrap().2, "null-greeting");
    assert_eq!(http_head(p.port, &host).0, 301);
    let list = p.ok(&["letsencrypt:list"]);
    assert!(list.contains(app) && list.contains(&host), "{list}");
    let report = p.ok(&["certs:report", app]);
    assert!(report.contains("Pebble") || report.contains("pebble"), "issued by pebble: {report}");

    // A renewal, forced (every certificate is due within 100 years), while requests run.
    let before = served_serial(&host, https_port);
    p.ok(&["letsencrypt:set", "--global", "renew-within", "36500"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, root, host) = (stop.clone(), root.clone(), host.clone());
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            for _ in 0..2000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                match https_get(&root, &host, https_port) {
                    Ok((_, 200, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        })
    };
    let tasks = p.ok(&["cron:list", "--global"]);
    let id = tasks.lines().nth(2).and_then(|l| l.split_whitespace().next()).unwrap().to_string();
    assert!(tasks.contains("letsencrypt:auto-renew"), "{tasks}");
    let o = le(&["cron:run", "--global", &id]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = load.join().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&format!("Renewed {app}")), "{}", text(&o));
    assert!(failed.is_empty() && ok > 0, "{ok} requests served, failed: {failed:?}");
    eprintln!("{ok} HTTPS requests during the renewal, none failed");
    assert_ne!(served_serial(&host, https_port), before, "the new certificate is served");
    assert!(p.ok(&["cron:runs", "--global"]).contains("succeeded"));

    // A renewal that fails is recorded and shown; the certificate in force keeps serving.
    p.ok(&["letsencrypt:set", "--global", "server", &format!("https://127.0.0.1:{}/dir", free_port())]);
    let o = le(&["letsencrypt:auto-renew"]);
    assert!(!o.status.success() && text(&o).contains("cannot renew the certificate of t-acme"), "{}", text(&o));
    let list = p.ok(&["letsencrypt:list"]);
    assert!(list.lines().any(|l| l.starts_with(app) && l.contains("cannot register")), "{list}");
    assert_eq!(https_get(&root, &host, https_port).unwrap().1, 200);

    p.ok(&["letsencrypt:disable", app]);
    assert_eq!(p.get(app).unwrap(), (200, "null-greeting".to_string()));
}
