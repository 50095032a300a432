//! `slipway build DIR`: the app built in a build-image container (or with its Dockerfile),
//! then its release image; a summary of what was made.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::build::{Cache, ContainerBuild};
use super::image::{BuildKind, ReleaseImage};
use super::{docker::Engine, dockerfile, image};
use crate::engine::envdir::Vars;
use crate::output;

/// What `slipway build` (in a container) is asked to do.
pub struct AppBuild {
    pub dir: PathBuf,
    pub app: String,
    /// The slug's path [default: ./APP.slug.tgz].
    pub output: Option<PathBuf>,
    pub buildpacks: Vec<String>,
    pub config: Vars,
    pub cache: Cache,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    /// Pass the config vars to a Dockerfile build as build args.
    pub build_args: bool,
    /// The release image's name [default: slipway-app/APP:latest]; None with `no_image`.
    pub image: Option<String>,
    pub no_image: bool,
    pub build_image: String,
    pub run_image: String,
    pub ca_bundle: Option<PathBuf>,
    pub timeout: Duration,
    pub max_size: u64,
    pub source_version: Option<String>,
}

/// What the engine inside the build container could not see for itself, made explicit (host
/// directories are uploaded with the build): `BUILDPACK_URL` from this environment, and host
/// directories named by a `BUILDPACK_URL` config var or in `.buildpacks` (relative to the app).
/// Empty: the engine chooses as usual.
fn host_choices(dir: &Path, config: &Vars) -> Result<Vec<String>> {
    if let Some(url) = std::env::var("BUILDPACK_URL").ok().filter(|u| !u.trim().is_empty()) {
        return Ok(vec![url]);
    }
    // A path (it has a `/` and is no URL) to a directory on this host.
    let host_dir = |spec: &str| -> Option<String> {
        let looks_like_path = spec.contains('/') && !spec.contains("://");
        let path = dir.join(spec);
        (looks_like_path && path.is_dir()).then(|| path.display().to_string())
    };
    if let Some(url) = config.get("BUILDPACK_URL") {
        return Ok(host_dir(url).into_iter().collect());
    }
    let lines = crate::engine::buildpack::read_dot_buildpacks(dir)?.unwrap_or_default();
    if lines.iter().any(|l| host_dir(l).is_some()) {
        return Ok(lines.iter().map(|l| host_dir(l).unwrap_or_else(|| l.clone())).collect());
    }
    Ok(Vec::new())
}

/// An app name from a directory name: lowercase letters, digits and `-`.
pub fn sanitize_app_name(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if s.is_empty() {
        "app".into()
    } else {
        s
    }
}

/// Builds; returns the summary `--json` prints.
pub async fn build(a: AppBuild) -> Result<serde_json::Value> {
    let started = Instant::now();
    let app = &a.app;
    let tag = a.image.clone().unwrap_or_else(|| format!("{}:latest", image::repository(app)));
    let engine = Engine::connect().await?;
    let mut summary = serde_json::json!({ "app": app });
    if a.buildpacks.is_empty() && dockerfile::applies(&a.dir, &a.config)? {
        let b = dockerfile::DockerfileBuild {
            dir: &a.dir,
            app,
            tag: &tag,
            config: &a.config,
            build_args: a.build_args,
            source_version: a.source_version.as_deref(),
            ca_bundle: a.ca_bundle.clone(),
        };
        let port = dockerfile::build(&engine, &b).await?;
        let size = engine.image_size(&tag).await?;
        output::header(format!("Image: {tag} ({}), listening on PORT {port}", output::size(size)));
        summary["image"] = tag.clone().into();
        summary["image_size"] = size.into();
        summary["port"] = port.into();
        let name = BuildKind::DOCKERFILE;
        summary["buildpacks"] = serde_json::json!([{"name": name, "source": name}]);
    } else {
        let output_path = a.output.clone().unwrap_or_else(|| PathBuf::from(format!("{app}.slug.tgz")));
        // `--buildpack ./dir`: the caller's directory, made absolute (the build reads only those).
        let given = a.buildpacks.iter().map(|b| match std::path::Path::new(b).canonicalize() {
            Ok(abs) if abs.is_dir() => abs.to_string_lossy().into_owned(),
            _ => b.clone(),
        });
        let buildpacks = if a.buildpacks.is_empty() { host_choices(&a.dir, &a.config)? } else { given.collect() };
        let b = ContainerBuild {
            buildpacks,
            config: a.config.clone(),
            cache: a.cache.clone(),
            image: a.build_image.clone(),
            timeout: a.timeout,
            memory: a.memory,
            cpus: a.cpus,
            ca_bundle: a.ca_bundle.clone(),
            source_version: a.source_version.clone(),
            max_size: a.max_size,
            ..ContainerBuild::new(a.dir.clone(), app, output_path.clone())
        };
        let report = super::build::build(&engine, &b).await?;
        output::header(format!("Slug: {} ({})", output_path.display(), output::size(report.slug_size)));
        let metadata = report.result.metadata.clone().context("the engine's result has no build metadata")?;
        let mut phases = report.phases;
        if !a.no_image {
            let t = Instant::now();
            let release = ReleaseImage { app, release: "latest", tag: &tag, metadata: &metadata, extra_labels: &[] };
            image::from_slug(&engine, &output_path, &a.run_image, &release).await?;
            phases.push(("image".into(), t.elapsed()));
            let size = engine.image_size(&tag).await?;
            summary["image"] = tag.clone().into();
            summary["image_size"] = size.into();
        }
        summary["slug"] = serde_json::to_value(&output_path)?;
        summary["slug_size"] = report.slug_size.into();
        summary["buildpacks"] = serde_json::to_value(&metadata.buildpacks)?;
        summary["process_types"] = serde_json::to_value(&metadata.process_types)?;
        summary["durations_ms"] = phases
            .iter()
            .map(|(n, d)| (n.clone(), serde_json::Value::from(d.as_millis() as u64)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    summary["total_ms"] = (started.elapsed().as_millis() as u64).into();
    output::header(format!("Done in {}", output::duration(started.elapsed())));
    Ok(summary)
}
