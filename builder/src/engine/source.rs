//! Where buildpacks come from (SPEC section 1): a local directory, a git URL with an optional
//! `#ref` (branch, tag or sha), a tarball (`.tgz`, `.tar.gz`, `.tar`) by URL or path, or the
//! `org/name` shorthand that Dokku maps to `https://github.com/org/heroku-buildpack-name`.
//!
//! A fetch that fails is an error naming the source and the cause: never a silent fall-through
//! to auto-detection (herokuish's long-standing complaint).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    Git { url: String, reference: Option<String> },
    Tarball { location: String },
}

const TARBALL_SUFFIXES: [&str; 3] = [".tgz", ".tar.gz", ".tar"];

fn is_url(s: &str) -> bool {
    ["http://", "https://", "git://", "ssh://", "file://", "git+ssh://"].iter().any(|p| s.starts_with(p))
        || (s.starts_with("git@") && s.contains(':'))
}

fn is_shorthand(s: &str) -> bool {
    let mut parts = s.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

impl Source {
    /// Parses a buildpack source as users write it in `BUILDPACK_URL`, `.buildpacks` or `--buildpack`.
    /// Relative directories are resolved against `base`.
    pub fn parse(spec: &str, base: &Path) -> Result<Source> {
        let spec = spec.trim();
        if spec.is_empty() {
            bail!("empty buildpack source");
        }
        let (location, reference) = match spec.split_once('#') {
            Some((l, r)) if !r.is_empty() => (l, Some(r.to_string())),
            Some((l, _)) => (l, None),
            None => (spec, None),
        };
        if location.contains("://") && !is_url(location) {
            bail!(
                "buildpack source {spec:?}: unsupported URL scheme (use https://, http://, git://, ssh:// or file://)"
            );
        }
        let path_part = location.split('?').next().unwrap_or(location);
        if TARBALL_SUFFIXES.iter().any(|s| path_part.ends_with(s)) {
            if is_url(location) && !location.starts_with("http") && !location.starts_with("file://") {
                bail!("buildpack tarball {spec:?}: only http(s):// URLs and local paths are supported");
            }
            let location = match location.strip_prefix("file://") {
                Some(p) => p.to_string(),
                None if is_url(location) => location.to_string(),
                None => base.join(location).to_string_lossy().into_owned(),
            };
            return Ok(Source::Tarball { location });
        }
        if is_url(location) {
            return Ok(Source::Git { url: location.to_string(), reference });
        }
        let as_path = base.join(location);
        if location.starts_with('/') || location.starts_with('.') || as_path.is_dir() {
            if reference.is_some() && as_path.join(".git").exists() {
                // A local git checkout with a ref: clone it so the ref is honoured.
                return Ok(Source::Git { url: as_path.to_string_lossy().into_owned(), reference });
            }
            return Ok(Source::Local(as_path));
        }
        if is_shorthand(location) {
            let (org, name) = location.split_once('/').expect("shorthand has a slash");
            let name = name.strip_prefix("heroku-buildpack-").unwrap_or(name);
            return Ok(Source::Git { url: format!("https://github.com/{org}/heroku-buildpack-{name}.git"), reference });
        }
        bail!(
            "cannot tell what kind of buildpack source {spec:?} is: expected a directory, a git URL \
             (optionally with #ref), a .tgz/.tar.gz/.tar URL, or org/name"
        )
    }

    /// A short name for directories and logs.
    pub fn short_name(&self) -> String {
        let raw = match self {
            Source::Local(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            Source::Git { url, .. } => url.rsplit(['/', ':']).next().unwrap_or("").trim_end_matches(".git").to_string(),
            Source::Tarball { location } => {
                let last = location.split('?').next().unwrap_or("").rsplit('/').next().unwrap_or("");
                TARBALL_SUFFIXES.iter().fold(last.to_string(), |acc, s| acc.trim_end_matches(s).to_string())
            }
        };
        let cleaned: String =
            raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let cleaned = cleaned.strip_prefix("heroku-buildpack-").map(str::to_string).unwrap_or(cleaned);
        if cleaned.is_empty() {
            "buildpack".into()
        } else {
            cleaned
        }
    }

    /// Makes the buildpack available on disk and returns its root (the dir holding `bin/`).
    /// Local directories are used in place; everything else is fetched into `dest`.
    pub fn fetch(&self, dest: &Path) -> Result<PathBuf> {
        let root = match self {
            Source::Local(path) => {
                if !path.is_dir() {
                    bail!("buildpack directory {} does not exist", path.display());
                }
                path.clone()
            }
            Source::Git { url, reference } => {
                clone(url, reference.as_deref(), dest)?;
                dest.to_path_buf()
            }
            Source::Tarball { location } => {
                unpack_tarball(location, dest)?;
                find_root(dest)
            }
        };
        if !root.join("bin/compile").is_file() {
            bail!("{} is not a buildpack: it has no bin/compile", self.describe());
        }
        ensure_executable(&root)?;
        Ok(root)
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Local(p) => p.display().to_string(),
            Source::Git { url, reference: Some(r) } => format!("{url}#{r}"),
            Source::Git { url, reference: None } => url.clone(),
            Source::Tarball { location } => location.clone(),
        }
    }
}

fn git(args: &[&str], dir: Option<&Path>) -> Result<(), String> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("git failed");
    Err(msg.trim().to_string())
}

fn looks_like_sha(r: &str) -> bool {
    (7..=40).contains(&r.len()) && r.chars().all(|c| c.is_ascii_hexdigit())
}

fn clone(url: &str, reference: Option<&str>, dest: &Path) -> Result<()> {
    let dest_s = dest.to_string_lossy();
    let shown = match reference {
        Some(r) => format!("{url}#{r}"),
        None => url.to_string(),
    };
    let shallow = match reference {
        Some(r) => git(&["clone", "--quiet", "--depth", "1", "--branch", r, url, &dest_s], None),
        None => git(&["clone", "--quiet", "--depth", "1", url, &dest_s], None),
    };
    let Err(shallow_err) = shallow else { return Ok(()) };
    match reference {
        Some(r) if looks_like_sha(r) => {
            // A sha is not a branch or tag: full clone, then check it out.
            let _ = std::fs::remove_dir_all(dest);
            git(&["clone", "--quiet", url, &dest_s], None)
                .and_then(|_| git(&["checkout", "--quiet", r], Some(dest)))
                .map_err(|e| anyhow!("could not fetch buildpack {shown}: {e}"))
        }
        _ => Err(anyhow!("could not fetch buildpack {shown}: {shallow_err}")),
    }
}

fn unpack_tarball(location: &str, dest: &Path) -> Result<()> {
    let reader: Box<dyn std::io::Read> = if location.starts_with("http://") || location.starts_with("https://") {
        let client = crate::net::http_client()?;
        let response = client
            .get(location)
            .send()
            .map_err(|e| anyhow!("could not fetch buildpack {location}: {}", crate::output::error_chain(&e)))?;
        if !response.status().is_success() {
            bail!("could not fetch buildpack {location}: the server answered {}", response.status());
        }
        Box::new(response)
    } else {
        Box::new(std::fs::File::open(location).with_context(|| format!("could not open buildpack tarball {location}"))?)
    };
    let path_part = location.split('?').next().unwrap_or(location);
    let reader: Box<dyn std::io::Read> =
        if path_part.ends_with(".tar") { reader } else { Box::new(flate2::read::MultiGzDecoder::new(reader)) };
    std::fs::create_dir_all(dest)?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    // tar's unpack refuses absolute paths and `..`, so nothing lands outside `dest`.
    archive.unpack(dest).with_context(|| format!("could not unpack buildpack tarball {location}"))?;
    Ok(())
}

/// A tarball may hold the buildpack at its top or inside one directory (GitHub archives).
fn find_root(dir: &Path) -> PathBuf {
    if dir.join("bin").is_dir() {
        return dir.to_path_buf();
    }
    let subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    match subdirs.as_slice() {
        [only] if only.join("bin").is_dir() => only.clone(),
        _ => dir.to_path_buf(),
    }
}

/// Archives and some checkouts lose the executable bit; the contract's scripts need it.
fn ensure_executable(root: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(root.join("bin"))? {
        let path = entry?.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_file() && meta.permissions().mode() & 0o111 == 0 {
            let mut perms = meta.permissions();
            perms.set_mode(perms.mode() | 0o755);
            // A read-only local buildpack simply keeps its modes; running it will say why.
            let _ = std::fs::set_permissions(&path, perms);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Source {
        Source::parse(s, Path::new("/nonexistent-base")).unwrap()
    }

    #[test]
    fn recognises_every_kind() {
        assert_eq!(
            parse("https://github.com/heroku/heroku-buildpack-ruby.git#v250"),
            Source::Git {
                url: "https://github.com/heroku/heroku-buildpack-ruby.git".into(),
                reference: Some("v250".into())
            }
        );
        assert_eq!(
            parse("https://example.com/bp/static.tgz"),
            Source::Tarball { location: "https://example.com/bp/static.tgz".into() }
        );
        assert_eq!(
            parse("https://example.com/b.tar.gz?token=1"),
            Source::Tarball { location: "https://example.com/b.tar.gz?token=1".into() }
        );
        assert_eq!(
            parse("heroku/python"),
            Source::Git { url: "https://github.com/heroku/heroku-buildpack-python.git".into(), reference: None }
        );
        assert_eq!(
            parse("dokku/heroku-buildpack-null#main"),
            Source::Git {
                url: "https://github.com/dokku/heroku-buildpack-null.git".into(),
                reference: Some("main".into())
            }
        );
        assert_eq!(parse("/opt/bp"), Source::Local("/opt/bp".into()));
        assert_eq!(parse("./bp"), Source::Local("/nonexistent-base/./bp".into()));
        assert_eq!(
            parse("git@example.com:me/bp.git"),
            Source::Git { url: "git@example.com:me/bp.git".into(), reference: None }
        );
        assert!(Source::parse("not a source!", Path::new("/")).is_err());
        assert!(Source::parse("ftp://x/y.tgz", Path::new("/")).is_err());
    }

    #[test]
    fn short_names() {
        assert_eq!(parse("https://github.com/heroku/heroku-buildpack-ruby.git").short_name(), "ruby");
        assert_eq!(parse("https://example.com/static.tar.gz").short_name(), "static");
        assert_eq!(parse("/opt/my bp").short_name(), "my_bp");
    }

    #[test]
    fn unreachable_url_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let src = parse("http://127.0.0.1:9/missing.tgz");
        let err = src.fetch(&dir.path().join("bp")).unwrap_err().to_string();
        assert!(err.contains("could not fetch buildpack http://127.0.0.1:9/missing.tgz"), "{err}");
        let src = parse("file:///nonexistent/repo.git");
        let err = src.fetch(&dir.path().join("bp2")).unwrap_err().to_string();
        assert!(err.starts_with("could not fetch buildpack file:///nonexistent/repo.git: "), "{err}");
    }

    #[test]
    fn tarball_with_a_top_directory_and_lost_modes() {
        let dir = tempfile::tempdir().unwrap();
        let tgz = dir.path().join("bp.tgz");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            std::fs::File::create(&tgz).unwrap(),
            flate2::Compression::fast(),
        ));
        for (name, body) in [("bp-main/bin/detect", "#!/bin/sh\necho T\n"), ("bp-main/bin/compile", "#!/bin/sh\n")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        let root = Source::parse("bp.tgz", dir.path()).unwrap().fetch(&dir.path().join("out")).unwrap();
        assert_eq!(root, dir.path().join("out/bp-main"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("bin/compile")).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111);
    }

    #[test]
    fn a_directory_without_bin_compile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Source::Local(dir.path().to_path_buf()).fetch(dir.path()).unwrap_err().to_string();
        assert!(err.ends_with("is not a buildpack: it has no bin/compile"), "{err}");
    }
}
