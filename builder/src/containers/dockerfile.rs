//! The alternate build path: an app with a `Dockerfile` (and no buildpack chosen) is built with
//! the Docker build API. The context honours `.dockerignore`; config vars become build args when
//! asked; the image is labelled like a buildpack release; an `EXPOSE`d port becomes `PORT`; a
//! Procfile, when present, gives the command of each process type.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::engine::fsutil::{has_app_file, read_app_file};
use anyhow::{anyhow, Context, Result};
use globset::{GlobBuilder, GlobMatcher};

use crate::containers::docker::{Engine, ImageBuild, TarStream};
use crate::containers::image;
use crate::engine::envdir::Vars;
use crate::engine::procfile::Procfile;
use crate::output;
use crate::output::progress::Step;

/// Whether `dir` builds with its Dockerfile: it has one, and does not choose buildpacks
/// (`BUILDPACK_URL` in config, the environment or `.env`, or a `.buildpacks` file).
pub fn applies(dir: &Path, config: &Vars) -> Result<bool> {
    // Read on the host: links in the pushed tree are not followed.
    if !has_app_file(dir, "Dockerfile") {
        return Ok(false);
    }
    let dotenv = read_app_file(dir, ".env")?.map(|t| crate::engine::envdir::parse_dotenv(&t)).transpose()?;
    let chooses_buildpacks = config.contains_key("BUILDPACK_URL")
        || std::env::var_os("BUILDPACK_URL").is_some()
        || has_app_file(dir, ".buildpacks")
        || dotenv.is_some_and(|d| d.contains_key("BUILDPACK_URL"));
    Ok(!chooses_buildpacks)
}

/// `.dockerignore` rules, Docker's way: patterns are relative to the context root (`**`
/// spans directories), `!` re-includes, the last matching rule wins, and a rule matching a
/// directory covers what is inside it.
pub struct DockerIgnore {
    rules: Vec<(GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub fn read(dir: &Path) -> Result<DockerIgnore> {
        Self::parse(&read_app_file(dir, ".dockerignore")?.unwrap_or_default())
    }

    pub fn parse(text: &str) -> Result<DockerIgnore> {
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (negate, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
            let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| anyhow!(".dockerignore: bad pattern {line:?}: {e}"))?;
            rules.push((glob.compile_matcher(), negate));
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `rel` (a path relative to the context) is left out.
    pub fn excludes(&self, rel: &Path) -> bool {
        let mut excluded = false;
        for (glob, negate) in &self.rules {
            // A rule matches the path or any directory above it.
            let hit = rel.ancestors().filter(|a| !a.as_os_str().is_empty()).any(|a| glob.is_match(a));
            if hit {
                excluded = !negate;
            }
        }
        excluded
    }
}

/// The build context's paths, `.dockerignore` applied (the Dockerfile is always sent), and
/// their size as a tar.
pub fn context_files(dir: &Path) -> Result<(Vec<PathBuf>, u64)> {
    let ignore = DockerIgnore::read(dir)?;
    let (mut files, mut size) = (Vec::new(), 0u64);
    let walker = walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name();
    for entry in walker {
        let entry = entry?;
        let rel = entry.path().strip_prefix(dir)?;
        if rel != Path::new("Dockerfile") && ignore.excludes(rel) {
            continue;
        }
        size += 512 + entry.metadata().map(|m| if m.is_file() { m.len() } else { 0 }).unwrap_or(0);
        files.push(rel.to_path_buf());
    }
    Ok((files, size))
}

/// The context as a tar the engine reads as it is written: files are read while they are sent,
/// never all in memory. Links are sent as links.
pub fn context_stream(dir: PathBuf, files: Vec<PathBuf>, generated: Vec<(String, Vec<u8>)>) -> TarStream {
    TarStream::new(move |tar| {
        tar.follow_symlinks(false);
        for (path, data) in &generated {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, &data[..])?;
        }
        for rel in files {
            let path = dir.join(&rel);
            if std::fs::symlink_metadata(&path)?.is_dir() {
                tar.append_dir(&rel, &path)?;
            } else {
                tar.append_path_with_name(&path, &rel)?;
            }
        }
        Ok(())
    })
}

/// Where the generated Dockerfile and the CA bundle go in the context.
const GENERATED: &str = ".slipway-build";
/// Where each stage finds the bundle.
const CA_IN_STAGE: &str = "/etc/ssl/certs/slipway-build-ca.crt";

/// The Dockerfile the engine builds: the app's, with the host's CA bundle copied into every
/// stage and named by the variables tools read (as ARGs: RUN steps see them, the image's
/// configuration keeps none of them), so `RUN npm install` works behind a TLS-intercepting
/// proxy. Only one-line `FROM` instructions are followed; the rest is the app's, as written.
pub fn with_ca_bundle(dockerfile: &str) -> String {
    let mut out = String::with_capacity(dockerfile.len() + 512);
    for line in dockerfile.lines() {
        out.push_str(line);
        out.push('\n');
        let words: Vec<&str> = line.split_whitespace().collect();
        let is_from = words.first().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) && !line.trim_end().ends_with('\\');
        if is_from && words.len() >= 2 {
            out.push_str(&format!("COPY {GENERATED}/ca-certificates.crt {CA_IN_STAGE}\n"));
            for var in super::build::CA_VARIABLES {
                out.push_str(&format!("ARG {var}={CA_IN_STAGE}\n"));
            }
        }
    }
    out
}

pub struct DockerfileBuild<'a> {
    pub dir: &'a Path,
    pub app: &'a str,
    pub tag: &'a str,
    pub config: &'a Vars,
    /// Pass config vars as build args.
    pub build_args: bool,
    pub source_version: Option<&'a str>,
    /// Trusted by every stage's RUN steps (see [`with_ca_bundle`]).
    pub ca_bundle: Option<PathBuf>,
}

/// Builds the image; returns the port the app listens on (EXPOSE, else 5000).
pub async fn build(engine: &Engine, b: &DockerfileBuild<'_>) -> Result<u16> {
    output::header("Dockerfile app detected");
    let procfile = read_app_file(b.dir, "Procfile")?.map(|t| Procfile::parse(&t)).transpose()?.unwrap_or_default();
    let process_types: BTreeMap<String, String> =
        procfile.processes.iter().map(|p| (p.name.clone(), p.command.clone())).collect();
    let dir = b.dir.to_path_buf();
    let (files, size) =
        tokio::task::spawn_blocking(move || context_files(&dir)).await?.context("cannot read the build context")?;
    let mut generated = Vec::new();
    let mut dockerfile = "Dockerfile".to_string();
    if let Some(ca) = &b.ca_bundle {
        let bundle = std::fs::read(ca).with_context(|| format!("cannot read the CA bundle {}", ca.display()))?;
        let text = read_app_file(b.dir, "Dockerfile")?.context("the app has no Dockerfile")?;
        dockerfile = format!("{GENERATED}/Dockerfile");
        generated.push((dockerfile.clone(), with_ca_bundle(&text).into_bytes()));
        generated.push((format!("{GENERATED}/ca-certificates.crt"), bundle));
    }
    let context = context_stream(b.dir.to_path_buf(), files, generated);
    let mut args: HashMap<String, String> =
        if b.build_args { b.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect() } else { HashMap::new() };
    // Docker's predefined proxy ARGs, from this host's environment.
    for var in super::build::PROXY_VARIABLES {
        if let Ok(v) = std::env::var(var) {
            args.entry(var.to_string()).or_insert(v);
        }
    }
    let labels = image::labels(b.app, "latest", image::BuildKind::DOCKERFILE, &process_types, b.source_version);
    let step = Step::start(format!("Building {} with its Dockerfile ({} context)", b.app, output::size(size)));
    let previous = engine.image_id(b.tag).await?;
    engine
        .build(context, &ImageBuild { dockerfile: &dockerfile, tag: b.tag, target: None, args, labels }, |line| {
            step.line(line)
        })
        .await
        .map_err(|e| anyhow!("the Dockerfile build failed: {e}"))?;
    engine.replace_image(previous, b.tag).await;
    step.done(format!("Built {}", b.tag));
    let port = engine.image_exposed_ports(b.tag).await?.first().copied().unwrap_or(5000);
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_gets_the_ca_bundle_as_args() {
        let out = with_ca_bundle(
            "# syntax=docker/dockerfile:1\nFROM a AS build\nRUN make\nfrom b\nCOPY --from=build /x /x\n",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# syntax=docker/dockerfile:1");
        assert_eq!(lines[1], "FROM a AS build");
        assert_eq!(lines[2], "COPY .slipway-build/ca-certificates.crt /etc/ssl/certs/slipway-build-ca.crt");
        assert!(lines[3..9]
            .iter()
            .all(|l| l.starts_with("ARG ") && l.ends_with("=/etc/ssl/certs/slipway-build-ca.crt")));
        assert_eq!(lines[9], "RUN make");
        assert_eq!(out.matches("COPY .slipway-build/").count(), 2, "both stages: {out}");
        assert!(out.ends_with("COPY --from=build /x /x\n"));
    }

    #[test]
    fn dockerignore_follows_dockers_rules() {
        let ig = DockerIgnore::parse("# comment\nnode_modules\n*.log\n**/*.tmp\n!keep.log\n/secrets/\n").unwrap();
        assert!(ig.excludes(Path::new("node_modules")));
        assert!(ig.excludes(Path::new("node_modules/x/index.js")));
        assert!(!ig.excludes(Path::new("src/node_modules")), "plain patterns are anchored at the root");
        assert!(ig.excludes(Path::new("debug.log")));
        assert!(!ig.excludes(Path::new("keep.log")), "! re-includes");
        assert!(!ig.excludes(Path::new("logs/debug.log")), "* does not cross directories");
        assert!(ig.excludes(Path::new("a/b/c.tmp")));
        assert!(ig.excludes(Path::new("secrets/key")));
        assert!(!ig.excludes(Path::new("app.py")));
    }
}
