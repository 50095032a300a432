//! The fuzz targets' entry points (`fuzz/`, `make fuzz`): each feeds its input to the real code
//! and panics when a property that code promises does not hold. Not an API.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory as _;

use crate::cli::apps::{need, AppCommand};
use crate::engine::procfile::{Procfile, MAX_TYPE_LEN};
use crate::engine::release::Release;
use crate::engine::slug::{import_file, ImportOptions, SlugError};
use crate::gitpush::dispatch::{self, Asked};
use crate::platform::access::{Caller, Need, Role};
use crate::platform::names::{is_safe_app_name, validate_app_name, validate_domain, INTERNAL_SUFFIX};
use crate::platform::state::State;

fn is_type_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TYPE_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_process_types(p: &Procfile) {
    for (i, t) in p.processes.iter().enumerate() {
        assert!(is_type_name(&t.name), "process type {:?}", t.name);
        assert!(!t.command.is_empty() && t.command.trim() == t.command, "command {:?}", t.command);
        assert!(!t.command.contains('\n'), "command {:?}", t.command);
        assert!(p.processes[..i].iter().all(|o| o.name != t.name), "{:?} twice", t.name);
    }
}

/// `Procfile::parse`: valid, unique type names with one-line commands, written back as parsed.
pub fn procfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = Procfile::parse(text) else { return };
    check_process_types(&p);
    let again = Procfile::parse(&p.to_string()).expect("a parsed Procfile, written out, parses");
    assert_eq!(again.processes, p.processes);
}

/// The values `config_vars_script` assigns, read as bash reads the script: every line must be
/// `[ -n "${KEY:-}" ] || KEY='VALUE'; export KEY` with `'` written as `'\''` in VALUE, so
/// sourcing it runs nothing but those assignments.
fn script_assignments(script: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = script;
    while !rest.is_empty() {
        let (key, r) = rest
            .strip_prefix("[ -n \"${")
            .and_then(|r| r.split_once(":-}\" ] || "))
            .unwrap_or_else(|| panic!("unexpected script text {rest:?}"));
        let mut chars = key.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        assert!(first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'), "key {key:?}");
        let mut r = r.strip_prefix(key).and_then(|r| r.strip_prefix("='")).expect("KEY='");
        let mut value = String::new();
        loop {
            let end = r.find('\'').expect("an unterminated quote");
            value.push_str(&r[..end]);
            r = &r[end..];
            match r.strip_prefix("'\\''") {
                Some(after) => {
                    value.push('\'');
                    r = after;
                }
                None => break,
            }
        }
        rest = r.strip_prefix(&format!("'; export {key}\n")).unwrap_or_else(|| panic!("after {key}: {r:?}"));
        out.push((key.to_string(), value));
    }
    out
}

/// `Release::parse`, `config_vars_script` and `apply`: the script assigns exactly the config
/// vars, quoted; the process types `apply` returns are what its Procfile reads back as.
pub fn release(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(release) = Release::parse(text) else { return };
    let script = release.config_vars_script();
    assert_eq!(script_assignments(&script), release.config_vars);
    let dir = tempfile::tempdir().expect("a temp dir");
    let procfile = release.apply(text, dir.path()).expect("apply writes to an empty dir");
    check_process_types(&procfile);
    let written = Procfile::read(dir.path()).expect("apply's Procfile parses").unwrap_or_default();
    assert_eq!(written.processes, procfile.processes);
    if !release.config_vars.is_empty() {
        assert_eq!(std::fs::read_to_string(dir.path().join(".profile.d/00_config_vars.sh")).unwrap(), script);
    }
}

/// `validate_domain`: what it accepts is a lowercased RFC 1123 host name, safe in nginx config.
pub fn domain(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let Ok(d) = validate_domain(input) else { return };
    assert_eq!(d, input.to_ascii_lowercase());
    assert!(!d.is_empty() && d.len() <= 253, "{d:?}");
    assert!(d.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'), "{d:?}");
    assert!(!d.contains([';', ' ', '{', '}', '$', '\'', '"', '/', '\\']), "{d:?}");
    for label in d.split('.') {
        assert!((1..=63).contains(&label.len()) && !label.starts_with('-') && !label.ends_with('-'), "{d:?}");
    }
    assert!(!d.ends_with(INTERNAL_SUFFIX), "{d:?}");
    assert_eq!(validate_domain(&d).ok().as_deref(), Some(d.as_str()));
}

thread_local! {
    /// A state holding one app, `myapp`, owned by the developer key `dev`.
    static STATE: (tempfile::TempDir, State) = {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut state = State::open(dir.path()).expect("a state");
        state.create_app("myapp").expect("an app");
        state.set_owner("myapp", "dev").expect("an owner");
        (dir, state)
    };
}

/// An SSH command line (`SSH_ORIGINAL_COMMAND`), split and parsed as `ssh-command` does.
pub fn ssh_command(data: &[u8]) {
    let Ok(original) = std::str::from_utf8(data) else { return };
    let allowed = crate::cli::ssh_commands();
    let argv = match dispatch::parse(original, &allowed) {
        Ok(Asked::Git { app, .. }) => {
            assert!(is_safe_app_name(&app), "git request for {app:?}");
            return;
        }
        Ok(Asked::Command(argv)) => argv,
        Ok(Asked::Nothing) | Err(_) => return,
    };
    assert!(allowed.contains(&argv[0]), "{argv:?}");
    let parsed = crate::cli::parse_ssh_command(&argv);
    let matches = crate::cli::ssh_grammar().try_get_matches_from(&argv);
    assert_eq!(parsed.is_ok(), matches.is_ok(), "{argv:?}");
    let (Ok(command), Ok(matches)) = (parsed, matches) else { return };
    // The host's global options (--data-dir, --router-listen, ...) do not exist over SSH: a
    // token naming one is a value (an app name, a var, a command's argument), never an option.
    let (_, sub) = matches.subcommand().expect("a subcommand");
    let values: Vec<String> = sub
        .ids()
        .filter_map(|id| sub.get_raw(id.as_str()))
        .flatten()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    for global in crate::cli::Cli::command().get_arguments().filter(|a| a.is_global_set()) {
        let long = format!("--{}", global.get_long().expect("a long option"));
        for token in argv.iter().filter(|t| **t == long || t.starts_with(&format!("{long}="))) {
            assert!(values.contains(token), "{token:?} was taken as an option in {argv:?}");
        }
    }
    check_app_names(&command);
}

/// Every command refuses an app name that is not safe: apps:create validates it, the others
/// need an app of that name to exist (and the caller to have it), and only valid names exist.
fn check_app_names(command: &AppCommand) {
    let dev = Caller { key: "dev".into(), role: Role::Developer };
    // A service name that cannot be one is refused before any check.
    let Ok(needed) = need(command) else { return };
    STATE.with(|(_, state)| match needed {
        Need::App(app) | Need::Domain { app, .. } if !is_safe_app_name(&app) => {
            assert!(state.require_app(&app).is_err(), "{app:?} exists");
            assert!(dev.check(state, &Need::App(app.clone())).is_err(), "{app:?} is allowed");
        }
        Need::Create => match command {
            AppCommand::AppsCreate { app } => {
                assert!(validate_app_name(app).is_err() || is_safe_app_name(app), "{app:?} may be created")
            }
            AppCommand::Postgres(_) | AppCommand::Redis(_) => {}
            other => panic!("{other:?} creates an app"),
        },
        Need::Admin => assert!(dev.check(state, &Need::Admin).is_err()),
        _ => {}
    })
}

/// Imports `bytes` as a slug into `ROOT/a/b/c/app` and checks that nothing is written outside
/// it (within four levels up), and nothing at all when the slug is refused.
fn check_import(bytes: &[u8]) {
    let root = tempfile::tempdir().expect("a temp dir");
    let dest = root.path().join("a/b/c/app");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let mut file = tempfile::tempfile().expect("a temp file");
    file.write_all(bytes).unwrap();
    let result = import_file(&file, &dest, &ImportOptions { max_unpacked: 1 << 20, owner: None });
    let mut outside = Vec::new();
    let mut walk = walkdir::WalkDir::new(root.path()).min_depth(1).into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.expect("a readable temp dir");
        if entry.path() == dest {
            walk.skip_current_dir();
        } else if !["a", "a/b", "a/b/c"].iter().any(|p| entry.path() == root.path().join(p)) {
            outside.push(entry.path().to_path_buf());
        }
    }
    if let Err(e) = &result {
        if e.downcast_ref::<SlugError>().is_some() {
            assert!(!dest.exists(), "a refused slug was partly extracted: {e:#}");
        }
    }
    make_removable(&dest);
    assert!(outside.is_empty(), "written outside the app: {outside:?} ({result:?})");
}

/// Gives the owner every directory back (a slug may set any mode), so the temp dir can go.
fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    for entry in walkdir::WalkDir::new(dir).min_depth(1).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// `import_file` (its planner first) on any bytes: no panic, nothing outside the app.
pub fn slug_import(data: &[u8]) {
    check_import(data);
}

/// `import_file` on a tar made from lines `d NAME`, `f NAME`, `l NAME TARGET` (symlink) or
/// `h NAME TARGET` (hard link), names as raw as tar allows: reaches the link checks, which
/// random bytes rarely get past a tar checksum to.
pub fn slug_entries(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut tar = tar::Builder::new(Vec::new());
    for line in text.lines() {
        let mut words = line.splitn(3, ' ');
        let (Some(kind), Some(name)) = (words.next(), words.next()) else { continue };
        let (kind, link) = match (kind, words.next()) {
            ("d", None) => (tar::EntryType::Directory, ""),
            ("f", None) => (tar::EntryType::Regular, ""),
            ("l", Some(target)) => (tar::EntryType::Symlink, target),
            ("h", Some(target)) => (tar::EntryType::Link, target),
            _ => continue,
        };
        if name.len() > 100 || link.len() > 100 {
            continue;
        }
        let mut h = tar::Header::new_old();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        h.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o755);
        let body: &[u8] = if kind == tar::EntryType::Regular { b"data" } else { b"" };
        h.set_size(body.len() as u64);
        h.set_cksum();
        tar.append(&h, body).unwrap();
    }
    check_import(&tar.into_inner().unwrap());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every committed seed of `fuzz/corpus/<target>` through its entry point.
    fn seeds(target: &str, entry: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
        let mut n = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            entry(&std::fs::read(file.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn the_seeds_pass_every_target() {
        seeds("procfile", procfile);
        seeds("release", release);
        seeds("ssh_command", ssh_command);
        seeds("domain", domain);
        seeds("slug_import", slug_import);
        seeds("slug_entries", slug_entries);
    }
}
