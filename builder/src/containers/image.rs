//! Release images: a slug becomes an image on the run image, the app as one layer at `/app`
//! already owned by the app user (the slug's entries are; nothing is chowned at start), with
//! labels saying what it is, and `/start web` as the default command. Made by extracting the
//! slug into a (never started) container and committing it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};

use bollard::models::ContainerCreateBody;

use crate::containers::docker::TarStream;
use crate::containers::docker::{Engine, LABEL_APP, LABEL_MANAGED, LABEL_ROLE};
use crate::engine::pipeline::Metadata;
use crate::output::progress::Step;

pub const LABEL_BUILDPACK: &str = "io.slipway.buildpack";
pub const LABEL_PROCESS_TYPES: &str = "io.slipway.process-types";
pub const LABEL_SOURCE_VERSION: &str = "io.slipway.source-version";
pub const LABEL_RELEASE: &str = "io.slipway.release";

/// How a release image was made: by buildpacks (their names, as they named themselves, comma
/// separated) or from the app's Dockerfile. Kept in the image's `io.slipway.buildpack` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildKind {
    Buildpacks(String),
    Dockerfile,
}

impl BuildKind {
    pub const DOCKERFILE: &'static str = "Dockerfile";

    pub fn parse(text: &str) -> BuildKind {
        if text == Self::DOCKERFILE {
            BuildKind::Dockerfile
        } else {
            BuildKind::Buildpacks(text.to_string())
        }
    }

    pub fn is_dockerfile(&self) -> bool {
        *self == BuildKind::Dockerfile
    }

    /// The shell command lines run with in images of this kind: a stack image has bash, a
    /// Dockerfile image may have `/bin/sh` only.
    pub fn shell(&self) -> &'static str {
        if self.is_dockerfile() {
            "/bin/sh"
        } else {
            "bash"
        }
    }
}

impl std::fmt::Display for BuildKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildKind::Buildpacks(names) => f.write_str(names),
            BuildKind::Dockerfile => f.write_str(Self::DOCKERFILE),
        }
    }
}

/// The image name of an app's releases: `slipway-app/NAME`.
pub fn repository(app: &str) -> String {
    format!("slipway-app/{app}")
}

/// Labels shared by every release image: the app, its process types, what built it.
pub fn labels(
    app: &str,
    release: &str,
    buildpack: &str,
    process_types: &BTreeMap<String, String>,
    source_version: Option<&str>,
) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_ROLE.to_string(), "release".to_string()),
        (LABEL_APP.to_string(), app.to_string()),
        (LABEL_RELEASE.to_string(), release.to_string()),
        (LABEL_BUILDPACK.to_string(), buildpack.to_string()),
        (LABEL_PROCESS_TYPES.to_string(), serde_json::to_string(process_types).unwrap_or_default()),
    ]);
    if let Some(v) = source_version {
        labels.insert(LABEL_SOURCE_VERSION.to_string(), v.to_string());
    }
    labels
}

/// A release image to make from a slug: its name, and what the engine said of the build.
pub struct ReleaseImage<'a> {
    pub app: &'a str,
    pub release: &'a str,
    pub tag: &'a str,
    /// The build's metadata (from the engine's result; the slug is not read for it).
    pub metadata: &'a Metadata,
    /// Labels besides the usual ones.
    pub extra_labels: &'a [(String, String)],
}

/// Builds the release image from a slug on `run_image`; the slug is streamed from its file.
pub async fn from_slug(engine: &Engine, slug_path: &Path, run_image: &str, image: &ReleaseImage<'_>) -> Result<()> {
    let ReleaseImage { app, release, tag, metadata: meta, extra_labels } = *image;
    let buildpack = meta.buildpacks.iter().map(|b| b.name.clone()).collect::<Vec<_>>().join(",");
    let mut labels = labels(app, release, &buildpack, &meta.process_types, meta.source_version.as_deref());
    labels.extend(extra_labels.iter().cloned());
    let slug = TarStream::file(slug_path)?;
    let step = Step::start(format!("Making the release image {tag}"));
    let previous = engine.image_id(tag).await?;
    // A container of the run image with the release's config, the slug extracted into /app
    // (owners kept), committed: one layer, much faster than a Dockerfile build.
    let body = ContainerCreateBody {
        image: Some(run_image.to_string()),
        cmd: Some(vec!["/start".into(), "web".into()]),
        env: Some(vec!["PORT=5000".into()]),
        working_dir: Some("/app".into()),
        labels: Some(labels),
        ..Default::default()
    };
    let name = format!("slipway-release-{app}-{:x}", crate::units::unique_id());
    let id = engine.create(&name, body).await.context("cannot make the release image")?;
    let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let made = async {
        engine.upload(&id, "/app", slug, true).await?;
        engine.commit(&id, repo, version).await
    }
    .await;
    engine.remove_container(&id).await;
    made.context("cannot make the release image")?;
    engine.replace_image(previous, tag).await;
    step.done(format!("Release image {tag}"));
    Ok(())
}
