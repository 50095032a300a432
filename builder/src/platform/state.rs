//! The runner's state: one SQLite database (WAL) under the data dir. Every multi-step change is
//! one transaction, so a crash leaves either the old state or the new, never half of each.
//! The schema is versioned (`PRAGMA user_version`) and migrated forward on open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::names::validate_app_name;
pub use super::records::{Deploy, DeployLog, DeployStatus, Release, ReleaseStatus};
use crate::units::now;

use super::migrations::MIGRATIONS;

pub struct State {
    conn: Connection,
    pub data_dir: PathBuf,
}

/// The data dir: `--data-dir`/`SLIPWAY_DATA`, else /var/lib/slipway as root, else
/// ~/.local/share/slipway.
pub fn default_data_dir() -> PathBuf {
    if crate::sys::is_root() {
        return PathBuf::from("/var/lib/slipway");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/share/slipway"))
        .unwrap_or_else(|| "/tmp/slipway".into())
}

/// Mode 0600 for a file of ours, 0700 for a directory (one someone else owns is left as it is).
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    // SAFETY: geteuid has no preconditions.
    if meta.uid() == unsafe { libc::geteuid() } && meta.mode() & 0o077 != 0 && !meta.is_symlink() {
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(())
}

/// At most this much of a build's log is kept in the database (the pusher saw all of it).
pub const MAX_BUILD_LOG: usize = 2 * 1024 * 1024;

impl State {
    pub fn open(data_dir: &Path) -> Result<State> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
        let path = data_dir.join("slipway.db");
        let mut conn = Connection::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Every config var and build log is in here: readable by slipway alone.
        restrict(data_dir)?;
        for file in ["slipway.db", "slipway.db-wal", "slipway.db-shm"] {
            restrict(&data_dir.join(file))?;
        }
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            bail!("{} was written by a newer slipway (schema {version}); upgrade slipway", path.display());
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql).with_context(|| format!("schema migration {} failed", i + 1))?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(State { conn, data_dir: data_dir.to_path_buf() })
    }

    /// The database, for the modules that keep their own tables (the scheduler's runs).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        Ok(self.conn.transaction()?)
    }

    // -- apps

    pub fn app_exists(&self, app: &str) -> Result<bool> {
        Ok(self.conn.query_row("SELECT 1 FROM apps WHERE name = ?1", [app], |_| Ok(())).optional()?.is_some())
    }

    /// Errors with the next step when the app does not exist.
    pub fn require_app(&self, app: &str) -> Result<()> {
        if !self.app_exists(app)? {
            bail!("app '{app}' does not exist; create it with `slipway apps:create {app}`");
        }
        Ok(())
    }

    pub fn create_app(&mut self, app: &str) -> Result<()> {
        validate_app_name(app)?;
        if self.app_exists(app)? {
            bail!("app '{app}' already exists");
        }
        let tx = self.conn.transaction()?;
        tx.execute("INSERT INTO apps (name, created_at) VALUES (?1, ?2)", params![app, now()])?;
        tx.execute("INSERT INTO formation (app, type, quantity) VALUES (?1, 'web', 1)", [app])?;
        tx.commit()?;
        Ok(())
    }

    pub fn apps(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT name FROM apps ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The key that created the app (None for apps created on the host).
    pub fn owner(&self, app: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT owner FROM apps WHERE name = ?1", [app], |r| r.get(0)).optional()?.flatten())
    }

    pub fn set_owner(&self, app: &str, key: &str) -> Result<()> {
        self.conn.execute("UPDATE apps SET owner = ?2 WHERE name = ?1", params![app, key])?;
        Ok(())
    }

    /// Whether `key` owns `app` or was granted it.
    pub fn may_use(&self, app: &str, key: &str) -> Result<bool> {
        let granted = self
            .conn
            .query_row(
                "SELECT 1 FROM apps WHERE name = ?1 AND (owner = ?2 OR EXISTS (SELECT 1 FROM acl WHERE app = ?1 AND key = ?2))",
                params![app, key],
                |_| Ok(()),
            )
            .optional()?;
        Ok(granted.is_some())
    }

    pub fn grant(&self, app: &str, key: &str) -> Result<bool> {
        Ok(self.conn.execute("INSERT OR IGNORE INTO acl (app, key) VALUES (?1, ?2)", params![app, key])? > 0)
    }

    pub fn revoke(&self, app: &str, key: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM acl WHERE app = ?1 AND key = ?2", params![app, key])? > 0)
    }

    pub fn grants(&self, app: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT key FROM acl WHERE app = ?1 ORDER BY key")?;
        let rows = stmt.query_map([app], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn destroy_app(&mut self, app: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        for table in ["config", "settings", "deploys", "cron_schedule", "cron_runs"] {
            tx.execute(&format!("DELETE FROM {table} WHERE app = ?1"), [app])?;
        }
        tx.execute("DELETE FROM apps WHERE name = ?1", [app])?; // cascades to the rest
        tx.commit()?;
        Ok(())
    }

    /// Gives an app and everything recorded of it a new name, in one transaction (the
    /// release images' names are the caller's: `set_release_image`).
    pub fn rename_app(&mut self, old: &str, new: &str) -> Result<()> {
        validate_app_name(new)?;
        let tx = self.conn.transaction()?;
        // The apps row and its children change together; the keys are checked at commit.
        tx.pragma_update(None, "defer_foreign_keys", "ON")?;
        tx.execute("UPDATE apps SET name = ?2 WHERE name = ?1", [old, new])?;
        for table in [
            "config",
            "releases",
            "formation",
            "domains",
            "settings",
            "deploys",
            "acl",
            "cron_schedule",
            "cron_runs",
            "service_links",
        ] {
            tx.execute(&format!("UPDATE {table} SET app = ?2 WHERE app = ?1"), [old, new])?;
        }
        tx.commit()?;
        Ok(())
    }

    // -- config (app = "" is global)

    pub fn config(&self, app: &str) -> Result<BTreeMap<String, String>> {
        let mut stmt = self.conn.prepare("SELECT key, value FROM config WHERE app = ?1 ORDER BY key")?;
        let rows = stmt.query_map([app], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Global config overlaid with the app's.
    pub fn effective_config(&self, app: &str) -> Result<BTreeMap<String, String>> {
        let mut all = self.config("")?;
        all.extend(self.config(app)?);
        Ok(all)
    }

    pub fn set_config(tx: &Transaction<'_>, app: &str, vars: &BTreeMap<String, String>) -> Result<()> {
        for (k, v) in vars {
            tx.execute(
                "INSERT INTO config (app, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
                params![app, k, v],
            )?;
        }
        Ok(())
    }

    pub fn unset_config(tx: &Transaction<'_>, app: &str, keys: &[String]) -> Result<()> {
        for k in keys {
            tx.execute("DELETE FROM config WHERE app = ?1 AND key = ?2", params![app, k])?;
        }
        Ok(())
    }

    // -- settings (small per-app or global knobs: checks, limits, storage, domain, ...)

    pub fn setting(&self, app: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE app = ?1 AND key = ?2", params![app, key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_setting(&self, app: &str, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT INTO settings (app, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
                params![app, key, v],
            )?,
            None => self.conn.execute("DELETE FROM settings WHERE app = ?1 AND key = ?2", params![app, key])?,
        };
        Ok(())
    }

    pub fn settings_with_prefix(&self, app: &str, prefix: &str) -> Result<BTreeMap<String, String>> {
        let mut stmt =
            self.conn.prepare("SELECT key, value FROM settings WHERE app = ?1 AND key LIKE ?2 || '%' ORDER BY key")?;
        let rows = stmt.query_map(params![app, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // -- formation

    pub fn formation(&self, app: &str) -> Result<BTreeMap<String, i64>> {
        let mut stmt = self.conn.prepare("SELECT type, quantity FROM formation WHERE app = ?1 ORDER BY type")?;
        let rows = stmt.query_map([app], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_formation(tx: &Transaction<'_>, app: &str, counts: &BTreeMap<String, i64>) -> Result<()> {
        for (t, n) in counts {
            tx.execute(
                "INSERT INTO formation (app, type, quantity) VALUES (?1, ?2, ?3)
                 ON CONFLICT (app, type) DO UPDATE SET quantity = excluded.quantity",
                params![app, t, n],
            )?;
        }
        Ok(())
    }

    // -- domains

    pub fn domains(&self, app: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT domain FROM domains WHERE app = ?1 ORDER BY domain")?;
        let rows = stmt.query_map([app], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_domain(&self, app: &str, domain: &str) -> Result<()> {
        if let Some(owner) = self
            .conn
            .query_row("SELECT app FROM domains WHERE domain = ?1", [domain], |r| r.get::<_, String>(0))
            .optional()?
        {
            bail!("domain {domain} already belongs to app '{owner}'");
        }
        self.conn.execute("INSERT INTO domains (domain, app) VALUES (?1, ?2)", params![domain, app])?;
        Ok(())
    }

    pub fn remove_domain(&self, app: &str, domain: &str) -> Result<()> {
        let n = self
            .conn
            .execute("DELETE FROM domains WHERE app = ?1 AND lower(domain) = lower(?2)", params![app, domain])?;
        if n == 0 {
            bail!("app '{app}' has no domain {domain}");
        }
        Ok(())
    }

    // -- releases

    fn release_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Release> {
        let types: String = r.get(5)?;
        let config: String = r.get(7)?;
        Ok(Release {
            app: r.get(0)?,
            version: r.get(1)?,
            image: r.get(2)?,
            slug_digest: r.get(3)?,
            build: r.get(4)?,
            process_types: serde_json::from_str(&types).unwrap_or_default(),
            source_version: r.get(6)?,
            config: serde_json::from_str(&config).unwrap_or_default(),
            description: r.get(8)?,
            app_json: r.get(9)?,
            created_at: r.get(10)?,
            status: r.get(11)?,
            pusher: r.get(12)?,
        })
    }

    const RELEASE_COLUMNS: &'static str = "app, version, image, slug_digest, buildpack, process_types, source_version, config, description, app_json, created_at, status, pusher";

    pub fn releases(&self, app: &str) -> Result<Vec<Release>> {
        let sql = format!("SELECT {} FROM releases WHERE app = ?1 ORDER BY version DESC", Self::RELEASE_COLUMNS);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([app], Self::release_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn release(&self, app: &str, version: i64) -> Result<Option<Release>> {
        let sql = format!("SELECT {} FROM releases WHERE app = ?1 AND version = ?2", Self::RELEASE_COLUMNS);
        Ok(self.conn.query_row(&sql, params![app, version], Self::release_from_row).optional()?)
    }

    /// The release now serving: the newest that succeeded.
    pub fn current_release(&self, app: &str) -> Result<Option<Release>> {
        let sql = format!(
            "SELECT {} FROM releases WHERE app = ?1 AND status = ?2 ORDER BY version DESC LIMIT 1",
            Self::RELEASE_COLUMNS
        );
        Ok(self.conn.query_row(&sql, params![app, ReleaseStatus::Succeeded], Self::release_from_row).optional()?)
    }

    /// The version the next release of `app` will get (stable while the app's lock is held).
    pub fn next_version(&self, app: &str) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app = ?1", [app], |r| r.get(0))?)
    }

    /// Records a new pending release; returns its version.
    pub fn add_release(&mut self, r: &Release) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let version: i64 =
            tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app = ?1", [&r.app], |row| {
                row.get(0)
            })?;
        tx.execute(
            &format!(
                "INSERT INTO releases ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                Self::RELEASE_COLUMNS
            ),
            params![
                r.app,
                version,
                r.image,
                r.slug_digest,
                r.build,
                serde_json::to_string(&r.process_types)?,
                r.source_version,
                serde_json::to_string(&r.config)?,
                r.description,
                r.app_json,
                now(),
                ReleaseStatus::Pending,
                r.pusher
            ],
        )?;
        tx.commit()?;
        Ok(version)
    }

    pub fn set_release_status(&self, app: &str, version: i64, status: ReleaseStatus) -> Result<()> {
        self.conn.execute(
            "UPDATE releases SET status = ?3 WHERE app = ?1 AND version = ?2",
            params![app, version, status],
        )?;
        Ok(())
    }

    pub fn set_release_image(&self, app: &str, version: i64, image: &str) -> Result<()> {
        self.conn
            .execute("UPDATE releases SET image = ?3 WHERE app = ?1 AND version = ?2", params![app, version, image])?;
        Ok(())
    }

    // -- deploy records

    pub fn start_deploy(&self, app: &str, pusher: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO deploys (app, started_at, status, pusher) VALUES (?1, ?2, ?3, ?4)",
            params![app, now(), DeployStatus::Running, pusher],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_deploy_process(&self, id: i64, pid: u32, source_version: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE deploys SET pid = ?2, source_version = ?3 WHERE id = ?1",
            params![id, pid, source_version],
        )?;
        Ok(())
    }

    pub fn append_deploy_log(&self, id: i64, text: &str) -> Result<()> {
        // Past the cap, one marker line is kept instead of the rest.
        let marker = format!(
            "\n !     (the log was cut here: only its first {} are kept)\n",
            crate::output::size(MAX_BUILD_LOG as u64)
        );
        self.conn.execute(
            "UPDATE deploys SET log = CASE
                 WHEN length(log) > ?3 THEN log
                 WHEN length(log) + length(?2) > ?3 THEN substr(log || ?2, 1, ?3) || ?4
                 ELSE log || ?2 END
             WHERE id = ?1",
            params![id, text, MAX_BUILD_LOG as i64, marker],
        )?;
        Ok(())
    }

    /// Build records, newest first.
    pub fn deploys(&self, app: &str) -> Result<Vec<Deploy>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, release, started_at, finished_at, status, source_version, pusher FROM deploys WHERE app = ?1 ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([app], |r| {
            Ok(Deploy {
                id: r.get(0)?,
                release: r.get(1)?,
                started_at: r.get(2)?,
                finished_at: r.get(3)?,
                status: r.get(4)?,
                source_version: r.get(5)?,
                pusher: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn deploy_log(&self, app: &str, id: Option<i64>) -> Result<Option<DeployLog>> {
        let sql = match id {
            Some(_) => "SELECT id, status, log FROM deploys WHERE app = ?1 AND id = ?2",
            None => "SELECT id, status, log FROM deploys WHERE app = ?1 AND ?2 IS NULL ORDER BY id DESC LIMIT 1",
        };
        Ok(self
            .conn
            .query_row(sql, params![app, id], |r| Ok(DeployLog { id: r.get(0)?, status: r.get(1)?, log: r.get(2)? }))
            .optional()?)
    }

    /// The app's build recorded as running (whether its process still lives is the app
    /// lock's to say: `platform::lock::holder`).
    pub fn running_deploy(&self, app: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM deploys WHERE app = ?1 AND status = ?2 ORDER BY id DESC LIMIT 1",
                params![app, DeployStatus::Running],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_deploy_branch(&self, app: &str, branch: &str) -> Result<()> {
        self.conn.execute("UPDATE apps SET deploy_branch = ?2 WHERE name = ?1", params![app, branch])?;
        Ok(())
    }

    pub fn deploy_branch(&self, app: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT deploy_branch FROM apps WHERE name = ?1", [app], |r| r.get(0))
            .optional()?
            .flatten())
    }

    pub fn finish_deploy(&self, id: i64, release: Option<i64>, status: DeployStatus, log: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE deploys SET finished_at = ?2, status = ?3, release = ?4, log = log || ?5 WHERE id = ?1",
            params![id, now(), status, release, log],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::image::BuildKind;

    #[test]
    fn a_rename_moves_every_record_of_the_app() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.create_app("old").unwrap();
        s.create_app("other").unwrap();
        let tx = s.transaction().unwrap();
        State::set_config(&tx, "old", &BTreeMap::from([("K".to_string(), "v".to_string())])).unwrap();
        State::set_formation(&tx, "old", &BTreeMap::from([("web".to_string(), 2)])).unwrap();
        tx.commit().unwrap();
        s.add_domain("old", "www.example.test").unwrap();
        s.grant("old", "dev").unwrap();
        s.set_setting("old", "checks", Some("skipped")).unwrap();
        s.rename_app("old", "new").unwrap();
        assert!(!s.app_exists("old").unwrap() && s.app_exists("new").unwrap());
        assert_eq!(s.config("new").unwrap()["K"], "v");
        assert_eq!(s.formation("new").unwrap()["web"], 2);
        assert_eq!(s.domains("new").unwrap(), ["www.example.test"]);
        assert!(s.may_use("new", "dev").unwrap());
        assert_eq!(s.setting("new", "checks").unwrap().as_deref(), Some("skipped"));
        assert!(s.config("old").unwrap().is_empty());
        assert!(s.rename_app("new", "other").is_err(), "taken");
        assert!(s.rename_app("new", "Bad Name").is_err());
        assert!(s.app_exists("new").unwrap());
    }

    #[test]
    fn apps_config_releases_and_formation() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.create_app("demo").unwrap();
        assert!(s.create_app("demo").unwrap_err().to_string().contains("already exists"));
        assert!(s.create_app("Bad_Name").is_err());
        assert!(s.create_app("-x").is_err());
        assert_eq!(s.formation("demo").unwrap(), BTreeMap::from([("web".into(), 1)]));
        let tx = s.transaction().unwrap();
        State::set_config(&tx, "", &BTreeMap::from([("A".into(), "global".into()), ("B".into(), "g".into())])).unwrap();
        State::set_config(&tx, "demo", &BTreeMap::from([("A".into(), "app".into())])).unwrap();
        tx.commit().unwrap();
        let cfg = s.effective_config("demo").unwrap();
        assert_eq!((cfg["A"].as_str(), cfg["B"].as_str()), ("app", "g"));
        let r = Release {
            app: "demo".into(),
            version: 0,
            image: "img:1".into(),
            slug_digest: None,
            build: BuildKind::Buildpacks("Static".into()),
            process_types: BTreeMap::from([("web".into(), "x".into())]),
            source_version: None,
            config: cfg,
            description: "Deploy".into(),
            app_json: None,
            created_at: 0,
            status: ReleaseStatus::Pending,
            pusher: Some("alice".into()),
        };
        assert_eq!(s.add_release(&r).unwrap(), 1);
        assert_eq!(s.add_release(&r).unwrap(), 2);
        assert!(s.current_release("demo").unwrap().is_none(), "pending releases do not serve");
        s.set_release_status("demo", 1, ReleaseStatus::Succeeded).unwrap();
        s.set_release_status("demo", 2, ReleaseStatus::Failed).unwrap();
        assert_eq!(s.current_release("demo").unwrap().unwrap().version, 1);
        s.destroy_app("demo").unwrap();
        assert!(s.releases("demo").unwrap().is_empty());
        assert!(s.formation("demo").unwrap().is_empty());
        assert!(s.config("demo").unwrap().is_empty());
        drop(s);
        // Reopening keeps the schema version and data.
        let s = State::open(dir.path()).unwrap();
        assert_eq!(s.config("").unwrap().len(), 2);
    }

    #[test]
    fn the_database_is_private_and_build_logs_are_capped() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.create_app("demo").unwrap();
        let mode = std::fs::metadata(dir.path().join("slipway.db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(s);
        let s = State::open(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data dir is made private");
        let id = s.start_deploy("demo", "alice").unwrap();
        let chunk = "x".repeat(1024 * 1024);
        for _ in 0..5 {
            s.append_deploy_log(id, &chunk).unwrap();
        }
        let log = s.deploy_log("demo", Some(id)).unwrap().unwrap().log;
        assert!(log.len() < MAX_BUILD_LOG + 200, "{}", log.len());
        assert!(log.ends_with("are kept)\n"), "{}", &log[log.len() - 80..]);
        assert_eq!(log.matches("the log was cut here").count(), 1);
    }

    #[test]
    fn apps_from_before_stacks_stay_on_bookworm_and_new_ones_get_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("slipway.db")).unwrap();
        conn.execute_batch(&MIGRATIONS[..4].join(";\n")).unwrap();
        conn.pragma_update(None, "user_version", 4).unwrap();
        conn.execute("INSERT INTO apps (name, created_at) VALUES ('old', 0)", []).unwrap();
        drop(conn);
        let mut s = State::open(dir.path()).unwrap();
        s.create_app("new").unwrap();
        assert_eq!(crate::platform::settings::stack_of(&s, "old").unwrap().name, "slipway-bookworm");
        assert_eq!(crate::platform::settings::stack_of(&s, "new").unwrap().name, "slipway-trixie");
    }

    #[test]
    fn domains_stored_by_older_versions_are_lowercased() {
        let dir = tempfile::tempdir().unwrap();
        // A database as schema 2 left it.
        let conn = Connection::open(dir.path().join("slipway.db")).unwrap();
        conn.execute_batch(&MIGRATIONS[..2].join(";\n")).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute("INSERT INTO apps (name, created_at) VALUES ('demo', 0)", []).unwrap();
        conn.execute("INSERT INTO domains (domain, app) VALUES ('WWW.Example.com', 'demo')", []).unwrap();
        drop(conn);
        let s = State::open(dir.path()).unwrap();
        assert_eq!(s.domains("demo").unwrap(), ["www.example.com"]);
        s.remove_domain("demo", "WWW.EXAMPLE.COM").unwrap();
        assert!(s.domains("demo").unwrap().is_empty());
    }
}
