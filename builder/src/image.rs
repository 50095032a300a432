//! Release images: a slug becomes an image on the run image, the app as one layer at `/app`
//! already owned by the app user (the slug's entries are; nothing is chowned at start), with
//! labels saying what it is, and `/start web` as the default command. Made by extracting the
//! slug into a (never started) container and committing it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};

use bollard::models::ContainerCreateBody;

use crate::docker::{Engine, LABEL_APP, LABEL_MANAGED, LABEL_ROLE};
use crate::progress::Step;
use crate::slug;

pub const LABEL_BUILDPACK: &str = "io.slipway.buildpack";
pub const LABEL_PROCESS_TYPES: &str = "io.slipway.process-types";
pub const LABEL_SOURCE_VERSION: &str = "io.slipway.source-version";
pub const LABEL_RELEASE: &str = "io.slipway.release";
pub const LABEL_PORT: &str = "io.slipway.port";

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

/// Builds `tag` from a slug on `run_image`, with `extra_labels` besides the usual ones.
pub async fn from_slug(
    engine: &Engine,
    slug_path: &Path,
    run_image: &str,
    app: &str,
    release: &str,
    tag: &str,
    extra_labels: &[(String, String)],
) -> Result<()> {
    let inspection = slug::inspect(slug_path)?;
    let meta = inspection.metadata.as_ref();
    let buildpack =
        meta.map(|m| m.buildpacks.iter().map(|b| b.name.clone()).collect::<Vec<_>>().join(",")).unwrap_or_default();
    let process_types: BTreeMap<String, String> = inspection.process_types.iter().cloned().collect();
    let mut labels = labels(app, release, &buildpack, &process_types, meta.and_then(|m| m.source_version.as_deref()));
    labels.extend(extra_labels.iter().cloned());
    let slug_bytes = std::fs::read(slug_path).with_context(|| format!("cannot read {}", slug_path.display()))?;
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
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let name = format!("slipway-release-{app}-{nanos:x}");
    let id = engine.create(&name, body).await.context("cannot make the release image")?;
    let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let made = async {
        engine.upload_keeping_owners(&id, "/app", slug_bytes).await?;
        engine.commit(&id, repo, version).await
    }
    .await;
    engine.remove_container(&id).await;
    made.context("cannot make the release image")?;
    engine.replace_image(previous, tag).await;
    step.done(format!("Release image {tag}"));
    Ok(())
}
