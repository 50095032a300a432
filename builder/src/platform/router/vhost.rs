//! One app's nginx vhost, as a type: its host names, where its web processes answer, the
//! hosts its certificate serves over HTTPS (their HTTP requests redirected with 301), and the
//! ACME HTTP-01 answers it gives while a certificate is being issued. [`Vhost::render`] writes
//! it; [`Vhost::parse`] reads back only what render writes, so root's router can rebuild the
//! file from checked values and nothing else (see `Router::render_from`).

use std::net::SocketAddr;
use std::path::PathBuf;

/// The hosts a certificate serves, and where nginx finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub hosts: Vec<String>,
    pub chain: PathBuf,
    pub key: PathBuf,
}

/// An HTTP-01 answer: `/.well-known/acme-challenge/TOKEN` answers KEY_AUTHORIZATION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub token: String,
    pub key_authorization: String,
}

impl Challenge {
    /// Both are base64url (RFC 8555: a token, and TOKEN.THUMBPRINT): nothing nginx would read
    /// as syntax.
    pub fn new(token: &str, key_authorization: &str) -> Option<Challenge> {
        let base64url = |s: &str, dots: usize| {
            !s.is_empty()
                && s.len() <= 256
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && s.matches('.').count() == dots
        };
        (base64url(token, 0) && base64url(key_authorization, 1) && key_authorization.starts_with(token))
            .then(|| Challenge { token: token.into(), key_authorization: key_authorization.into() })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vhost {
    pub app: String,
    pub hosts: Vec<String>,
    /// Where its web processes answer: loopback ports of this host's containers, or swarm
    /// tasks' node addresses and ports.
    pub upstreams: Vec<SocketAddr>,
    /// Other HTTP ports it answers on, at the router's address (`ports:add http:8090:5000`).
    pub listens: Vec<u16>,
    pub tls: Option<Tls>,
    pub challenges: Vec<Challenge>,
    /// Where its access and error logs go (`APP.access.log`, `APP.error.log`); not read back.
    pub logs: Option<PathBuf>,
}

const PROXY: &str = "        proxy_pass http://slipway-{app};
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Request-Id $request_id;
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_next_upstream_tries 3;
        proxy_connect_timeout 5s;
";

impl Vhost {
    /// The nginx configuration: HTTP on `listen`; HTTPS (HTTP/2) on `https_listen` for the hosts
    /// the certificate serves.
    pub fn render(&self, listen: &str, https_listen: &str) -> String {
        let app = &self.app;
        let servers: String = self.upstreams.iter().map(|a| format!("    server {a} max_fails=0;\n")).collect();
        let upstream = if self.upstreams.is_empty() { "    server 127.0.0.1:1 down;\n".to_string() } else { servers };
        let proxy = PROXY.replace("{app}", app);
        let challenges: String = self
            .challenges
            .iter()
            .map(|c| {
                format!(
                    "    location = /.well-known/acme-challenge/{} {{ default_type text/plain; return 200 \"{}\"; }}\n",
                    c.token, c.key_authorization
                )
            })
            .collect();
        let logs = match &self.logs {
            Some(dir) => format!(
                "    access_log {0}/{app}.access.log;\n    error_log {0}/{app}.error.log warn;\n",
                dir.display()
            ),
            None => String::new(),
        };
        // Each HTTP server: its logs, then the ACME answers.
        let challenges = logs.clone() + &challenges;
        let tls_hosts = self.tls.as_ref().map(|t| t.hosts.clone()).unwrap_or_default();
        let plain: Vec<&String> = self.hosts.iter().filter(|h| !tls_hosts.contains(h)).collect();
        let mut text =
            format!("# app {app}: written by slipway\nupstream slipway-{app} {{\n{upstream}    keepalive 32;\n}}\n");
        if !plain.is_empty() || self.tls.is_none() {
            let names: Vec<&str> = plain.iter().map(|h| h.as_str()).collect();
            text += &format!(
                "server {{\n    listen {listen};\n    server_name {};\n{challenges}    location / {{\n{proxy}    }}\n}}\n",
                names.join(" ")
            );
        }
        let ip = listen.rsplit_once(':').map_or("0.0.0.0", |(ip, _)| ip);
        let all = self.hosts.join(" ");
        for port in &self.listens {
            text += &format!(
                "server {{\n    # port {port}\n    listen {ip}:{port};\n    server_name {all};\n{logs}    location / {{\n{proxy}    }}\n}}\n"
            );
        }
        if let Some(tls) = &self.tls {
            let port = https_listen.rsplit(':').next().unwrap_or("443");
            let port = if port == "443" { String::new() } else { format!(":{port}") };
            let names = tls.hosts.join(" ");
            text += &format!(
                "server {{\n    listen {listen};\n    server_name {names};\n{challenges}    location / {{ return 301 https://$host{port}$request_uri; }}\n}}\n"
            );
            text += &format!(
                "server {{\n    listen {https_listen} ssl http2;\n    server_name {names};\n{logs}    ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_session_cache shared:slipway:10m;\n    location / {{\n{proxy}    }}\n}}\n",
                tls.chain.display(),
                tls.key.display(),
            );
        }
        text
    }

    /// What [`Vhost::render`] wrote, back (None: not one of ours). The certificate's paths
    /// are not read back: the caller says where its copy is.
    pub fn parse(app: &str, text: &str) -> Option<Vhost> {
        let (mut hosts, mut tls_hosts, mut upstreams, mut challenges) = (Vec::new(), None, Vec::new(), Vec::new());
        let mut listens = Vec::new();
        let mut named = false;
        let mut in_tls = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if line == "server {" {
                in_tls = false;
            } else if trimmed.starts_with("listen ") && trimmed.ends_with(" ssl http2;") {
                in_tls = true;
            } else if let Some(names) = trimmed.strip_prefix("server_name ").and_then(|n| n.strip_suffix(';')) {
                let names: Vec<String> = names.split_whitespace().map(str::to_string).collect();
                named = true;
                if in_tls {
                    tls_hosts = Some(names);
                } else {
                    for name in names {
                        if !hosts.contains(&name) {
                            hosts.push(name);
                        }
                    }
                }
            } else if let Some(port) = trimmed.strip_prefix("# port ") {
                listens.push(port.parse::<u16>().ok().filter(|p| *p > 0)?);
            } else if let Some(rest) =
                trimmed.strip_prefix("server ").filter(|r| r.starts_with(|c: char| c.is_ascii_digit() || c == '['))
            {
                let (addr, tail) = rest.split_once(' ')?;
                let addr: SocketAddr = addr.parse().ok().filter(upstream_ok)?;
                if tail != "down;" {
                    upstreams.push(addr);
                }
            } else if let Some(rest) = trimmed.strip_prefix("location = /.well-known/acme-challenge/") {
                let (token, rest) = rest.split_once(" { default_type text/plain; return 200 \"")?;
                let answer = rest.strip_suffix("\"; }")?;
                let challenge = Challenge::new(token, answer)?;
                if !challenges.contains(&challenge) {
                    challenges.push(challenge);
                }
            }
        }
        if !named {
            return None;
        }
        let tls = tls_hosts.map(|hosts| Tls { hosts, chain: PathBuf::new(), key: PathBuf::new() });
        Some(Vhost { app: app.to_string(), hosts, upstreams, listens, tls, challenges, logs: None })
    }
}

/// An address the router may send an app's traffic to: a loopback port, or a swarm node's
/// task port; never port 0, an unspecified, multicast or link-local (cloud metadata) address.
pub fn upstream_ok(addr: &SocketAddr) -> bool {
    let ip = addr.ip();
    let link_local = match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local() || v4.is_broadcast(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !link_local
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vhost(tls: bool) -> Vhost {
        Vhost {
            app: "demo".into(),
            hosts: vec!["demo.example.com".into(), "www.example.com".into()],
            upstreams: vec!["127.0.0.1:3001".parse().unwrap(), "10.1.2.3:3002".parse().unwrap()],
            listens: vec![8090],
            tls: tls.then(|| Tls {
                hosts: vec!["www.example.com".into()],
                chain: "/c/demo.crt".into(),
                key: "/c/demo.key".into(),
            }),
            challenges: vec![Challenge::new("tok-EN_1", "tok-EN_1.thumb_PRINT").unwrap()],
            logs: None,
        }
    }

    #[test]
    fn a_vhost_parses_back_to_what_was_written() {
        for tls in [false, true] {
            let written = vhost(tls);
            let mut parsed = Vhost::parse("demo", &written.render("127.0.0.1:80", "127.0.0.1:8443")).unwrap();
            if let (Some(p), Some(w)) = (parsed.tls.as_mut(), written.tls.as_ref()) {
                (p.chain, p.key) = (w.chain.clone(), w.key.clone());
            }
            assert_eq!(parsed, written);
        }
        let plain = Vhost { upstreams: vec![], tls: None, challenges: vec![], ..vhost(false) };
        assert_eq!(Vhost::parse("demo", &plain.render("127.0.0.1:80", "127.0.0.1:443")).unwrap(), plain);
        assert_eq!(Vhost::parse("demo", "load_module /tmp/evil.so;\n"), None);
    }

    #[test]
    fn upstreams_are_loopback_or_node_addresses_only() {
        let text = vhost(false).render("127.0.0.1:80", "127.0.0.1:443");
        assert!(Vhost::parse("demo", &text).is_some());
        for bad in ["169.254.169.254:80", "0.0.0.0:8080", "10.1.2.3:0", "224.0.0.1:80", "[fe80::1]:80"] {
            let evil = text.replace("10.1.2.3:3002", bad);
            assert!(Vhost::parse("demo", &evil).is_none(), "{bad} is refused");
        }
    }

    #[test]
    fn every_server_logs_to_the_apps_files() {
        let site = Vhost { logs: Some("/r/logs".into()), ..vhost(true) };
        let text = site.render("127.0.0.1:80", "127.0.0.1:443");
        // HTTP, the redirect to HTTPS, HTTPS, and the app's other HTTP port (8090).
        assert_eq!(text.matches("    access_log /r/logs/demo.access.log;\n").count(), 4, "{text}");
        assert_eq!(text.matches("    error_log /r/logs/demo.error.log warn;\n").count(), 4, "{text}");
        assert!(text.contains(
            "    # port 8090\n    listen 127.0.0.1:8090;\n    server_name demo.example.com www.example.com;"
        ));
        assert_eq!(Vhost::parse("demo", &text).unwrap().logs, None, "not read back");
    }

    #[test]
    fn tls_hosts_redirect_to_https_and_the_others_stay_plain() {
        let text = vhost(true).render("0.0.0.0:80", "0.0.0.0:8443");
        assert!(text.contains("return 301 https://$host:8443$request_uri;"), "{text}");
        assert!(text.contains("listen 0.0.0.0:8443 ssl http2;\n    server_name www.example.com;"), "{text}");
        assert!(text.contains("server_name demo.example.com;\n"), "the host the certificate lacks: {text}");
        let on_443 = vhost(true).render("0.0.0.0:80", "0.0.0.0:443");
        assert!(on_443.contains("return 301 https://$host$request_uri;"), "{on_443}");
    }

    #[test]
    fn challenges_are_base64url_only() {
        assert!(Challenge::new("abc", "abc.def").is_some());
        for (token, answer) in [("a b", "a b.c"), ("abc", "abc.d\";"), ("abc", "abc"), ("a/b", "a/b.c"), ("", ".x")] {
            assert!(Challenge::new(token, answer).is_none(), "{token} {answer}");
        }
        let evil = "server {\n    listen 1;\n    server_name x;\n    location = /.well-known/acme-challenge/a { default_type text/plain; return 200 \"a.b\"; } include /etc/x; }\n";
        let parsed = Vhost::parse("x", evil);
        assert!(parsed.is_none_or(|v| v.challenges.is_empty()), "not the exact line render writes");
    }
}
