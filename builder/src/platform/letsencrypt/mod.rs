//! Let's Encrypt built in, with dokku-letsencrypt's commands: an app with it enabled gets a
//! certificate for its hosts from the ACME server (Let's Encrypt production by default; staging
//! or any RFC 8555 server by URL), validated over HTTP-01 by the router while the app serves, and
//! stored as the app's certificate ([`super::certs`]). `letsencrypt:auto-renew` renews those
//! that expire within `renew-within` days (30); the daemon's scheduler runs it every day
//! ([`RENEW_SCHEDULE`]). Each app keeps its last renewal and last error, which
//! `letsencrypt:list` shows: a renewal never fails silently.

pub mod acme;

use anyhow::{bail, Result};

use super::certs::{self, CertInfo};
use super::runner::Runner;
use super::state::State;
use crate::units::now;

pub const PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// When the scheduler runs `letsencrypt:auto-renew` (UTC).
pub const RENEW_SCHEDULE: &str = "17 3 * * *";

const ENABLED: &str = "letsencrypt.enabled";
const LAST_RENEWAL: &str = "letsencrypt.last-renewal";
const LAST_ERROR: &str = "letsencrypt.last-error";

/// A `letsencrypt:set` key: `email` (global or per app), `server` and `renew-within` (global).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    Email,
    Server,
    RenewWithin,
}

impl Property {
    pub fn named(key: &str) -> Result<Property> {
        Ok(match key {
            "email" => Property::Email,
            "server" => Property::Server,
            "renew-within" => Property::RenewWithin,
            _ => bail!("unknown letsencrypt property {key:?}: use email, server or renew-within"),
        })
    }

    fn key(self) -> &'static str {
        match self {
            Property::Email => "letsencrypt.email",
            Property::Server => "letsencrypt.server",
            Property::RenewWithin => "letsencrypt.renew-within",
        }
    }

    /// The value to store: checked, `staging` and `production` spelled out.
    pub fn checked(self, value: &str) -> Result<String> {
        match self {
            Property::Email => {
                let ok = value.len() <= 254
                    && value.split_once('@').is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                    && value.chars().all(|c| c.is_ascii_graphic() && !"<>\"'\\;,".contains(c));
                if !ok {
                    bail!("{value:?} is not an email address");
                }
                Ok(value.to_string())
            }
            Property::Server => Ok(match value {
                "production" => PRODUCTION.into(),
                "staging" => STAGING.into(),
                url if url.starts_with("https://")
                    && url.len() <= 512
                    && url.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') =>
                {
                    url.into()
                }
                _ => bail!("{value:?} is not an ACME server: use production, staging or an https:// directory URL"),
            }),
            Property::RenewWithin => match value.parse::<u32>() {
                Ok(days @ 1..=36500) => Ok(days.to_string()),
                _ => bail!("{value:?} is not a number of days (1 or more)"),
            },
        }
    }
}

/// The settings an app's certificate is requested with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub server: String,
    pub email: Option<String>,
    pub renew_within_days: i64,
}

pub fn config(state: &State, app: &str) -> Result<Config> {
    let email = match state.setting(app, Property::Email.key())? {
        Some(email) => Some(email),
        None => state.setting("", Property::Email.key())?,
    };
    Ok(Config {
        server: state.setting("", Property::Server.key())?.unwrap_or_else(|| PRODUCTION.into()),
        email,
        renew_within_days: state.setting("", Property::RenewWithin.key())?.and_then(|d| d.parse().ok()).unwrap_or(30),
    })
}

/// Stores a property for `app` ("" for --global).
pub fn set(state: &State, app: &str, property: Property, value: &str) -> Result<String> {
    if !app.is_empty() && property != Property::Email {
        bail!("only email is set per app; set {} with --global", property.key().trim_start_matches("letsencrypt."));
    }
    let value = property.checked(value)?;
    state.set_setting(app, property.key(), Some(&value))?;
    Ok(value)
}

pub fn is_enabled(state: &State, app: &str) -> Result<bool> {
    Ok(state.setting(app, ENABLED)?.as_deref() == Some("true"))
}

/// The apps with Let's Encrypt enabled.
pub fn enabled_apps(state: &State) -> Result<Vec<String>> {
    let mut apps = Vec::new();
    for app in state.apps()? {
        if is_enabled(state, &app)? {
            apps.push(app);
        }
    }
    Ok(apps)
}

/// An app's last renewal (Unix seconds) and last error.
pub fn history(state: &State, app: &str) -> Result<(Option<i64>, Option<String>)> {
    let last = state.setting(app, LAST_RENEWAL)?.and_then(|t| t.parse().ok());
    Ok((last, state.setting(app, LAST_ERROR)?))
}

/// Gets a certificate for the app's hosts and serves it; records the renewal, or the error.
pub async fn obtain(r: &Runner, app: &str) -> Result<CertInfo> {
    let result = async {
        let config = config(&r.state, app)?;
        let hosts = r.hosts(app)?;
        let (chain, key) = acme::issue(r, app, &hosts, &config.server, config.email.as_deref()).await?;
        let info = certs::inspect_for(chain.as_bytes(), key.as_bytes(), &hosts)?;
        certs::install(r, app, chain.as_bytes(), key.as_bytes()).await?;
        Ok::<_, anyhow::Error>(info)
    }
    .await;
    match &result {
        Ok(_) => {
            r.state.set_setting(app, LAST_RENEWAL, Some(&now().to_string()))?;
            r.state.set_setting(app, LAST_ERROR, None)?;
        }
        Err(e) => {
            let said = crate::output::printable(&format!("{e:#}")).replace('\n', " ");
            r.state.set_setting(app, LAST_ERROR, Some(&format!("{}: {said}", now())))?;
        }
    }
    result
}

pub fn set_enabled(state: &State, app: &str, enabled: bool) -> Result<()> {
    state.set_setting(app, ENABLED, enabled.then_some("true"))?;
    if !enabled {
        state.set_setting(app, LAST_ERROR, None)?;
    }
    Ok(())
}

/// Whether an app's certificate is due for renewal: none, or expiring within the window.
pub fn due(state: &State, app: &str) -> Result<bool> {
    let window = config(state, app)?.renew_within_days * 86400;
    Ok(match certs::info(&state.data_dir, app) {
        Ok(Some(info)) => info.not_after - now() <= window,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_checked_and_apps_only_set_their_email() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        state.create_app("shop").unwrap();
        assert_eq!(config(&state, "shop").unwrap().server, PRODUCTION);
        assert_eq!(set(&state, "", Property::Server, "staging").unwrap(), STAGING);
        set(&state, "", Property::Email, "ops@example.com").unwrap();
        set(&state, "shop", Property::Email, "shop@example.com").unwrap();
        set(&state, "", Property::RenewWithin, "45").unwrap();
        let c = config(&state, "shop").unwrap();
        assert_eq!(
            (c.server.as_str(), c.email.as_deref(), c.renew_within_days),
            (STAGING, Some("shop@example.com"), 45)
        );
        for (property, bad) in [
            (Property::Email, "not-an-address"),
            (Property::Email, "a@b.c\nd"),
            (Property::Server, "http://plain.example/dir"),
            (Property::Server, "https://x/\"dir"),
            (Property::RenewWithin, "0"),
            (Property::RenewWithin, "-3"),
        ] {
            assert!(set(&state, "", property, bad).is_err(), "{bad}");
        }
        assert!(set(&state, "shop", Property::Server, "staging").is_err(), "the server is global");
        assert!(Property::named("mailto").is_err());
        assert!(due(&state, "shop").unwrap(), "no certificate yet: due");
        set_enabled(&state, "shop", true).unwrap();
        assert_eq!(enabled_apps(&state).unwrap(), ["shop"]);
    }
}
