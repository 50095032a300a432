//! The names that reach files slipway writes (nginx config, paths): app names, domains and the
//! router's listen address. Each is checked where it enters and again where it is written.

use anyhow::{bail, Result};

/// Host names slipway keeps for itself (the router's generation probe).
pub const INTERNAL_SUFFIX: &str = ".slipway.invalid";

/// Names Dokku and slipway reserve for themselves.
const RESERVED_APPS: [&str; 3] = ["slipway", "global", "tls"];

/// Whether a name is safe in paths and nginx config: lowercase letters, digits, `-` and `.`,
/// starting with a letter or digit, no `..`, at most 63 characters. Every app name ever
/// accepted passes; [`validate_app_name`] is stricter for new apps.
pub fn is_safe_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.contains("..")
}

/// Dokku's rule: lowercase letters, digits, `-` and `.`, starting with a letter or digit; no
/// `..`, no trailing `-` or `.`, at most 63 characters, and not a reserved name.
pub fn validate_app_name(name: &str) -> Result<()> {
    let ok = is_safe_app_name(name) && !name.ends_with(['-', '.']);
    if !ok {
        bail!(
            "{name:?} is not a valid app name: use lowercase letters, digits, '-' and '.', starting with a letter or digit and not ending with '-' or '.'"
        );
    }
    if RESERVED_APPS.contains(&name) {
        bail!("{name:?} is reserved: choose another app name");
    }
    Ok(())
}

/// An RFC 1123 host name, lowercased: labels of letters, digits and `-` (not at either end),
/// 63 characters at most each, 253 in all; never one of slipway's internal names.
pub fn validate_domain(domain: &str) -> Result<String> {
    let d = domain.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.is_empty() || d.len() > 253 || !d.split('.').all(label_ok) {
        bail!(
            "{domain:?} is not a valid domain: use a host name such as www.example.com (letters, digits, '-' and '.')"
        );
    }
    if d.ends_with(INTERNAL_SUFFIX) || d == INTERNAL_SUFFIX.trim_start_matches('.') {
        bail!("{domain:?} is one of slipway's internal names: choose another domain");
    }
    Ok(d)
}

/// The router's listen address: `IP:PORT` (`[::]:80` for IPv6).
pub fn validate_listen(address: &str) -> Result<()> {
    if address.parse::<std::net::SocketAddr>().is_err() {
        bail!("{address:?} is not a listen address: use IP:PORT, e.g. 0.0.0.0:80 or 127.0.0.1:8080");
    }
    Ok(())
}

/// The port of a listen address (`IP:PORT`, `[::]:80`).
pub fn listen_port(address: &str) -> Option<u16> {
    address.rsplit_once(':').and_then(|(_, port)| port.parse().ok())
}

/// The IP of a listen address, without brackets (`0.0.0.0` when it has none).
pub fn listen_ip(address: &str) -> &str {
    address.rsplit_once(':').map_or("0.0.0.0", |(ip, _)| ip).trim_matches(['[', ']'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_dokkus_rules() {
        for good in ["myapp", "my-app", "a1.b2", "9lives"] {
            assert!(validate_app_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "My_App", "a..b", "app-", "app.", "x/y", "slipway", &"a".repeat(64)] {
            assert!(validate_app_name(bad).is_err(), "{bad}");
        }
        // Names older slipways accepted stay usable (paths, router), though new apps may not
        // take them; nothing unsafe passes.
        for old in ["app-", "tls", "a.b."] {
            assert!(is_safe_app_name(old) && validate_app_name(old).is_err(), "{old}");
        }
        for unsafe_name in ["../x", "a/b", "a..b", "A", "", "-x", "x y"] {
            assert!(!is_safe_app_name(unsafe_name), "{unsafe_name}");
        }
    }

    #[test]
    fn domains_are_host_names_and_lowercased() {
        assert_eq!(validate_domain("WWW.Example.com").unwrap(), "www.example.com");
        assert_eq!(validate_domain("localhost").unwrap(), "localhost");
        for bad in [
            "x.example; location /d/ { proxy_pass http://unix:/var/run/docker.sock:/; } #",
            "a b.com",
            "-a.com",
            "a-.com",
            "a..com",
            "",
            "generation.slipway.invalid",
            "*.example.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(validate_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses_parse() {
        assert!(validate_listen("0.0.0.0:80").is_ok());
        assert!(validate_listen("[::]:8080").is_ok());
        assert_eq!((listen_ip("[::]:8080"), listen_port("[::]:8080")), ("::", Some(8080)));
        assert_eq!((listen_ip("127.0.0.1:80"), listen_port("127.0.0.1:80")), ("127.0.0.1", Some(80)));
        for bad in ["127.0.0.1:1; location / { } #", "localhost:80", "80", "0.0.0.0:99999"] {
            assert!(validate_listen(bad).is_err(), "{bad}");
        }
    }
}
