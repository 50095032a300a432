//! `apps:rename OLD NEW` (Dokku's): everything of OLD becomes NEW's: its state (config,
//! releases, scale, domains, settings, builds, grants, cron runs, links), its files (release
//! env dirs, certificate, ACME answers), its release images (re-labelled and re-tagged, so
//! rollback and disk hygiene find them), then its processes: NEW's containers start, the
//! router serves NEW's hosts, and only then OLD's containers and route go. When the rollout
//! fails, the state and files are put back and OLD keeps serving.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};

use super::runner::Runner;
use crate::containers::docker::{LABEL_APP, LABEL_ROLE};
use crate::output;

/// Renames `old` to `new` (both checked by the caller's state), keeping it serving.
pub async fn rename(r: &mut Runner, old: &str, new: &str) -> Result<()> {
    r.state.require_app(old)?;
    crate::platform::names::validate_app_name(new)?;
    if r.state.app_exists(new)? {
        bail!("app '{new}' already exists: choose another name");
    }
    let _old_lock = r.lock(old)?;
    let _new_lock = r.lock(new)?;
    let moves = per_app_paths(&r.state.data_dir, old, new);
    r.state.rename_app(old, new)?;
    for (from, to) in &moves {
        if from.exists() {
            std::fs::create_dir_all(to.parent().context("a parent")?)?;
            std::fs::rename(from, to).with_context(|| format!("cannot move {}", from.display()))?;
        }
    }
    let moved = async {
        relabel_images(r, old, new).await?;
        r.new_config_release(new, &format!("Rename from {old}"), true).await
    }
    .await;
    if let Err(e) = moved {
        // Put it back: OLD's containers never stopped.
        r.state.rename_app(new, old)?;
        for (from, to) in &moves {
            if to.exists() {
                let _ = std::fs::rename(to, from);
            }
        }
        let _ = r.router.remove_app(new).await;
        return Err(e.context(format!("'{old}' was not renamed and keeps serving")));
    }
    // NEW serves: OLD's containers and route go.
    let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={old}")])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    for c in r.engine.api.list_containers(Some(opts)).await.context("cannot list containers")? {
        if let Some(id) = c.id {
            r.engine.remove_container(&id).await;
        }
    }
    r.router.remove_app(old).await?;
    output::header(format!("Renamed {old} to {new}"));
    Ok(())
}

/// The per-app files and directories that move with the name.
fn per_app_paths(data_dir: &std::path::Path, old: &str, new: &str) -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    vec![
        (data_dir.join("apps").join(old), data_dir.join("apps").join(new)),
        (super::certs::dir(data_dir, old), super::certs::dir(data_dir, new)),
        (super::router::challenges_path(data_dir, old), super::router::challenges_path(data_dir, new)),
        (data_dir.join("repos").join(format!("{old}.git")), data_dir.join("repos").join(format!("{new}.git"))),
    ]
}

/// Each release image still there becomes NEW's: a label-only image on it, tagged
/// `slipway-app/NEW:vN`; the old tag goes.
async fn relabel_images(r: &mut Runner, old: &str, new: &str) -> Result<()> {
    for release in r.state.releases(new)? {
        if !r.engine.image_exists(&release.image).await? {
            continue;
        }
        let mut labels = r.engine.image_labels(&release.image).await?;
        labels.insert(LABEL_APP.to_string(), new.to_string());
        labels.entry(LABEL_ROLE.to_string()).or_insert_with(|| "release".into());
        let tag = format!("{}:v{}", crate::containers::image::repository(new), release.version);
        crate::containers::prebuilt::relabel(&r.engine, &release.image, &tag, labels).await?;
        r.state.set_release_image(new, release.version, &tag)?;
        if release.image.starts_with(&format!("{}:", crate::containers::image::repository(old))) {
            let _ = r
                .engine
                .api
                .remove_image(&release.image, None::<bollard::query_parameters::RemoveImageOptions>, None)
                .await;
        }
    }
    Ok(())
}
