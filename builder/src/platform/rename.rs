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
    use crate::platform::scheduler::{selected, Scheduler};
    if selected(&r.state, old)? == Scheduler::Swarm || r.running_on(old).await? == Scheduler::Swarm {
        bail!("'{old}' runs on swarm, whose services and secrets carry its name: `scheduler:set {old} selected docker-local` and `ps:restart {old}` first, then rename it");
    }
    let moves = per_app_paths(&r.state.data_dir, old, new);
    if let Some((_, taken)) = moves.iter().find(|(_, to)| to.symlink_metadata().is_ok()) {
        bail!("{} is left from an earlier app '{new}': remove it, or choose another name", taken.display());
    }
    let _old_lock = r.lock(old)?;
    let _new_lock = r.lock(new)?;
    // NEW's images first, OLD's rows untouched: nothing has changed if this fails.
    let images = relabel_images(r, old, new).await?;
    let moved = async {
        r.state.rename_app(old, new)?;
        for (version, _, tag) in &images {
            r.state.set_release_image(new, *version, tag)?;
        }
        for (from, to) in &moves {
            if from.symlink_metadata().is_ok() {
                std::fs::create_dir_all(to.parent().context("a parent")?)?;
                std::fs::rename(from, to).with_context(|| format!("cannot move {}", from.display()))?;
            }
        }
        r.new_config_release(new, &format!("Rename from {old}"), true).await
    }
    .await;
    if let Err(e) = moved {
        // Put everything back: OLD's containers and route never stopped.
        let _ = r.router.remove_app(new).await;
        let back = (|| -> Result<()> {
            for (from, to) in &moves {
                if to.symlink_metadata().is_ok() && from.symlink_metadata().is_err() {
                    std::fs::rename(to, from)?;
                }
            }
            if r.state.app_exists(new)? {
                for (version, image, _) in &images {
                    r.state.set_release_image(new, *version, image)?;
                }
                r.state.rename_app(new, old)?;
            }
            Ok(())
        })();
        remove_tags(r, images.iter().map(|(_, _, tag)| tag)).await;
        if let Err(undo) = back {
            return Err(e.context(format!("'{old}' was not renamed, and putting it back failed too: {undo:#}")));
        }
        return Err(e.context(format!("'{old}' was not renamed and keeps serving")));
    }
    // NEW serves: OLD's containers, route and image tags go.
    let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={old}")])]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    for c in r.engine.api.list_containers(Some(opts)).await.context("cannot list containers")? {
        if let Some(id) = c.id {
            r.engine.remove_container(&id).await;
        }
    }
    r.router.remove_app(old).await?;
    remove_tags(r, images.iter().map(|(_, image, _)| image)).await;
    output::header(format!("Renamed {old} to {new}"));
    Ok(())
}

/// Untags images (an image another still builds on stays, untagged).
async fn remove_tags<'a>(r: &Runner, tags: impl Iterator<Item = &'a String>) {
    for tag in tags {
        let _ = r.engine.api.remove_image(tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
    }
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

/// Each of OLD's release images still there gets NEW's twin: a label-only image on it, tagged
/// `slipway-app/NEW:vN`. Returns (version, OLD's image, NEW's tag); OLD's rows are untouched.
async fn relabel_images(r: &Runner, old: &str, new: &str) -> Result<Vec<(i64, String, String)>> {
    let mut made = Vec::new();
    for release in r.state.releases(old)? {
        if !r.engine.image_exists(&release.image).await? {
            continue;
        }
        let mut labels = r.engine.image_labels(&release.image).await?;
        labels.insert(LABEL_APP.to_string(), new.to_string());
        labels.entry(LABEL_ROLE.to_string()).or_insert_with(|| "release".into());
        let tag = format!("{}:v{}", crate::containers::image::repository(new), release.version);
        if let Err(e) = crate::containers::prebuilt::relabel(&r.engine, &release.image, &tag, labels).await {
            remove_tags(r, made.iter().map(|(_, _, t): &(i64, String, String)| t)).await;
            return Err(e);
        }
        made.push((release.version, release.image, tag));
    }
    Ok(made)
}
