//! Who may do what over SSH (the host's own users are admins). Dokku treats every key as an
//! admin; slipway keys have a role: an admin key may do everything SSH offers, a developer key
//! only works on the apps it created (its first push creates and owns one) or was granted with
//! `acl:add APP KEY`. Global config, global settings, domains outside `APP.GLOBAL_DOMAIN` and
//! grants are for admins.

use anyhow::{bail, Result};

use super::services::Service;
use super::settings::GlobalSettings;
use super::state::State;

/// A key's role, kept in its `authorized_keys` line (`ssh-command --role ROLE NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Admin,
    Developer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
        }
    }
}

/// The key a command came in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key: String,
    pub role: Role,
}

/// What a command touches, for the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing of anyone's (apps:list shows a developer only its apps).
    Nothing,
    /// Creating an app (it becomes the caller's).
    Create,
    /// One app.
    App(String),
    /// One app's domain.
    Domain { app: String, domain: String },
    /// A backing service: one the key made, or one linked to an app it may use.
    Service(Service),
    /// Linking a service to an app: both.
    ServiceAndApp(Service, String),
    /// Global config, grants: admins only.
    Admin,
}

impl Caller {
    /// Refuses, with one line naming the cause, what the caller may not do.
    pub fn check(&self, state: &State, need: &Need) -> Result<()> {
        if self.role == Role::Admin {
            return Ok(());
        }
        let key = &self.key;
        match need {
            Need::Nothing | Need::Create => Ok(()),
            Need::Admin => bail!("key '{key}' is a developer key: only an admin key may do that"),
            Need::App(app) => self.check_app(state, app),
            Need::Service(svc) => self.check_service(state, svc),
            Need::ServiceAndApp(svc, app) => {
                self.check_service(state, svc)?;
                self.check_app(state, app)
            }
            Need::Domain { app, domain } => {
                self.check_app(state, app)?;
                let own = format!(".{app}.{}", GlobalSettings::load(state)?.domain);
                if !domain.to_ascii_lowercase().ends_with(&own) {
                    bail!("key '{key}' may add domains under {} only; ask an admin for {domain}", &own[1..]);
                }
                Ok(())
            }
        }
    }

    fn check_app(&self, state: &State, app: &str) -> Result<()> {
        // The same answer whether the app exists or not: a developer learns nothing of others' apps.
        if !state.may_use(app, &self.key)? {
            bail!(
                "key '{}' has no access to app '{app}'; an admin can grant it with `acl:add {app} {}`",
                self.key,
                self.key
            );
        }
        Ok(())
    }

    fn check_service(&self, state: &State, svc: &Service) -> Result<()> {
        let owned = svc.record(state)?.is_some_and(|r| r.owner.as_deref() == Some(self.key.as_str()));
        let mut linked = false;
        for link in svc.links(state)? {
            linked |= state.may_use(&link.app, &self.key)?;
        }
        if !owned && !linked {
            bail!(
                "key '{}' has no access to the {}: a developer key may use the services it made or that its apps link to",
                self.key,
                svc.label()
            );
        }
        Ok(())
    }

    /// Whether `app` shows in this caller's `apps:list`.
    pub fn sees(&self, state: &State, app: &str) -> Result<bool> {
        Ok(self.role == Role::Admin || state.may_use(app, &self.key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn developers_reach_their_own_and_granted_apps_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        for app in ["mine", "theirs"] {
            s.create_app(app).unwrap();
        }
        s.set_owner("mine", "dev").unwrap();
        let dev = Caller { key: "dev".into(), role: Role::Developer };
        let admin = Caller { key: "root".into(), role: Role::Admin };
        assert!(dev.check(&s, &Need::App("mine".into())).is_ok());
        let err = dev.check(&s, &Need::App("theirs".into())).unwrap_err().to_string();
        assert!(err.contains("has no access to app 'theirs'"), "{err}");
        assert!(dev.check(&s, &Need::App("nowhere".into())).is_err());
        assert!(dev.check(&s, &Need::Admin).is_err());
        assert!(admin.check(&s, &Need::App("theirs".into())).is_ok() && admin.check(&s, &Need::Admin).is_ok());
        s.grant("theirs", "dev").unwrap();
        assert!(dev.check(&s, &Need::App("theirs".into())).is_ok());
        assert!(dev.sees(&s, "theirs").unwrap());
        s.revoke("theirs", "dev").unwrap();
        assert!(!dev.sees(&s, "theirs").unwrap());
        let own = Need::Domain { app: "mine".into(), domain: "api.mine.slipway.localhost".into() };
        let other = Need::Domain { app: "mine".into(), domain: "www.example.com".into() };
        assert!(dev.check(&s, &own).is_ok());
        assert!(dev.check(&s, &other).unwrap_err().to_string().contains("ask an admin"));
    }

    #[test]
    fn developers_reach_the_services_they_made_or_their_apps_link_to() {
        use crate::platform::services::{Kind, Service};
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.create_app("mine").unwrap();
        s.set_owner("mine", "dev").unwrap();
        let dev = Caller { key: "dev".into(), role: Role::Developer };
        let (made, linked, other) = (
            Service::new(Kind::Postgres, "made").unwrap(),
            Service::new(Kind::Redis, "linked").unwrap(),
            Service::new(Kind::Postgres, "other").unwrap(),
        );
        made.insert(&s, Some("dev"), None).unwrap();
        linked.insert(&s, Some("admin"), None).unwrap();
        other.insert(&s, Some("admin"), None).unwrap();
        let tx = s.transaction().unwrap();
        linked.link(&tx, "mine", "REDIS_URL").unwrap();
        tx.commit().unwrap();
        assert!(dev.check(&s, &Need::Service(made.clone())).is_ok());
        assert!(dev.check(&s, &Need::Service(linked)).is_ok());
        let err = dev.check(&s, &Need::Service(other.clone())).unwrap_err().to_string();
        assert!(err.contains("no access to the Postgres service other"), "{err}");
        assert!(dev.check(&s, &Need::ServiceAndApp(other, "mine".into())).is_err());
        assert!(dev.check(&s, &Need::ServiceAndApp(made, "theirs".into())).is_err());
    }
}
