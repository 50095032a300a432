//! The Dokku-named commands (`apps:create`, `config:set`, `ps:scale`, ...), each a thin layer
//! over the state (`state.rs`) and the runner (`runner.rs`). Errors name the app and the next
//! step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::runner::Runner;
use crate::state::{Release, State};

/// `deploy APP DIR|TARBALL`: build, record a release, roll it out.
pub async fn deploy(r: &mut Runner, app: &str, source: &Path, source_version: Option<String>) -> Result<i64> {
    r.state.require_app(app)?;
    let _lock = r.lock(app)?;
    // A git push records its build itself (with the full log) and says which record is ours.
    let deploy_id = match std::env::var("SLIPWAY_DEPLOY_ID").ok().and_then(|i| i.parse().ok()) {
        Some(id) => id,
        None => r.state.start_deploy(app)?,
    };
    let result = deploy_locked(r, app, source, source_version).await;
    let (status, version) = match &result {
        Ok(v) => ("succeeded", Some(*v)),
        Err(_) => ("failed", None),
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
        let file = std::fs::File::open(source)?;
        crate::slug::import_file(&file, unpacked.path(), &crate::slug::ImportOptions::default())
            .with_context(|| format!("cannot unpack {}", source.display()))?;
        unpacked.path().to_path_buf()
    } else if source.is_dir() {
        source.canonicalize()?
    } else {
        bail!("{} is neither a directory nor a tarball", source.display());
    };
    let version = r.state.next_version(app)?;
    let tag = format!("{}:v{version}", crate::image::repository(app));
    let config = r.state.effective_config(app)?;
    let source_version = source_version.or_else(|| crate::pipeline::git_revision(&dir));
    let app_json = std::fs::read_to_string(dir.join("app.json")).ok();
    crate::checks::parse(app_json.as_deref())?;
    let (process_types, buildpack, slug_digest) = if crate::dockerfile::applies(&dir, &config)? {
        let b = crate::dockerfile::DockerfileBuild {
            dir: &dir,
            app,
            tag: &tag,
            config: &config,
            build_args: false,
            source_version: source_version.as_deref(),
        };
        crate::dockerfile::build(&r.engine, &b).await?;
        let types = crate::procfile::Procfile::read(&dir)?.unwrap_or_default();
        let mut types: BTreeMap<String, String> = types.processes.into_iter().map(|p| (p.name, p.command)).collect();
        types.entry("web".into()).or_default();
        (types, "Dockerfile".to_string(), None)
    } else {
        let slugs = r.state.data_dir.join("apps").join(app).join("slugs");
        std::fs::create_dir_all(&slugs)?;
        let slug = slugs.join(format!("v{version}.tgz"));
        let build = crate::container::ContainerBuild {
            config: config.clone(),
            source_version: source_version.clone(),
            ..crate::container::ContainerBuild::new(dir.clone(), app, slug.clone())
        };
        crate::container::build(&r.engine, &build).await?;
        let run_image = std::env::var("SLIPWAY_RUN_IMAGE").unwrap_or_else(|_| crate::stack::RUN_IMAGE.into());
        crate::image::from_slug(&r.engine, &slug, &run_image, app, &format!("v{version}"), &tag, &[]).await?;
        let inspection = crate::slug::inspect(&slug)?;
        let digest: String = Sha256::digest(std::fs::read(&slug)?).iter().map(|b| format!("{b:02x}")).collect();
        let _ = std::fs::remove_file(&slug); // the image holds it now
        let buildpack = inspection
            .metadata
            .map(|m| m.buildpacks.iter().map(|b| b.name.clone()).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        (inspection.process_types.into_iter().collect(), buildpack, Some(digest))
    };
    let release = Release {
        app: app.to_string(),
        version,
        image: tag,
        slug_digest,
        buildpack: Some(buildpack),
        process_types,
        source_version,
        config,
        description: "Deploy".into(),
        app_json,
        created_at: 0,
        status: String::new(),
    };
    let recorded = r.state.add_release(&release)?;
    r.rollout(app, recorded).await?;
    Ok(recorded)
}

pub fn parse_scale(items: &[String]) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((kind, n)) = item.split_once('=') else { bail!("expected TYPE=COUNT, found {item:?}") };
        let n: i64 = n
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .with_context(|| format!("{item:?}: the count must be a whole number"))?;
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("{kind:?} is not a process type name");
        }
        out.insert(kind.to_string(), n);
    }
    if out.is_empty() {
        bail!("nothing to scale: give TYPE=COUNT, e.g. web=2 worker=1");
    }
    Ok(out)
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
                    && r.status == "succeeded"
                    && (r.image != current.image || r.config != current.config)
            })
            .cloned()
            .context("there is no earlier release to roll back to")?,
    };
    if !r.engine.image_exists(&target.image).await? {
        bail!("the image of v{} is gone (only the last releases are kept); roll back to a newer one", target.version);
    }
    let release = Release { description: format!("Rollback to v{}", target.version), ..target };
    let version = r.state.add_release(&release)?;
    r.rollout(app, version).await?;
    Ok(version)
}

pub async fn logs(r: &Runner, app: &str, follow: bool, lines: Option<usize>, kind: Option<&str>) -> Result<()> {
    r.state.require_app(app)?;
    let containers: Vec<_> =
        r.containers(app).await?.into_iter().filter(|c| kind.is_none_or(|k| c.kind == k)).collect();
    if containers.is_empty() {
        bail!("app '{app}' has no running processes{}", kind.map(|k| format!(" of type {k}")).unwrap_or_default());
    }
    let mut streams = Vec::new();
    for c in &containers {
        let mut opts = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .timestamps(true);
        let tail = lines.map(|n| n.to_string()).unwrap_or_else(|| "100".into());
        opts = opts.tail(&tail);
        let prefix = format!("{app}[{}.{}]", c.kind, c.index);
        streams.push(r.engine.api.logs(&c.id, Some(opts.build())).map(move |chunk| (prefix.clone(), chunk)).boxed());
    }
    let mut all = futures_util::stream::select_all(streams);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some((prefix, chunk)) = all.next().await {
        let Ok(chunk) = chunk else { continue };
        for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
            let (ts, rest) = line.split_once(' ').unwrap_or(("", line));
            writeln!(out, "{ts} {prefix}: {rest}")?;
        }
        out.flush()?;
    }
    Ok(())
}

pub fn report_releases(state: &State, app: &str) -> Result<String> {
    state.require_app(app)?;
    let current = state.current_release(app)?.map(|r| r.version);
    let mut out = format!("=== {app} releases\n");
    for r in state.releases(app)? {
        let mark = if Some(r.version) == current { "*" } else { " " };
        out += &format!(
            "{mark}v{:<4} {:<10} {:<24} {:<12} {}\n",
            r.version,
            r.status,
            r.description,
            r.buildpack.unwrap_or_default(),
            r.source_version.as_deref().map(|s| &s[..s.len().min(10)]).unwrap_or("")
        );
    }
    Ok(out)
}

pub async fn ps_report(r: &Runner, app: &str) -> Result<String> {
    r.state.require_app(app)?;
    let mut out = format!("=== {app} processes\n");
    let current = r.state.current_release(app)?;
    out += &format!(
        "Release:   {}\n",
        current.as_ref().map(|c| format!("v{}", c.version)).unwrap_or_else(|| "none yet".into())
    );
    out += &format!(
        "Formation: {}\n",
        r.state.formation(app)?.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    );
    for c in r.containers(app).await? {
        let state = r
            .engine
            .api
            .inspect_container(&c.id, None)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        out += &format!(
            "{:<28} v{:<4} {:<10} {}\n",
            c.name,
            c.release,
            state,
            c.port.map(|p| format!("127.0.0.1:{p}")).unwrap_or_default()
        );
    }
    Ok(out)
}

pub async fn app_info(r: &Runner, app: &str) -> Result<String> {
    r.state.require_app(app)?;
    let current = r.state.current_release(app)?;
    let listen = &r.router.listen;
    let port = listen.rsplit(':').next().unwrap_or("80");
    let urls: Vec<String> = r
        .hosts(app)?
        .iter()
        .map(|h| if port == "80" { format!("http://{h}/") } else { format!("http://{h}:{port}/") })
        .collect();
    Ok(format!(
        "=== {app}\nRelease:   {}\nBuildpack: {}\nURLs:      {}\nRouter:    nginx on {listen}\n",
        current.as_ref().map(|c| format!("v{}", c.version)).unwrap_or_else(|| "none yet".into()),
        current.and_then(|c| c.buildpack).unwrap_or_default(),
        urls.join(" ")
    ))
}
