//! What slipway takes on disk: release images, stack images, build caches and container logs
//! (`slipway report`), and `slipway cleanup`, which frees what running apps and their rollbacks
//! do not need. Docker's own files (logs, volumes) are root's: the daemon measures them for
//! the git user ([`measure_docker_files`]).

use std::path::Path;

use anyhow::{Context, Result};

use crate::containers::docker::{Engine, LABEL_APP, LABEL_MANAGED};

/// Docker's data directory (where container logs and volumes are).
const DOCKER_ROOT: &str = "/var/lib/docker";
/// slipway's build caches are volumes named so.
pub const CACHE_PREFIX: &str = "slipway-cache-";

/// Bytes (and counts) by kind; None where the files could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub release_images: (usize, u64),
    /// The release images' ids (what a clean-up removed is told by them, not by the count,
    /// which other deploys change meanwhile).
    pub release_ids: std::collections::BTreeSet<String>,
    pub stack_images: (usize, u64),
    pub caches: (usize, Option<u64>),
    pub logs: Option<u64>,
}

/// The images, from the engine; caches and logs from Docker's files when this process can read
/// them, else from `docker_files` (the daemon's answer).
pub async fn usage(engine: &Engine, docker_files: Option<(u64, u64)>) -> Result<Usage> {
    let images = engine.api.list_images(None::<bollard::query_parameters::ListImagesOptions>).await?;
    let mut usage = Usage::default();
    for image in images {
        let size = u64::try_from(image.size).unwrap_or(0);
        if image.repo_tags.iter().any(|t| t.starts_with("slipway/stack:")) {
            usage.stack_images.0 += 1;
            usage.stack_images.1 += size;
        } else if image.labels.contains_key(LABEL_APP) {
            usage.release_images.0 += 1;
            usage.release_images.1 += size;
            usage.release_ids.insert(image.id.clone());
        }
    }
    let caches = cache_volumes(engine).await?;
    usage.caches.0 = caches.len();
    let (logs, cache_bytes) = match measure_docker_files() {
        Some(measured) => (Some(measured.0), Some(measured.1)),
        None => (docker_files.map(|d| d.0), docker_files.map(|d| d.1)),
    };
    (usage.logs, usage.caches.1) = (logs, cache_bytes);
    Ok(usage)
}

async fn cache_volumes(engine: &Engine) -> Result<Vec<String>> {
    let volumes = engine.api.list_volumes(None::<bollard::query_parameters::ListVolumesOptions>).await?;
    Ok(volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .filter(|n| n.starts_with(CACHE_PREFIX))
        .collect())
}

/// (bytes of slipway's containers' logs, bytes of its build caches), read from Docker's
/// files; None when they cannot be read (not root).
pub fn measure_docker_files() -> Option<(u64, u64)> {
    let containers = Path::new(DOCKER_ROOT).join("containers");
    let mut logs = 0;
    for entry in std::fs::read_dir(&containers).ok()?.flatten() {
        let dir = entry.path();
        let config = std::fs::read_to_string(dir.join("config.v2.json")).unwrap_or_default();
        if !config.contains(LABEL_MANAGED) {
            continue;
        }
        for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if file.file_name().to_string_lossy().contains("-json.log") {
                logs += file.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let mut caches = 0;
    for entry in std::fs::read_dir(Path::new(DOCKER_ROOT).join("volumes")).ok()?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(CACHE_PREFIX) {
            caches += walkdir::WalkDir::new(entry.path().join("_data"))
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
    }
    Some((logs, caches))
}

/// `slipway cleanup`: each app's release images beyond `keep-releases` (and failed releases'),
/// its exited one-offs and build containers (as after every deploy), then every image slipway
/// made that no tag names any more. Images of running releases and of the rollback window stay;
/// so do other data dirs' apps (one Docker may serve several). Returns what it freed.
pub async fn cleanup(r: &crate::platform::runner::Runner) -> Result<(Usage, Usage)> {
    let before = usage(&r.engine, None).await?;
    for app in r.state.apps()? {
        r.hygiene(&app).await.with_context(|| format!("cannot clean up {app}"))?;
    }
    r.engine.remove_dangling(None).await?;
    let after = usage(&r.engine, None).await?;
    Ok((before, after))
}
