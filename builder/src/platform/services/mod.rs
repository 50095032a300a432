//! Backing services apps link to (dokku-postgres' and dokku-redis' commands): each service is
//! one container of an image made here from Debian's packages ([`image`]), its data in a named
//! volume, on a Docker network of its own that only the apps linked to it join ([`container`]);
//! never published, unless `KIND:expose` puts it on 127.0.0.1. A link sets the app's
//! `DATABASE_URL` (`REDIS_URL`) as a new release. Backups ([`backup`]) are files in a host
//! directory, made by hand or on a schedule run by the platform's one scheduler.
//!
//! The state: a row per service and per link in the database; the password in a file of its
//! own (0600) under `services/KIND/NAME/`, mounted read-only into the service's container,
//! where its start script reads it: never in an environment, a command line or `docker inspect`.

pub mod backup;
pub mod container;
pub mod dump;
pub mod image;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rusqlite::{params, OptionalExtension};

use super::state::State;

/// A kind of service: what differs between Postgres and Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redis,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Postgres, Kind::Redis];

    /// The command prefix and the name in paths, labels and images.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Redis => "redis",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Kind::Postgres => "Postgres",
            Kind::Redis => "Redis",
        }
    }

    /// The config var a link sets unless `--alias` names another.
    pub fn default_var(self) -> &'static str {
        match self {
            Kind::Postgres => "DATABASE_URL",
            Kind::Redis => "REDIS_URL",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Kind::Postgres => 5432,
            Kind::Redis => 6379,
        }
    }

    /// Where the volume is mounted in the service's container.
    pub fn data_path(self) -> &'static str {
        match self {
            Kind::Postgres => "/var/lib/postgresql/data",
            Kind::Redis => "/data",
        }
    }

    /// What an export holds (and a backup file's extension).
    pub fn dump_format(self) -> (&'static str, &'static str) {
        match self {
            Kind::Postgres => ("pg_dump's custom format", "dump"),
            Kind::Redis => ("an RDB snapshot", "rdb"),
        }
    }
}

/// A service's name: lowercase letters, digits and `-`, starting with a letter, at most 40
/// characters (it names a container, a network, a volume and a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName(String);

impl ServiceName {
    pub fn parse(name: &str) -> Result<ServiceName> {
        let ok = !name.is_empty()
            && name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            let shown: String = name.chars().take(48).collect();
            bail!(
                "{shown:?} is not a valid service name: use lowercase letters, digits and '-', starting with a letter, at most 40 characters"
            );
        }
        Ok(ServiceName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// One service: its kind and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub kind: Kind,
    pub name: ServiceName,
}

/// A service's settings and its last backup, as stored.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub created_at: i64,
    pub owner: Option<String>,
    /// Bytes.
    pub memory: Option<u64>,
    /// The 127.0.0.1 port it is published on (`KIND:expose`).
    pub exposed_port: Option<u16>,
    pub backup_schedule: Option<String>,
    pub backup_dir: Option<String>,
    pub backup_keep: Option<u32>,
    pub last_backup_at: Option<i64>,
    /// `ok FILE` or `failed: WHY`.
    pub last_backup: Option<String>,
}

/// A link: the app and the config var it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub app: String,
    pub var: String,
}

impl Service {
    pub fn new(kind: Kind, name: &str) -> Result<Service> {
        Ok(Service { kind, name: ServiceName::parse(name)? })
    }

    /// `KIND NAME`, for messages.
    pub fn label(&self) -> String {
        format!("{} service {}", self.kind.title(), self.name)
    }

    /// Its container's name, also its host name on its network.
    pub fn container(&self) -> String {
        format!("slipway-{}-{}", self.kind.as_str(), self.name)
    }

    /// The network only it and its linked apps' containers join.
    pub fn network(&self) -> String {
        self.container()
    }

    pub fn volume(&self) -> String {
        format!("slipway-{}-{}-data", self.kind.as_str(), self.name)
    }

    /// Postgres' database name: the service name, `-` as `_` (as dokku-postgres has it).
    pub fn database(&self) -> String {
        self.name.as_str().replace('-', "_")
    }

    /// Where its password file is.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join("services").join(self.kind.as_str()).join(self.name.as_str())
    }

    pub fn password_file(&self, data_dir: &Path) -> PathBuf {
        self.dir(data_dir).join("password")
    }

    pub fn password(&self, data_dir: &Path) -> Result<String> {
        let path = self.password_file(data_dir);
        let text = crate::engine::fsutil::read_no_follow(&path, 4096)
            .with_context(|| format!("cannot read {}", path.display()))?
            .with_context(|| format!("the {} has no password file {}", self.label(), path.display()))?;
        Ok(text.trim().to_string())
    }

    /// The URL linked apps get.
    pub fn url(&self, password: &str) -> String {
        match self.kind {
            Kind::Postgres => {
                format!("postgres://postgres:{password}@{}:{}/{}", self.container(), self.kind.port(), self.database())
            }
            Kind::Redis => format!("redis://:{password}@{}:{}", self.container(), self.kind.port()),
        }
    }

    // -- state

    pub fn exists(&self, state: &State) -> Result<bool> {
        Ok(self.record(state)?.is_some())
    }

    /// Its row; an error naming `KIND:list` when there is none.
    pub fn require(&self, state: &State) -> Result<Record> {
        self.record(state)?
            .with_context(|| format!("there is no {}; `{}:list` lists them", self.label(), self.kind.as_str()))
    }

    pub fn record(&self, state: &State) -> Result<Option<Record>> {
        let sql = "SELECT created_at, owner, memory, exposed_port, backup_schedule, backup_dir, backup_keep,
                          last_backup_at, last_backup FROM services WHERE kind = ?1 AND name = ?2";
        Ok(state
            .conn()
            .query_row(sql, params![self.kind.as_str(), self.name.as_str()], |r| {
                Ok(Record {
                    created_at: r.get(0)?,
                    owner: r.get(1)?,
                    memory: r.get::<_, Option<i64>>(2)?.map(|m| m as u64),
                    exposed_port: r.get::<_, Option<i64>>(3)?.map(|p| p as u16),
                    backup_schedule: r.get(4)?,
                    backup_dir: r.get(5)?,
                    backup_keep: r.get::<_, Option<i64>>(6)?.map(|k| k as u32),
                    last_backup_at: r.get(7)?,
                    last_backup: r.get(8)?,
                })
            })
            .optional()?)
    }

    pub fn insert(&self, state: &State, owner: Option<&str>, memory: Option<u64>) -> Result<()> {
        state.conn().execute(
            "INSERT INTO services (kind, name, created_at, owner, memory) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.kind.as_str(), self.name.as_str(), crate::units::now(), owner, memory.map(|m| m as i64)],
        )?;
        Ok(())
    }

    pub fn delete(&self, state: &State) -> Result<()> {
        state.conn().execute(
            "DELETE FROM services WHERE kind = ?1 AND name = ?2",
            params![self.kind.as_str(), self.name.as_str()],
        )?;
        Ok(())
    }

    pub fn set_exposed(&self, state: &State, port: Option<u16>) -> Result<()> {
        state.conn().execute(
            "UPDATE services SET exposed_port = ?3 WHERE kind = ?1 AND name = ?2",
            params![self.kind.as_str(), self.name.as_str(), port.map(i64::from)],
        )?;
        Ok(())
    }

    pub fn set_backup_schedule(&self, state: &State, schedule: Option<(&str, &str, u32)>) -> Result<()> {
        state.conn().execute(
            "UPDATE services SET backup_schedule = ?3, backup_dir = ?4, backup_keep = ?5 WHERE kind = ?1 AND name = ?2",
            params![
                self.kind.as_str(),
                self.name.as_str(),
                schedule.map(|s| s.0),
                schedule.map(|s| s.1),
                schedule.map(|s| i64::from(s.2))
            ],
        )?;
        Ok(())
    }

    pub fn set_last_backup(&self, state: &State, result: &str) -> Result<()> {
        state.conn().execute(
            "UPDATE services SET last_backup_at = ?3, last_backup = ?4 WHERE kind = ?1 AND name = ?2",
            params![self.kind.as_str(), self.name.as_str(), crate::units::now(), result],
        )?;
        Ok(())
    }

    pub fn links(&self, state: &State) -> Result<Vec<Link>> {
        let mut stmt =
            state.conn().prepare("SELECT app, var FROM service_links WHERE kind = ?1 AND name = ?2 ORDER BY app")?;
        let rows = stmt.query_map(params![self.kind.as_str(), self.name.as_str()], |r| {
            Ok(Link { app: r.get(0)?, var: r.get(1)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn link(&self, tx: &rusqlite::Transaction<'_>, app: &str, var: &str) -> Result<()> {
        tx.execute(
            "INSERT INTO service_links (kind, name, app, var) VALUES (?1, ?2, ?3, ?4)",
            params![self.kind.as_str(), self.name.as_str(), app, var],
        )?;
        Ok(())
    }

    pub fn unlink(&self, tx: &rusqlite::Transaction<'_>, app: &str) -> Result<()> {
        tx.execute(
            "DELETE FROM service_links WHERE kind = ?1 AND name = ?2 AND app = ?3",
            params![self.kind.as_str(), self.name.as_str(), app],
        )?;
        Ok(())
    }
}

/// Every service of `kind`, by name.
pub fn all(state: &State, kind: Kind) -> Result<Vec<Service>> {
    let mut stmt = state.conn().prepare("SELECT name FROM services WHERE kind = ?1 ORDER BY name")?;
    let names = stmt.query_map(params![kind.as_str()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for name in names {
        out.push(Service::new(kind, &name?)?);
    }
    Ok(out)
}

/// The services `app` is linked to: its containers join their networks.
pub fn linked_to(state: &State, app: &str) -> Result<Vec<Service>> {
    let mut stmt = state.conn().prepare("SELECT kind, name FROM service_links WHERE app = ?1 ORDER BY kind, name")?;
    let rows = stmt.query_map(params![app], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, name) = row?;
        let kind = Kind::ALL.into_iter().find(|k| k.as_str() == kind).context("unknown service kind in the state")?;
        out.push(Service::new(kind, &name)?);
    }
    Ok(out)
}

/// The config vars `app`'s links set.
pub fn link_vars(state: &State, app: &str) -> Result<Vec<String>> {
    let mut stmt = state.conn().prepare("SELECT var FROM service_links WHERE app = ?1")?;
    let vars = stmt.query_map(params![app], |r| r.get(0))?;
    Ok(vars.collect::<rusqlite::Result<_>>()?)
}

/// A new password: 32 characters of letters and digits (safe in a URL).
pub fn new_password() -> Result<String> {
    use std::io::Read;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 64];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    // 62 * 4 = 248: bytes below it map evenly.
    let password: String =
        bytes.iter().filter(|b| **b < 248).take(32).map(|b| ALPHABET[(*b % 62) as usize] as char).collect();
    if password.len() < 32 {
        bail!("could not make a password from /dev/urandom");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_urls_and_links() {
        assert!(ServiceName::parse("main-db2").is_ok());
        for bad in ["", "Main", "2db", "db-", "a_b", "../x", &"a".repeat(41), "db;rm"] {
            assert!(ServiceName::parse(bad).is_err(), "{bad}");
        }
        let pg = Service::new(Kind::Postgres, "main-db").unwrap();
        assert_eq!(pg.url("pw"), "postgres://postgres:pw@slipway-postgres-main-db:5432/main_db");
        let redis = Service::new(Kind::Redis, "cache").unwrap();
        assert_eq!(redis.url("pw"), "redis://:pw@slipway-redis-cache:6379");
        let password = new_password().unwrap();
        assert_eq!(password.len(), 32);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));

        let dir = tempfile::tempdir().unwrap();
        let mut state = State::open(dir.path()).unwrap();
        state.create_app("web").unwrap();
        pg.insert(&state, Some("dev"), None).unwrap();
        assert!(pg.exists(&state).unwrap() && !redis.exists(&state).unwrap());
        assert!(redis.require(&state).unwrap_err().to_string().contains("`redis:list`"));
        let tx = state.transaction().unwrap();
        pg.link(&tx, "web", "DATABASE_URL").unwrap();
        tx.commit().unwrap();
        assert_eq!(linked_to(&state, "web").unwrap(), std::slice::from_ref(&pg));
        assert_eq!(pg.links(&state).unwrap(), [Link { app: "web".into(), var: "DATABASE_URL".into() }]);
        // Destroying the app drops its links.
        state.destroy_app("web").unwrap();
        assert!(pg.links(&state).unwrap().is_empty());
    }
}
