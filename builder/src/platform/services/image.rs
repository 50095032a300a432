//! The services' images, made here (no registry is reachable): `service-images/Dockerfile`'s
//! `postgres` and `redis` targets, FROM the default stack's debootstrapped Debian base, so the
//! services run Debian's own postgresql and redis-server. Tagged with a hash of their inputs and
//! the base: made once, again only when those change (as the stack images are).

use std::collections::HashMap;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::Kind;
use crate::containers::docker::{self, Engine, ImageBuild, TarStream};
use crate::containers::stack::{self, Stack};
use crate::output::progress::Step;

const DOCKERFILE: &str = include_str!("../../../../service-images/Dockerfile");
const POSTGRES_START: &str = include_str!("../../../../service-images/postgres-start");
const REDIS_START: &str = include_str!("../../../../service-images/redis-start");
const SLIM_CFG: &str = include_str!("../../../../stack-image/slim.dpkg.cfg");

/// The image a new `kind` container runs, made first when it is missing.
pub async fn ensure(engine: &Engine, kind: Kind) -> Result<String> {
    let base = stack_base(engine).await?;
    let mut h = Sha256::new();
    for part in [base.as_bytes(), DOCKERFILE.as_bytes(), POSTGRES_START.as_bytes(), REDIS_START.as_bytes()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(SLIM_CFG.as_bytes());
    let hash: String = h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    let tag = format!("slipway/{}:{hash}", kind.as_str());
    if engine.image_exists(&tag).await? {
        return Ok(tag);
    }
    let context = docker::tar_of(&[
        ("Dockerfile", DOCKERFILE.as_bytes(), 0o644),
        ("postgres-start", POSTGRES_START.as_bytes(), 0o755),
        ("redis-start", REDIS_START.as_bytes(), 0o755),
        ("slim.dpkg.cfg", SLIM_CFG.as_bytes(), 0o644),
    ])?;
    let step = Step::start(format!("Building the {} image from Debian's packages", kind.title()));
    let spec = ImageBuild {
        dockerfile: "Dockerfile",
        tag: &tag,
        target: Some(kind.as_str()),
        args: HashMap::from([("BASE".to_string(), base)]),
        labels: HashMap::from([
            (docker::LABEL_MANAGED.to_string(), "true".to_string()),
            (docker::LABEL_ROLE.to_string(), "service-image".to_string()),
        ]),
    };
    engine
        .build(TarStream::from_bytes(context), &spec, |l| step.line(l))
        .await
        .with_context(|| format!("building the {} image failed", kind.title()))?;
    step.done(format!("Built {tag}"));
    Ok(tag)
}

/// The debootstrapped base the default stack's run image was made from: the stack base image
/// whose one layer is the run image's first.
async fn stack_base(engine: &Engine) -> Result<String> {
    let missing = || {
        format!(
            "the {} stack images are missing: run `slipway stack build` (make stack-image)",
            Stack::default_stack().name
        )
    };
    let run = engine.api.inspect_image(stack::RUN_IMAGE).await.map_err(|_| anyhow::anyhow!(missing()))?;
    let first = run.root_fs.and_then(|fs| fs.layers).and_then(|l| l.into_iter().next()).with_context(missing)?;
    let suite = Stack::default_stack().suite;
    for (id, tags) in engine.images_named(&format!("{}:{suite}-*", stack::images::BASE_REPO)).await? {
        let info = engine.api.inspect_image(&id).await.context("cannot inspect a stack base image")?;
        let layers = info.root_fs.and_then(|fs| fs.layers).unwrap_or_default();
        if layers.first() == Some(&first) {
            if let Some(tag) = tags.into_iter().next() {
                return Ok(tag);
            }
        }
    }
    Err(anyhow::anyhow!(missing()))
}
