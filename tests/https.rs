//! HTTPS through the real router (nginx) on loopback: an app's own certificate (`certs:*`),
//! served over HTTP/2, its HTTP requests redirected, checked before it is taken.
//!
//! They need the stack images (`make stack-image`, which `make test` runs first).

#[path = "common/mod.rs"]
mod common;
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
    assert_eq!((version.as_str(), code, body.as_str()), ("2", 200, "null-greeting"), "HTTP/2 over TLS");
    assert_eq!(
        http_head(p.port, &host),
        (301, format!("https://{host}:{https_port}/some/path?q=1")),
        "HTTP redirects to HTTPS"
    );
    let report = p.ok(&["certs:report", app]);
    assert!(report.contains("Ssl enabled:") && report.contains(&host) && report.contains("days left"), "{report}");

    // A new release keeps the certificate.
    p.ok(&["config:set", app, "GREETING=over tls"]);
    assert_eq!(https_get(&crt, &host, https_port).unwrap().2, "over tls");

    // Removed: plain HTTP again, and nothing on HTTPS for it.
    p.ok(&["certs:remove", app]);
    assert_eq!(p.get(app).unwrap(), (200, "over tls".to_string()));
    assert!(https_get(&crt, &host, https_port).is_err(), "no HTTPS without a certificate");
    assert!(!p.slipway(&["certs:remove", app]).status.success(), "it has none now");
}
