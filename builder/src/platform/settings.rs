//! The platform's settings, typed, with every default in one place. Global settings are set
//! with `settings:set` (or their own commands: `domains:set-global`, `--router-listen`);
//! per-app ones with `checks:*`, `resource:limit` and `storage:mount`. The state keeps them as
//! rows; nothing else reads those rows.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};

use super::state::State;
use crate::containers::stack::Stack;

/// A global setting: its key, its default, and what a valid value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// Release images kept per app for rollback.
    KeepReleases,
    /// Seconds between SIGTERM and SIGKILL when old containers stop.
    StopTimeout,
    /// Whether the first push of an unknown app creates it.
    GitAutoCreate,
    /// Apps answer at APP.DOMAIN.
    Domain,
    /// The router's listen address.
    RouterListen,
    /// The most containers `ps:scale` gives one process type.
    MaxScale,
    /// The most processes (and threads) one app container may run.
    PidsLimit,
    /// Memory of an app container without a `resource:limit` of its own.
    MemoryLimit,
    /// Memory of a build container.
    BuildMemoryLimit,
    /// The largest push (its pack) and the largest exported tree (counted while extracting).
    MaxPushSize,
    /// The stack apps without one of their own build on (`stack:set --global`).
    Stack,
    /// Seconds a command waits for a running deploy of the same app before giving up.
    LockWait,
    /// Where the router serves HTTPS for apps with a certificate.
    HttpsListen,
    /// An app container's log file is rotated at this size.
    LogMaxSize,
    /// Rotated log files kept per app container (the current one included).
    LogMaxFiles,
}

impl Global {
    pub const ALL: [Global; 15] = [
        Global::KeepReleases,
        Global::StopTimeout,
        Global::GitAutoCreate,
        Global::MaxScale,
        Global::PidsLimit,
        Global::MemoryLimit,
        Global::BuildMemoryLimit,
        Global::MaxPushSize,
        Global::LockWait,
        Global::HttpsListen,
        Global::LogMaxSize,
        Global::LogMaxFiles,
        Global::Domain,
        Global::RouterListen,
        Global::Stack,
    ];

    /// The ones `settings:set` changes (the domain, the router's address and the stack have
    /// commands of their own: `domains:set-global`, `--router-listen`, `stack:set --global`).
    pub fn settable_ones() -> impl Iterator<Item = Global> {
        Global::ALL.into_iter().filter(|g| !matches!(g, Global::Domain | Global::RouterListen | Global::Stack))
    }

    pub fn key(self) -> &'static str {
        match self {
            Global::KeepReleases => "keep-releases",
            Global::StopTimeout => "stop-timeout",
            Global::GitAutoCreate => "git.auto-create",
            Global::Domain => "domain",
            Global::RouterListen => "router.listen",
            Global::MaxScale => "max-scale",
            Global::PidsLimit => "pids-limit",
            Global::MemoryLimit => "memory-limit",
            Global::BuildMemoryLimit => "build-memory-limit",
            Global::MaxPushSize => "max-push-size",
            Global::Stack => "stack",
            Global::LockWait => "lock-wait",
            Global::HttpsListen => "https-listen",
            Global::LogMaxSize => "log-max-size",
            Global::LogMaxFiles => "log-max-files",
        }
    }

    pub fn default_value(self) -> String {
        match self {
            Global::KeepReleases => "5".into(),
            Global::StopTimeout => "30".into(),
            Global::GitAutoCreate => "true".into(),
            Global::MaxScale => "20".into(),
            Global::PidsLimit => "4096".into(),
            Global::MemoryLimit => "1G".into(),
            Global::BuildMemoryLimit => "4G".into(),
            Global::MaxPushSize => "1G".into(),
            Global::Domain => "slipway.localhost".into(),
            Global::Stack => Stack::default_stack().name.into(),
            Global::LockWait => "600".into(),
            Global::LogMaxSize => "10M".into(),
            Global::LogMaxFiles => "3".into(),
            Global::HttpsListen => https_beside(&Global::RouterListen.default_value()),
            Global::RouterListen => {
                if crate::sys::is_root() {
                    "0.0.0.0:80".into()
                } else {
                    "127.0.0.1:8080".into()
                }
            }
        }
    }

    /// A settable setting by its key.
    pub fn settable(key: &str) -> Result<Global> {
        Global::settable_ones().find(|g| g.key() == key).ok_or_else(|| {
            let keys: Vec<&str> = Global::settable_ones().map(|g| g.key()).collect();
            anyhow!("unknown setting {key:?}: the settings are {}", keys.join(", "))
        })
    }

    pub fn validate(self, value: &str) -> Result<()> {
        let valid = match self {
            Global::KeepReleases | Global::MaxScale => value.parse::<u32>().is_ok_and(|n| n >= 1),
            Global::PidsLimit => value.parse::<u32>().is_ok_and(|n| n >= 16),
            Global::StopTimeout => value.parse::<u32>().is_ok(),
            Global::LockWait => value.parse::<u32>().is_ok_and(|n| n <= 86_400),
            Global::LogMaxFiles => value.parse::<u32>().is_ok_and(|n| (1..=100).contains(&n)),
            Global::LogMaxSize => {
                crate::units::parse_size(value).is_ok_and(|n| (100_000..=10_000_000_000).contains(&n))
            }
            // Docker's smallest memory limit is 6 MB.
            Global::MemoryLimit | Global::BuildMemoryLimit | Global::MaxPushSize => {
                crate::units::parse_size(value).is_ok_and(|n| (6_000_000..=1_000_000_000_000).contains(&n))
            }
            Global::GitAutoCreate => value == "true" || value == "false",
            Global::Domain => return super::names::validate_domain(value).map(|_| ()),
            Global::RouterListen | Global::HttpsListen => return super::names::validate_listen(value),
            Global::Stack => return Stack::named(value).map(|_| ()),
        };
        if !valid {
            bail!("{value:?} is not a valid value for {} (https-listen: IP:PORT; log-max-size: a size from 100K to 10G; log-max-files: 1 to 100; keep-releases, max-scale: 1 or more; pids-limit: 16 or more; memory-limit, build-memory-limit, max-push-size: a size from 6M to 1000G, e.g. 1G; stop-timeout: seconds; lock-wait: seconds up to 86400; git.auto-create: true or false)", self.key());
        }
        Ok(())
    }
}

/// The global settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettings {
    pub keep_releases: usize,
    pub stop_timeout: u32,
    pub git_auto_create: bool,
    pub max_scale: u32,
    pub pids_limit: u32,
    /// Bytes.
    pub memory_limit: u64,
    /// Bytes.
    pub build_memory_limit: u64,
    /// Bytes.
    pub max_push_size: u64,
    /// How long a command waits for a running deploy of the same app.
    pub lock_wait: std::time::Duration,
    pub domain: String,
    pub router_listen: String,
    /// Where apps with a certificate are served over HTTPS.
    pub https_listen: String,
    /// An app container's log: rotated at this many bytes, this many files kept.
    pub log_max_size: u64,
    pub log_max_files: u32,
}

/// The default HTTPS address beside the router's HTTP one: port 443 on the same address when
/// HTTP is on port 80 (a public router), else 127.0.0.1:8443.
pub fn https_beside(http: &str) -> String {
    match http.rsplit_once(':') {
        Some((host, "80")) => format!("{host}:443"),
        _ => "127.0.0.1:8443".into(),
    }
}

impl GlobalSettings {
    pub fn load(state: &State) -> Result<GlobalSettings> {
        let get =
            |g: Global| -> Result<String> { Ok(state.setting("", g.key())?.unwrap_or_else(|| g.default_value())) };
        // Stored values were validated when set; one that does not parse counts as the default.
        let number = |g: Global| -> Result<u32> {
            Ok(get(g)?.parse().unwrap_or_else(|_| g.default_value().parse().expect("numeric defaults parse")))
        };
        let size = |g: Global| -> Result<u64> {
            Ok(crate::units::parse_size(&get(g)?)
                .unwrap_or_else(|_| crate::units::parse_size(&g.default_value()).expect("size defaults parse")))
        };
        Ok(GlobalSettings {
            keep_releases: number(Global::KeepReleases)? as usize,
            stop_timeout: number(Global::StopTimeout)?,
            git_auto_create: get(Global::GitAutoCreate)? != "false",
            max_scale: number(Global::MaxScale)?,
            pids_limit: number(Global::PidsLimit)?,
            memory_limit: size(Global::MemoryLimit)?,
            build_memory_limit: size(Global::BuildMemoryLimit)?,
            max_push_size: size(Global::MaxPushSize)?,
            lock_wait: std::time::Duration::from_secs(number(Global::LockWait)?.into()),
            domain: get(Global::Domain)?.to_ascii_lowercase(),
            router_listen: {
                let listen = get(Global::RouterListen)?;
                match super::names::validate_listen(&listen) {
                    Ok(()) => listen,
                    // Stored before listen addresses were checked: never written into nginx.
                    Err(e) => {
                        crate::output::warn(format!("{e:#}; the router listens on the default instead"));
                        Global::RouterListen.default_value()
                    }
                }
            },
            log_max_size: size(Global::LogMaxSize)?,
            log_max_files: number(Global::LogMaxFiles)?,
            https_listen: match state.setting("", Global::HttpsListen.key())? {
                Some(listen) if super::names::validate_listen(&listen).is_ok() => listen,
                _ => https_beside(&get(Global::RouterListen)?),
            },
        })
    }

    pub fn set(state: &State, setting: Global, value: &str) -> Result<()> {
        setting.validate(value)?;
        // One address cannot serve both: nginx would make the HTTP one a TLS one.
        let current = GlobalSettings::load(state)?;
        let other = match setting {
            Global::HttpsListen => Some(&current.router_listen),
            Global::RouterListen => {
                state.setting("", Global::HttpsListen.key())?.as_ref().map(|_| &current.https_listen)
            }
            _ => None,
        };
        if other.is_some_and(|o| o == value) {
            bail!("{value} is already the router's other address: HTTP and HTTPS need different ports");
        }
        state.set_setting("", setting.key(), Some(value))
    }
}

/// `checks:enable|disable|skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksMode {
    Enabled,
    /// No checks at all.
    Disabled,
    /// Only wait for the web port; app.json checks are skipped.
    Skipped,
}

impl ChecksMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksMode::Enabled => "enabled",
            ChecksMode::Disabled => "disabled",
            ChecksMode::Skipped => "skipped",
        }
    }
}

/// The stack `app` builds on: its own (`stack:set APP`), else the global one, else the default.
/// `app` "" asks for the global one. A stored name this slipway does not know (a stack since
/// removed) is an error naming where it is set.
pub fn stack_of(state: &State, app: &str) -> Result<&'static Stack> {
    let scopes = if app.is_empty() { vec![""] } else { vec![app, ""] };
    for scope in scopes {
        let Some(name) = state.setting(scope, Global::Stack.key())? else { continue };
        let (who, target) = if scope.is_empty() { ("every app", "--global") } else { (scope, scope) };
        return Stack::named(&name).map_err(|e| {
            anyhow!("{who} is set to build on {name:?}, which this slipway does not have ({e}); choose one with `slipway stack:set {target} NAME`")
        });
    }
    Ok(Stack::default_stack())
}

/// Sets the stack of `app` ("" for every app without one of its own), by its full name.
pub fn set_stack(state: &State, app: &str, name: &str) -> Result<&'static Stack> {
    let stack = Stack::named(name)?;
    state.set_setting(app, Global::Stack.key(), Some(stack.name))?;
    Ok(stack)
}

/// Memory and CPU limits of a process type's containers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// Bytes.
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
}

/// What `resource:limit` sets limits for: one process type, or all of them.
const ALL_TYPES: &str = "_all";

/// An app's settings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSettings {
    pub checks: ChecksMode,
    /// Limits per process type (`_all` for every type).
    limits: BTreeMap<String, Limits>,
    /// `HOST_DIR:CONTAINER_DIR` binds.
    pub mounts: Vec<String>,
}

impl AppSettings {
    pub fn load(state: &State, app: &str) -> Result<AppSettings> {
        let checks = match state.setting(app, "checks")?.as_deref() {
            Some("disabled") => ChecksMode::Disabled,
            Some("skipped") => ChecksMode::Skipped,
            _ => ChecksMode::Enabled,
        };
        let mut limits: BTreeMap<String, Limits> = BTreeMap::new();
        for (key, value) in state.settings_with_prefix(app, "resource.")? {
            let Some((kind, what)) = key.trim_start_matches("resource.").rsplit_once('.') else { continue };
            let entry = limits.entry(kind.to_string()).or_default();
            match what {
                "memory" => entry.memory = Some(crate::units::parse_size(&value)?),
                "cpu" => entry.cpus = Some(value.parse().map_err(|_| anyhow!("invalid CPU limit {value:?}"))?),
                _ => {}
            }
        }
        let mounts = state.settings_with_prefix(app, "storage.")?.into_values().collect();
        Ok(AppSettings { checks, limits, mounts })
    }

    /// The limits of `kind`'s containers: its own, else the app-wide ones.
    pub fn limits_for(&self, kind: &str) -> Limits {
        let all = self.limits.get(ALL_TYPES).copied().unwrap_or_default();
        let own = self.limits.get(kind).copied().unwrap_or_default();
        Limits { memory: own.memory.or(all.memory), cpus: own.cpus.or(all.cpus) }
    }

    pub fn set_checks(state: &State, app: &str, mode: ChecksMode) -> Result<()> {
        let value = (mode != ChecksMode::Enabled).then_some(mode.as_str());
        state.set_setting(app, "checks", value)
    }

    /// Validates and stores limits for `kind` (None: every type).
    pub fn set_limits(
        state: &State,
        app: &str,
        kind: Option<&str>,
        memory: Option<&str>,
        cpu: Option<&str>,
    ) -> Result<()> {
        let kind = kind.unwrap_or(ALL_TYPES);
        if let Some(m) = memory {
            crate::units::parse_size(m)?;
        }
        if let Some(c) = cpu {
            c.parse::<f64>().map_err(|_| anyhow!("--cpu takes a number of CPUs, e.g. 0.5"))?;
        }
        if let Some(m) = memory {
            state.set_setting(app, &format!("resource.{kind}.memory"), Some(m))?;
        }
        if let Some(c) = cpu {
            state.set_setting(app, &format!("resource.{kind}.cpu"), Some(c))?;
        }
        Ok(())
    }

    /// `ps:stop` marks an app stopped (its formation kept for `ps:start`); a release rolled out
    /// clears the mark. A stopped app stays stopped when the platform restores apps.
    pub fn set_stopped(state: &State, app: &str, stopped: bool) -> Result<()> {
        state.set_setting(app, "stopped", stopped.then_some("true"))
    }

    pub fn is_stopped(state: &State, app: &str) -> Result<bool> {
        Ok(state.setting(app, "stopped")?.as_deref() == Some("true"))
    }

    pub fn add_mount(state: &State, app: &str, inside: &str, mount: &str) -> Result<()> {
        state.set_setting(app, &format!("storage.{inside}"), Some(mount))
    }

    /// The app's buildpacks (`buildpacks:set`/`add`), in order; none: the app chooses, or detection.
    pub fn buildpacks(state: &State, app: &str) -> Result<Vec<String>> {
        let stored = state.setting(app, "buildpacks")?.unwrap_or_default();
        Ok(stored.lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
    }

    pub fn set_buildpacks(state: &State, app: &str, list: &[String]) -> Result<()> {
        let value = list.join("\n");
        state.set_setting(app, "buildpacks", (!list.is_empty()).then_some(value.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validation_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.create_app("demo").unwrap();
        let g = GlobalSettings::load(&s).unwrap();
        assert_eq!((g.keep_releases, g.stop_timeout, g.git_auto_create), (5, 30, true));
        assert_eq!(g.domain, "slipway.localhost");
        assert!(GlobalSettings::set(&s, Global::KeepReleases, "0").is_err());
        assert!(Global::settable("domain").is_err(), "the domain has a command of its own");
        GlobalSettings::set(&s, Global::settable("keep-releases").unwrap(), "2").unwrap();
        assert_eq!(GlobalSettings::load(&s).unwrap().keep_releases, 2);
        assert_eq!(GlobalSettings::load(&s).unwrap().max_scale, 20);
        assert!(GlobalSettings::set(&s, Global::settable("max-scale").unwrap(), "0").is_err());
        assert_eq!(
            (g.memory_limit, g.build_memory_limit, g.max_push_size),
            (1_000_000_000, 4_000_000_000, 1_000_000_000)
        );
        assert!(GlobalSettings::set(&s, Global::MaxPushSize, "1k").is_err(), "below Docker's minimum");
        assert!(GlobalSettings::set(&s, Global::MemoryLimit, "lots").is_err());
        assert!(GlobalSettings::set(&s, Global::MaxPushSize, "99999999999999999999").is_err(), "over 1 TB");
        GlobalSettings::set(&s, Global::settable("max-push-size").unwrap(), "100M").unwrap();
        assert_eq!(GlobalSettings::load(&s).unwrap().max_push_size, 100_000_000);
        AppSettings::set_limits(&s, "demo", None, Some("512M"), None).unwrap();
        AppSettings::set_limits(&s, "demo", Some("worker"), None, Some("0.5")).unwrap();
        assert!(AppSettings::set_limits(&s, "demo", None, None, Some("lots")).is_err());
        let a = AppSettings::load(&s, "demo").unwrap();
        assert_eq!(a.limits_for("worker"), Limits { memory: Some(512_000_000), cpus: Some(0.5) });
        assert_eq!(a.limits_for("web"), Limits { memory: Some(512_000_000), cpus: None });
        assert_eq!(a.checks, ChecksMode::Enabled);
        AppSettings::set_checks(&s, "demo", ChecksMode::Skipped).unwrap();
        assert_eq!(AppSettings::load(&s, "demo").unwrap().checks, ChecksMode::Skipped);
    }

    #[test]
    fn an_apps_stack_is_its_own_else_the_global_one_else_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.create_app("demo").unwrap();
        s.create_app("other").unwrap();
        assert_eq!(stack_of(&s, "demo").unwrap().name, "slipway-trixie");
        set_stack(&s, "", "bookworm").unwrap();
        assert_eq!(stack_of(&s, "demo").unwrap().name, "slipway-bookworm");
        set_stack(&s, "demo", "slipway-trixie").unwrap();
        assert_eq!(stack_of(&s, "demo").unwrap().name, "slipway-trixie");
        assert_eq!(stack_of(&s, "other").unwrap().name, "slipway-bookworm");
        assert!(set_stack(&s, "demo", "heroku-24").is_err());
        assert_eq!(stack_of(&s, "demo").unwrap().name, "slipway-trixie", "a refused name changes nothing");
        assert!(Global::settable("stack").is_err(), "the stack has a command of its own");
        s.set_setting("other", "stack", Some("slipway-buster")).unwrap();
        let e = stack_of(&s, "other").unwrap_err().to_string();
        assert!(e.contains("slipway stack:set other NAME"), "{e}");
        s.set_setting("", "stack", Some("slipway-buster")).unwrap();
        let e = stack_of(&s, "").unwrap_err().to_string();
        assert!(e.starts_with("every app is set to build on") && e.contains("stack:set --global NAME"), "{e}");
        assert_eq!(stack_of(&s, "demo").unwrap().name, "slipway-trixie", "its own stack comes first");
    }
}
