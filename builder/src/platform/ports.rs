//! An app's port mappings (Dokku's `ports:*`): `http:HOST_PORT:CONTAINER_PORT`. The container
//! port is where its web processes listen (`PORT` says so; the default is 5000, or a
//! Dockerfile image's first EXPOSE, as on Dokku); each host port other than the router's own
//! is one more address the router answers the app's hosts on. One container port per app.

use anyhow::{bail, Context, Result};

use super::state::State;

/// One mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortMap {
    pub host: u16,
    pub container: u16,
}

impl PortMap {
    pub fn parse(text: &str) -> Result<PortMap> {
        let bad = || {
            format!(
                "{:?} is not a port mapping: expected http:HOST_PORT:CONTAINER_PORT, e.g. http:8090:5000",
                crate::output::printable(text)
            )
        };
        let parts: Vec<&str> = text.split(':').collect();
        let [scheme, host, container] = parts.as_slice() else { bail!(bad()) };
        match *scheme {
            "http" => {}
            "https" => bail!("{text}: HTTPS is served on https-listen once the app has a certificate (certs:add, letsencrypt:enable); map http ports here"),
            _ => bail!(bad()),
        }
        let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
        let (host, container) = (port(host).with_context(bad)?, port(container).with_context(bad)?);
        Ok(PortMap { host, container })
    }
}

impl std::fmt::Display for PortMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http:{}:{}", self.host, self.container)
    }
}

/// The app's mappings, as set (none: the default).
pub fn mappings(state: &State, app: &str) -> Result<Vec<PortMap>> {
    let stored = state.setting(app, "ports")?.unwrap_or_default();
    stored.split_whitespace().map(PortMap::parse).collect()
}

/// Stores the mappings (sorted, without repeats); refuses two container ports.
pub fn set_mappings(state: &State, app: &str, maps: &[PortMap]) -> Result<()> {
    let mut maps = maps.to_vec();
    maps.sort();
    maps.dedup();
    if maps.windows(2).any(|w| w[0].container != w[1].container) {
        bail!("{app}'s web processes listen on one container port: map every host port to the same one");
    }
    if maps.windows(2).any(|w| w[0].host == w[1].host) {
        bail!("a host port can be mapped once");
    }
    let text: Vec<String> = maps.iter().map(ToString::to_string).collect();
    state.set_setting(app, "ports", (!maps.is_empty()).then(|| text.join(" ")).as_deref())
}

/// The container port the mappings set, if any.
pub fn container_port(state: &State, app: &str) -> Result<Option<u16>> {
    Ok(mappings(state, app)?.first().map(|m| m.container))
}

/// The host ports the router answers the app on besides its own address's (`listen`).
pub fn extra_http_ports(state: &State, app: &str, listen: &str) -> Result<Vec<u16>> {
    let own = super::names::listen_port(listen);
    Ok(mappings(state, app)?.into_iter().map(|m| m.host).filter(|h| Some(*h) != own).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse_store_and_give_the_extra_ports() {
        assert_eq!(PortMap::parse("http:8090:5000").unwrap(), PortMap { host: 8090, container: 5000 });
        for bad in ["http:0:5000", "tcp:1:2", "http:8090", "http:x:5000", "http:8090:70000", "http:1:2:3"] {
            assert!(PortMap::parse(bad).is_err(), "{bad}");
        }
        assert!(PortMap::parse("https:443:5000").unwrap_err().to_string().contains("certs:add"));
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        state.create_app("web").unwrap();
        let maps = [PortMap::parse("http:8090:5000").unwrap(), PortMap::parse("http:80:5000").unwrap()];
        set_mappings(&state, "web", &maps).unwrap();
        assert_eq!(mappings(&state, "web").unwrap().len(), 2);
        assert_eq!(container_port(&state, "web").unwrap(), Some(5000));
        assert_eq!(extra_http_ports(&state, "web", "0.0.0.0:80").unwrap(), [8090]);
        let two = [PortMap::parse("http:8090:5000").unwrap(), PortMap::parse("http:8091:6000").unwrap()];
        assert!(set_mappings(&state, "web", &two).is_err());
        set_mappings(&state, "web", &[]).unwrap();
        assert!(mappings(&state, "web").unwrap().is_empty());
    }
}
