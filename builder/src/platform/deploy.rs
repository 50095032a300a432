//! Deploys and rollbacks: a directory or tarball built (buildpacks in a container, or the
//! app's Dockerfile) into a release image, recorded as a release, and rolled out by the runner.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::containers::build::ContainerBuild;
use crate::containers::image::{BuildKind, ReleaseImage};
use crate::platform::app_json::AppJson;
use crate::platform::runner::Runner;
use crate::platform::settings::GlobalSettings;
use crate::platform::state::{DeployStatus, Release, ReleaseStatus, State};

/// What a deploy deploys.
pub enum Source<'a> {
    /// A directory or tarball to build, and the revision it is (when known).
    Tree(&'a Path, Option<String>),
    /// A prebuilt image in the engine (`git:from-image`).
    Image(&'a str),
}

/// `deploy APP DIR|TARBALL`, `git:from-image`: build (or take the image), record a release,
/// roll it out; recorded as a build either way.
pub async fn deploy(r: &mut Runner, app: &str, source: Source<'_>) -> Result<i64> {
    r.state.require_app(app)?;
    let _lock = r.lock(app)?;
    // A git push records its build itself (with the full log) and says which record is ours.
    let deploy_id = match std::env::var("SLIPWAY_DEPLOY_ID").ok().and_then(|i| i.parse().ok()) {
        Some(id) => id,
        None => r.state.start_deploy(app, &r.actor)?,
    };
    let result = match source {
        Source::Tree(dir, source_version) => deploy_locked(r, app, dir, source_version).await,
        Source::Image(image) => deploy_image(r, app, image).await,
    };
    let (status, version) = match &result {
        Ok(v) => (DeployStatus::Succeeded, Some(*v)),
        Err(_) => (DeployStatus::Failed, None),
    };
    let log = match &result {
        Ok(v) => format!("\n-----> deployed v{v}\n"),
        Err(e) => format!("\n !     {e:#}\n"),
    };
    r.state.finish_deploy(deploy_id, version, status, &log)?;
    result
}

async fn deploy_locked(r: &mut Runner, app: &str, source: &Path, source_version: Option<String>) -> Result<i64> {
    let unpacked;
    let dir: PathBuf = if source.is_file() {
        unpacked = tempfile::tempdir()?;
        let (file, dest) = (std::fs::File::open(source)?, unpacked.path().to_path_buf());
        let opts = crate::engine::slug::ImportOptions::default();
        tokio::task::spawn_blocking(move || crate::engine::slug::import_file(&file, &dest, &opts))
            .await?
            .with_context(|| format!("cannot unpack {}", source.display()))?;
        unpacked.path().to_path_buf()
    } else if source.is_dir() {
        source.canonicalize()?
    } else if std::fs::metadata(source).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied) {
        let user = crate::sys::user_name();
        bail!("cannot read {} as user {user} (slipway runs as the data dir's owner): permission denied; make it readable by {user}, or deploy from a directory {user} can read", source.display());
    } else {
        bail!("{} is neither a directory nor a tarball", source.display());
    };
    let version = r.state.next_version(app)?;
    let tag = format!("{}:v{version}", crate::containers::image::repository(app));
    let source_version = source_version.or_else(|| crate::engine::pipeline::git_revision(&dir));
    let app_json = crate::engine::fsutil::read_app_file(&dir, "app.json")?;
    let Manifest { manifest, config, defaults, quantities } = manifest(r, app, app_json.as_deref())?;
    // Who chooses the buildpacks: BUILDPACK_URL > buildpacks:set > .buildpacks > app.json > detection.
    let set = crate::platform::settings::AppSettings::buildpacks(&r.state, app)?;
    let buildpacks = if config.contains_key("BUILDPACK_URL") {
        Vec::new()
    } else if !set.is_empty() {
        set
    } else if crate::engine::fsutil::has_app_file(&dir, ".buildpacks") {
        Vec::new()
    } else {
        manifest.buildpack_urls()?
    };
    let (process_types, build, slug_digest) = if crate::containers::dockerfile::applies(&dir, &config)? {
        let b = crate::containers::dockerfile::DockerfileBuild {
            dir: &dir,
            app,
            tag: &tag,
            config: &config,
            build_args: false,
            source_version: source_version.as_deref(),
            ca_bundle: crate::containers::build::default_ca_bundle(),
        };
        crate::containers::dockerfile::build(&r.engine, &b).await?;
        let procfile = crate::engine::fsutil::read_app_file(&dir, "Procfile")?;
        (web_and_procfile_types(procfile.as_deref())?, BuildKind::Dockerfile, None)
    } else {
        let stack = crate::platform::settings::stack_of(&r.state, app)?;
        let slugs = r.state.data_dir.join("apps").join(app).join("slugs");
        std::fs::create_dir_all(&slugs)?;
        let slug = slugs.join(format!("v{version}.tgz"));
        let build = ContainerBuild {
            config: config.clone(),
            source_version: source_version.clone(),
            memory: Some(GlobalSettings::load(&r.state)?.build_memory_limit),
            buildpacks,
            image: stack.build_image(),
            ..ContainerBuild::new(dir.clone(), app, slug.clone())
        };
        let report = crate::containers::build::build(&r.engine, &build).await?;
        let metadata = report.result.metadata.context("the engine's result has no build metadata")?;
        let run_image = stack.run_image();
        let image =
            ReleaseImage { app, release: &format!("v{version}"), tag: &tag, metadata: &metadata, extra_labels: &[] };
        let made = crate::containers::image::from_slug(&r.engine, &slug, &run_image, &image).await;
        let _ = std::fs::remove_file(&slug); // the image holds it now
        made?;
        let names: Vec<String> = metadata.buildpacks.iter().map(|b| b.name.clone()).collect();
        (metadata.process_types, BuildKind::Buildpacks(names.join(",")), Some(report.slug_digest))
    };
    let release = Release {
        app: app.to_string(),
        version,
        image: tag,
        slug_digest,
        build,
        process_types,
        source_version,
        config,
        description: "Deploy".into(),
        app_json,
        created_at: 0,
        status: ReleaseStatus::Pending,
        pusher: Some(r.actor.clone()),
    };
    roll_out_new(r, release, &quantities, &defaults).await
}

/// `git:from-image APP IMAGE`: a prebuilt image as the next release; its Procfile and
/// app.json (in `/app` or its working directory) apply as a build's would.
async fn deploy_image(r: &mut Runner, app: &str, image: &str) -> Result<i64> {
    crate::containers::prebuilt::check_reference(image)?;
    let (procfile, app_json) = crate::containers::prebuilt::app_files(&r.engine, image).await?;
    let Manifest { config, defaults, quantities, .. } = manifest(r, app, app_json.as_deref())?;
    let process_types = web_and_procfile_types(procfile.as_deref())?;
    let version = r.state.next_version(app)?;
    let tag = format!("{}:v{version}", crate::containers::image::repository(app));
    crate::output::header(format!("Deploying the image {image} as {app} v{version}"));
    crate::containers::prebuilt::tag_release(&r.engine, image, &tag, app, &process_types).await?;
    let release = Release {
        app: app.to_string(),
        version,
        image: tag,
        slug_digest: None,
        build: BuildKind::Dockerfile,
        process_types,
        source_version: Some(format!("image:{image}")),
        config,
        description: format!("Deploy image {image}"),
        app_json,
        created_at: 0,
        status: ReleaseStatus::Pending,
        pusher: Some(r.actor.clone()),
    };
    roll_out_new(r, release, &quantities, &defaults).await
}

/// app.json's parts a deploy uses, and the config with its `env` defaults.
struct Manifest {
    manifest: AppJson,
    config: crate::engine::envdir::Vars,
    defaults: crate::engine::envdir::Vars,
    quantities: BTreeMap<String, i64>,
}

fn manifest(r: &Runner, app: &str, app_json: Option<&str>) -> Result<Manifest> {
    let manifest = AppJson::parse(app_json)?;
    let mut config = r.state.effective_config(app)?;
    let defaults = manifest.env_defaults(&config)?;
    config.extend(defaults.clone());
    let quantities = manifest.quantities()?;
    manifest.cron_tasks()?;
    Ok(Manifest { manifest, config, defaults, quantities })
}

/// An image's process types: its Procfile's, and `web` (the image's own command) always.
fn web_and_procfile_types(procfile: Option<&str>) -> Result<BTreeMap<String, String>> {
    let types = procfile.map(crate::engine::procfile::Procfile::parse).transpose()?.unwrap_or_default();
    let mut types: BTreeMap<String, String> = types.processes.into_iter().map(|p| (p.name, p.command)).collect();
    types.entry("web".into()).or_default();
    Ok(types)
}

/// Records a new release and rolls it out (the first one starts app.json's formation).
async fn roll_out_new(
    r: &mut Runner,
    release: Release,
    quantities: &BTreeMap<String, i64>,
    defaults: &crate::engine::envdir::Vars,
) -> Result<i64> {
    let app = release.app.clone();
    let app = app.as_str();
    let recorded = r.state.add_release(&release)?;
    // The first deploy starts app.json's formation.
    if r.state.current_release(app)?.is_none() && !quantities.is_empty() {
        let tx = r.state.transaction()?;
        State::set_formation(&tx, app, quantities)?;
        tx.commit()?;
    }
    r.rollout(app, recorded).await?;
    keep_env_defaults(r, app, defaults)?;
    Ok(recorded)
}

/// app.json's `env` defaults the deployed release has become the app's config (so a secret it
/// generated stays the same), once the release serves.
fn keep_env_defaults(r: &mut Runner, app: &str, defaults: &crate::engine::envdir::Vars) -> Result<()> {
    if !defaults.is_empty() {
        let tx = r.state.transaction()?;
        State::set_config(&tx, app, defaults)?;
        tx.commit()?;
        let keys: Vec<&str> = defaults.keys().map(String::as_str).collect();
        crate::output::header(format!("Set {} from app.json", keys.join(", ")));
    }
    Ok(())
}

pub async fn rollback(r: &mut Runner, app: &str, target: Option<&str>) -> Result<i64> {
    r.state.require_app(app)?;
    let _lock = r.lock(app)?;
    let releases = r.state.releases(app)?;
    let current = r.state.current_release(app)?.context("the app has no release to roll back from")?;
    let target = match target {
        Some(t) => {
            let v: i64 =
                t.trim_start_matches('v').parse().with_context(|| format!("{t:?} is not a release (e.g. v3)"))?;
            releases
                .iter()
                .find(|r| r.version == v)
                .cloned()
                .with_context(|| format!("app '{app}' has no release v{v}"))?
        }
        None => releases
            .iter()
            .find(|r| {
                r.version < current.version
                    && r.status == ReleaseStatus::Succeeded
                    && (r.image != current.image || r.config != current.config)
            })
            .cloned()
            .context("there is no earlier release to roll back to")?,
    };
    if !r.engine.image_exists(&target.image).await? {
        bail!("the image of v{} is gone (only the last releases are kept); roll back to a newer one", target.version);
    }
    let release =
        Release { description: format!("Rollback to v{}", target.version), pusher: Some(r.actor.clone()), ..target };
    let version = r.state.add_release(&release)?;
    r.rollout(app, version).await?;
    Ok(version)
}
