//! Config for images slipway did not build (Dockerfile apps): the engine's static binary, taken
//! from the run image once, is mounted read-only into the container and starts the image's own
//! command with the config vars of ENV_PATH in its environment (`slipway env-exec`). The values
//! are in no container's `Env`: `docker inspect` does not show them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bollard::models::ContainerCreateBody;

use super::docker::Engine;
use super::process::{ProcessSpec, ENV_PATH};

/// Where the engine binary is mounted in a Dockerfile app's container.
pub const LOADER_PATH: &str = "/.slipway/slipway";

/// Where the engine lives in the run image.
const ENGINE_IN_IMAGE: &str = "/usr/local/bin/slipway";

/// The run image's engine binary, copied into `dir` once per image.
pub async fn engine_binary(engine: &Engine, run_image: &str, dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let id = engine
        .image_id(run_image)
        .await?
        .with_context(|| format!("the run image {run_image} is missing: run `make stack-image`"))?;
    let short: String = id.trim_start_matches("sha256:").chars().take(12).collect();
    let path = dir.join(format!("slipway-{short}"));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    let name = format!("slipway-loader-{}", crate::units::unique_id());
    let labels = ProcessSpec::base_labels("loader", "-");
    let body = ContainerCreateBody {
        image: Some(run_image.to_string()),
        cmd: Some(vec!["true".into()]),
        labels: Some(labels),
        ..Default::default()
    };
    engine.create(&name, body).await?;
    let tmp = dir.join(format!(".slipway-{short}-{}", crate::units::unique_id()));
    let copied = engine.download_file(&name, ENGINE_IN_IMAGE, &tmp).await;
    engine.remove_container(&name).await;
    copied.context("cannot copy the engine out of the run image")?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The spec runs `argv` (the image's entrypoint and command, or `cmd` in place of its command)
/// through the mounted engine, which loads ENV_PATH first.
pub async fn wrap(engine: &Engine, spec: &mut ProcessSpec, binary: &Path) -> Result<()> {
    let (entrypoint, image_cmd) = engine.image_command(&spec.image).await?;
    let cmd = spec.cmd.take().unwrap_or(image_cmd);
    spec.entrypoint = Some(vec![LOADER_PATH.into(), "env-exec".into(), ENV_PATH.into(), "--".into()]);
    spec.cmd = Some([entrypoint, cmd].concat());
    spec.binds.push(format!("{}:{LOADER_PATH}:ro", binary.display()));
    Ok(())
}
