//! A prebuilt image as a release (`git:from-image`): its Procfile and app.json read from `/app`
//! or its working directory, and a thin image on top of it (`FROM` the image, the release's
//! labels) tagged as the release, so it is kept, cleaned up and rolled back like any other.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};

use super::docker::{Engine, ImageBuild, TarStream};
use super::image::{self, BuildKind};

/// Checks an image reference given by a user: `name[:tag][@digest]`, nothing else.
pub fn check_reference(image: &str) -> Result<()> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && image.starts_with(|c: char| c.is_ascii_alphanumeric())
        && image.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if !ok {
        bail!("{image:?} is not an image name: expected NAME[:TAG] or NAME@sha256:DIGEST");
    }
    Ok(())
}

/// The Procfile and app.json in `image` (in `/app`, else its working directory), when there.
pub async fn app_files(engine: &Engine, image: &str) -> Result<(Option<String>, Option<String>)> {
    let info =
        engine.api.inspect_image(image).await.map_err(|_| {
            anyhow!("there is no image {image:?} in the Docker engine: build, pull or load it there first")
        })?;
    let workdir = info.config.and_then(|c| c.working_dir).filter(|w| w.starts_with('/')).unwrap_or_default();
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    let id = engine.create(&format!("slipway-read-{}", std::process::id()), body).await?;
    let mut found = (None, None);
    for dir in ["/app".to_string(), workdir] {
        if dir.is_empty() {
            continue;
        }
        let read = |name: &str| {
            let path = format!("{}/{name}", dir.trim_end_matches('/'));
            let id = id.clone();
            async move { engine.read_small_file(&id, &path).await.and_then(|b| String::from_utf8(b).ok()) }
        };
        if found.0.is_none() {
            found.0 = read("Procfile").await.filter(|t| !t.is_empty());
        }
        if found.1.is_none() {
            found.1 = read("app.json").await.filter(|t| !t.is_empty());
        }
    }
    engine.remove_container(&id).await;
    Ok(found)
}

/// Tags `image` as the release `tag` of `app`: a thin image on it with the release's labels.
pub async fn tag_release(
    engine: &Engine,
    image: &str,
    tag: &str,
    app: &str,
    process_types: &BTreeMap<String, String>,
) -> Result<()> {
    let labels = image::labels(app, "latest", BuildKind::DOCKERFILE, process_types, None);
    relabel(engine, image, tag, labels).await
}

/// `tag`: `image` with these labels (a label-only image on it: no layer, made at once).
pub async fn relabel(engine: &Engine, image: &str, tag: &str, labels: HashMap<String, String>) -> Result<()> {
    let dockerfile = "ARG BASE\nFROM ${BASE}\n";
    let context = super::docker::tar_of(&[("Dockerfile", dockerfile.as_bytes(), 0o644)])?;
    let spec = ImageBuild {
        dockerfile: "Dockerfile",
        tag,
        target: None,
        args: HashMap::from([("BASE".to_string(), image.to_string())]),
        labels,
    };
    engine
        .build(TarStream::from_bytes(context), &spec, |_| {})
        .await
        .with_context(|| format!("cannot make {tag} from {image}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_are_checked() {
        for ok in ["myapp", "myapp:v2", "registry.local:5000/team/app:1.0", "app@sha256:abc123"] {
            assert!(check_reference(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-rm", "app name", "app\n", "../x;y", "$(id)"] {
            assert!(check_reference(bad).is_err(), "{bad:?}");
        }
    }
}
