//! Debian's pebble for the HTTPS tests and `make bench`: a real ACME server on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::free_port;

/// Debian's pebble (an RFC 8555 ACME server) and pebble-challtestsrv (its DNS: every name is
/// 127.0.0.1), on loopback ports of their own; stopped when dropped.
pub struct Pebble {
    children: Vec<std::process::Child>,
    pub directory: String,
    management: u16,
    /// The CA of pebble's own HTTPS listener (not of what it issues).
    pub listener_ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pebble {
    /// `http_port`: where pebble connects to validate HTTP-01 (the router's HTTP port).
    pub fn start(http_port: u16) -> Pebble {
        for tool in ["pebble", "pebble-challtestsrv"] {
            let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
            assert!(found.status.success(), "{tool} is missing: apt-get install pebble (make test installs it)");
        }
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let cert = rcgen::CertificateParams::new(names).unwrap().self_signed(&key).unwrap();
        let (listener_ca, listener_key) = (dir.path().join("listener.crt"), dir.path().join("listener.key"));
        std::fs::write(&listener_ca, cert.pem()).unwrap();
        std::fs::write(&listener_key, key.serialize_pem()).unwrap();
        let (acme, management, dns, dns_management) = (free_port(), free_port(), free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": listener_ca, "privateKey": listener_key,
            "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": false
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}"), "-defaultIPv4", "127.0.0.1"])
            .args(["-defaultIPv6", ""])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let p = Pebble {
            children: vec![dns_server, pebble],
            directory: format!("https://127.0.0.1:{acme}/dir"),
            management,
            listener_ca,
            _dir: dir,
        };
        let started = std::time::Instant::now();
        while p.fetch(&p.directory).is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "pebble did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        p
    }

    pub fn fetch(&self, url: &str) -> Result<String, String> {
        let o = Command::new("curl").args(["-fsS", "--cacert"]).arg(&self.listener_ca).arg(url).output().unwrap();
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    /// The root that signs what pebble issues (it makes a new one each time it starts).
    pub fn issuing_root(&self, dir: &Path) -> PathBuf {
        let pem = self.fetch(&format!("https://127.0.0.1:{}/roots/0", self.management)).unwrap();
        let path = dir.join("pebble-root.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
