//! The default buildpacks, in detect order: `buildpacks.toml` at the repository root.
//!
//! ```toml
//! [[buildpack]]
//! name = "static"
//! source = "buildpacks/static"   # anything `source::Source` accepts; paths are relative to the file
//! version = "1.0.0"              # semver
//! ```
//!
//! The file and `buildpacks/` are embedded in the binary, so `slipway` carries its defaults onto
//! any host and into the stack image. `--buildpacks-toml`/`SLIPWAY_BUILDPACKS_TOML` points at
//! another list. Inside a stack image, buildpacks installed under BUILDPACK_PATH (herokuish's
//! `buildpack install`) take precedence, in directory-name order.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::source::Source;

static EMBEDDED_TOML: &str = include_str!("../../../buildpacks.toml");
/// The shared helpers every first-party buildpack sources (the engine hands them over as the
/// file named by `SLIPWAY_BUILDPACK_LIB`).
pub const BUILDPACK_LIB: &str = include_str!("../../../buildpacks/lib/buildpack.sh");
static EMBEDDED_BUILDPACKS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../buildpacks");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub source: String,
    pub version: semver::Version,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "buildpack", default)]
    buildpacks: Vec<Entry>,
}

/// A default buildpack, ready to fetch.
#[derive(Debug, Clone)]
pub struct DefaultBuildpack {
    pub name: String,
    pub version: Option<semver::Version>,
    pub source: Source,
}

/// Writes a `buildpacks.toml` listing `entries` (what [`parse`] reads back).
pub fn to_toml(entries: Vec<Entry>) -> Result<String> {
    toml::to_string(&File { buildpacks: entries }).context("cannot write a buildpacks.toml")
}

/// Parses a `buildpacks.toml`; relative sources resolve against `base`.
pub fn parse(text: &str, base: &Path) -> Result<Vec<DefaultBuildpack>> {
    let file: File = toml::from_str(text).context("buildpacks.toml is not valid")?;
    let mut out: Vec<DefaultBuildpack> = Vec::new();
    for entry in file.buildpacks {
        if out.iter().any(|d| d.name == entry.name) {
            bail!("buildpacks.toml lists {:?} twice", entry.name);
        }
        let source = Source::parse(&entry.source, base)
            .with_context(|| format!("buildpacks.toml: buildpack {:?}", entry.name))?;
        out.push(DefaultBuildpack { name: entry.name, version: Some(entry.version), source });
    }
    Ok(out)
}

/// Loads the defaults: an explicit file, else the embedded list (unpacked once per content).
pub fn load(explicit: Option<&Path>) -> Result<Vec<DefaultBuildpack>> {
    if let Some(path) = explicit {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        return parse(&text, path.parent().unwrap_or(Path::new(".")));
    }
    let base = unpack_embedded()?;
    parse(EMBEDDED_TOML, &base)
}

/// The embedded buildpacks as a directory tree, unpacked under the temp dir keyed by content
/// hash, so every later build reuses it. Readable by everyone (the app user runs them).
fn unpack_embedded() -> Result<PathBuf> {
    let mut hasher = Sha256::new();
    hasher.update(EMBEDDED_TOML);
    hash_dir(&EMBEDDED_BUILDPACKS, &mut hasher);
    let digest = hasher.finalize();
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let euid = unsafe { libc::geteuid() };
    let target = std::env::temp_dir().join(format!("slipway-buildpacks-{euid}-{short}"));
    if owned_by(&target, euid) {
        return Ok(target);
    }
    let staging = tempfile::Builder::new()
        .prefix("slipway-buildpacks-staging")
        .tempdir_in(std::env::temp_dir())
        .context("cannot create a temp dir for the default buildpacks")?;
    write_dir(&EMBEDDED_BUILDPACKS, &staging.path().join("buildpacks"))?;
    std::fs::write(staging.path().join("buildpacks.toml"), EMBEDDED_TOML)?;
    set_mode(staging.path(), 0o755)?;
    let staged = staging.keep();
    if std::fs::rename(&staged, &target).is_err() {
        // Another build got there first, or someone else holds the name: use ours where it is.
        if owned_by(&target, euid) {
            let _ = std::fs::remove_dir_all(&staged);
            return Ok(target);
        }
        return Ok(staged);
    }
    Ok(target)
}

fn owned_by(path: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0)
}

fn hash_dir(dir: &Dir<'_>, hasher: &mut Sha256) {
    for file in dir.files() {
        hasher.update(file.path().to_string_lossy().as_bytes());
        hasher.update(file.contents());
    }
    for sub in dir.dirs() {
        hash_dir(sub, hasher);
    }
}

fn write_dir(dir: &Dir<'_>, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    set_mode(dest, 0o755)?;
    for file in dir.files() {
        let name = file.path().file_name().expect("embedded file has a name");
        let path = dest.join(name);
        std::fs::write(&path, file.contents())?;
        let in_bin = file.path().parent().and_then(|p| p.file_name()).is_some_and(|n| n == "bin");
        set_mode(&path, if in_bin { 0o755 } else { 0o644 })?;
    }
    for sub in dir.dirs() {
        write_dir(sub, &dest.join(sub.path().file_name().expect("embedded dir has a name")))?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

/// Buildpacks installed under BUILDPACK_PATH (herokuish layout), in directory-name order.
pub fn installed(buildpack_path: &Path) -> Vec<DefaultBuildpack> {
    let Ok(entries) = std::fs::read_dir(buildpack_path) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("bin/compile").is_file()).collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| DefaultBuildpack {
            name: dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            version: None,
            source: Source::Local(dir),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_list_reads_back() {
        let entries = vec![
            Entry {
                name: "a \"quoted\" one".into(),
                source: "/tmp/x y".into(),
                version: semver::Version::new(1, 2, 3),
            },
            Entry {
                name: "git".into(),
                source: "https://example.com/bp.git#v1".into(),
                version: semver::Version::new(0, 1, 0),
            },
        ];
        let read = parse(&to_toml(entries).unwrap(), Path::new("/")).unwrap();
        assert_eq!(read[0].name, "a \"quoted\" one");
        assert_eq!(read[0].source, Source::Local("/tmp/x y".into()));
        assert_eq!(read[1].version, Some(semver::Version::new(0, 1, 0)));
        assert_eq!(read[1].source.describe(), "https://example.com/bp.git#v1");
    }

    #[test]
    fn the_embedded_list_is_valid_and_unpacks() {
        let defaults = load(None).unwrap();
        let names: Vec<_> = defaults.iter().map(|d| d.name.as_str()).collect();
        assert!(names.contains(&"null") && names.contains(&"static"), "{names:?}");
        for d in &defaults {
            let Source::Local(dir) = &d.source else { panic!("embedded buildpacks are local") };
            assert!(dir.join("bin/compile").is_file(), "{}", dir.display());
            assert!(dir.join("bin/detect").is_file(), "{}", dir.display());
        }
        // Unpacked once: a second load gives the same paths.
        let again = load(None).unwrap();
        assert_eq!(format!("{:?}", again[0].source), format!("{:?}", defaults[0].source));
    }

    #[test]
    fn rejects_bad_versions_duplicates_and_unknown_keys() {
        let base = Path::new("/");
        let err = parse("[[buildpack]]\nname='a'\nsource='/a'\nversion='one'\n", base).unwrap_err();
        assert!(format!("{err:#}").contains("version"), "{err:#}");
        let dup = "[[buildpack]]\nname='a'\nsource='/a'\nversion='1.0.0'\n[[buildpack]]\nname='a'\nsource='/b'\nversion='1.0.0'\n";
        assert!(parse(dup, base).unwrap_err().to_string().contains("twice"));
        assert!(parse("[[buildpack]]\nname='a'\nsource='/a'\nversion='1.0.0'\nurl='x'\n", base).is_err());
    }

    #[test]
    fn installed_buildpacks_are_in_directory_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["20_b", "10_a", "30_not_a_buildpack"] {
            std::fs::create_dir_all(dir.path().join(name).join("bin")).unwrap();
        }
        std::fs::write(dir.path().join("20_b/bin/compile"), "").unwrap();
        std::fs::write(dir.path().join("10_a/bin/compile"), "").unwrap();
        let names: Vec<_> = installed(dir.path()).into_iter().map(|d| d.name).collect();
        assert_eq!(names, vec!["10_a", "20_b"]);
    }
}
