//! A stack's images, made from scratch (no registry needed): debootstrap its Debian release's
//! rootfs, import it, then build `stack-image/Dockerfile`'s `run` and `build` targets on it.
//!
//! Idempotent: the images are tagged with a hash of everything that goes into them (the
//! Dockerfile, package lists, dpkg config and the engine binary); when images with that hash
//! exist, nothing is rebuilt. The debootstrapped base is kept as its own image, so it is made
//! once per machine and stack. The engine is the last layer, so a new engine never re-runs apt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{Stack, BUILD_IMAGE, LABEL_HASH, LABEL_STACK, REPO, RUN_IMAGE};
use crate::containers::docker::{self, Engine, ImageBuild, TarStream};
use crate::output;
use crate::output::progress::Step;

pub const BASE_REPO: &str = "slipway/stack-base";
/// What the debootstrapped rootfs is emptied of before it is imported (no app reads it; the
/// images' dpkg config keeps later packages from adding it back). Part of the base's tag.
const TRIMMED: [&str; 6] = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt/archives",
    "var/lib/apt/lists",
];

const DOCKERFILE: &str = include_str!("../../../../stack-image/Dockerfile");
const BUILD_PACKAGES: &str = include_str!("../../../../stack-image/build-packages.txt");
const SLIM_CFG: &str = include_str!("../../../../stack-image/slim.dpkg.cfg");
const VENDOR_LIBS: &str = include_str!("../../../../stack-image/vendor-libs");

/// npm for both images, from its official tarball, pinned by hash (npm 10 supports both
/// stacks' Node.js, 18 and 20).
const NPM_VERSION: &str = "10.9.2";
const NPM_SHA256: &str = "5cd1e5ab971ea6333f910bc2d50700167c5ef4e66da279b2a3efc874c6b116e4";

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The engine put into the images (a static build, or this binary).
    pub engine_binary: PathBuf,
    pub mirror: String,
    /// Rebuild even when images with the same hash exist.
    pub force: bool,
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Makes `stack`'s images when they are not up to date, and tags them `slipway/stack:SUITE` and
/// `slipway/stack:SUITE-build` (the default stack's also `slipway/stack:run` and `:build`).
pub async fn build(engine: &Engine, opts: &StackOptions, stack: &Stack) -> Result<()> {
    let binary = std::fs::read(&opts.engine_binary)
        .with_context(|| format!("cannot read the engine binary {}", opts.engine_binary.display()))?;
    let suite = stack.suite;
    let trimmed = TRIMMED.join(" ");
    let base_tag =
        format!("{suite}-{}", short_hash(&[suite.as_bytes(), opts.mirror.as_bytes(), b"minbase", trimmed.as_bytes()]));
    let base = format!("{BASE_REPO}:{base_tag}");
    let stacks_table = super::runtimes_table();
    let hash = short_hash(&[
        base.as_bytes(),
        stack.name.as_bytes(),
        stack.heroku.as_bytes(),
        DOCKERFILE.as_bytes(),
        stack.run_packages.as_bytes(),
        stacks_table.as_bytes(),
        BUILD_PACKAGES.as_bytes(),
        SLIM_CFG.as_bytes(),
        VENDOR_LIBS.as_bytes(),
        NPM_SHA256.as_bytes(),
        &binary,
    ]);
    let (run_tag, build_tag) = (format!("{suite}-run-{hash}"), format!("{suite}-build-{hash}"));
    let up_to_date = !opts.force
        && engine.image_exists(&format!("{REPO}:{run_tag}")).await?
        && engine.image_exists(&format!("{REPO}:{build_tag}")).await?;
    if up_to_date {
        output::header(format!("Stack {} images are up to date ({hash})", stack.name));
    } else {
        if !engine.image_exists(&base).await? {
            import_base(engine, opts, suite, &base_tag).await?;
        }
        let npm = tokio::task::spawn_blocking(fetch_npm).await??;
        let context = docker::tar_of(&[
            ("npm.tgz", &npm, 0o644),
            ("Dockerfile", DOCKERFILE.as_bytes(), 0o644),
            ("run-packages.txt", stack.run_packages.as_bytes(), 0o644),
            ("stacks", stacks_table.as_bytes(), 0o644),
            ("build-packages.txt", BUILD_PACKAGES.as_bytes(), 0o644),
            ("slim.dpkg.cfg", SLIM_CFG.as_bytes(), 0o644),
            ("vendor-libs", VENDOR_LIBS.as_bytes(), 0o755),
            ("slipway", &binary, 0o755),
        ])?;
        let args = HashMap::from([
            ("BASE".to_string(), base.clone()),
            ("STACK".to_string(), stack.name.to_string()),
            ("HEROKU_STACK".to_string(), stack.heroku.to_string()),
        ]);
        let labels = HashMap::from([
            (LABEL_STACK.to_string(), stack.name.to_string()),
            (LABEL_HASH.to_string(), hash.clone()),
            (docker::LABEL_MANAGED.to_string(), "true".to_string()),
        ]);
        for (target, tag) in [("run", &run_tag), ("build", &build_tag)] {
            let step = Step::start(format!("Building the {} {target} image", stack.name));
            let image = ImageBuild {
                dockerfile: "Dockerfile",
                tag: &format!("{REPO}:{tag}"),
                target: Some(target),
                args: args.clone(),
                labels: labels.clone(),
            };
            engine
                .build(TarStream::from_bytes(context.clone()), &image, |l| step.line(l))
                .await
                .with_context(|| format!("building the {target} stack image failed"))?;
            step.done(format!("Built {REPO}:{tag}"));
        }
    }
    let (run_image, build_image) = (stack.run_image(), stack.build_image());
    let mut names = vec![(run_tag, run_image.clone()), (build_tag, build_image.clone())];
    if stack.is_default() {
        names.extend([(names[0].0.clone(), RUN_IMAGE.to_string()), (names[1].0.clone(), BUILD_IMAGE.to_string())]);
    }
    for (tag, name) in &names {
        let (repo, alias) = name.split_once(':').expect("image names have a tag");
        engine.tag(&format!("{REPO}:{tag}"), repo, alias).await?;
    }
    // Older images of this stack would otherwise pile up (Dokku's most common complaint is a
    // full disk). Only the stack's own images: release images inherit these labels from the run
    // image. Untagged old releases go first, as they would keep their old run image alive.
    engine.remove_dangling(None).await?;
    for (id, tags, labels) in engine.images_with_label(LABEL_HASH).await? {
        let is_stack = tags.iter().any(|t| t.starts_with(&format!("{REPO}:")));
        let this_stack = labels.get(LABEL_STACK).map(String::as_str) == Some(stack.name);
        if is_stack && this_stack && labels.get(LABEL_HASH) != Some(&hash) && engine.remove_image_quietly(&id).await {
            output::detail(format!("Removed the old stack image {}", tags.join(", ")));
        }
    }
    // Bases made with older inputs go too, unless an image still builds on them.
    for (id, tags) in engine.images_named(&format!("{BASE_REPO}:{suite}-*")).await? {
        if !tags.contains(&base) && engine.remove_image_quietly(&id).await {
            output::detail(format!("Removed the old stack base {}", tags.join(", ")));
        }
    }
    for image in [&run_image, &build_image] {
        let size = engine.image_size(image).await?;
        output::header(format!("{image:<28} {:>9} (stack {}, {hash})", output::size(size), stack.name));
    }
    Ok(())
}

/// debootstrap a minimal rootfs, trim what no app reads, and import it.
async fn import_base(engine: &Engine, opts: &StackOptions, suite: &str, tag: &str) -> Result<()> {
    if crate::sys::which("debootstrap").is_none() {
        bail!("debootstrap is not installed: apt-get install debootstrap (make deps does it)");
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!("making the stack's base rootfs needs root (debootstrap): run `sudo slipway stack build`");
    }
    let work = tempfile::Builder::new().prefix("slipway-rootfs-").tempdir_in("/var/tmp")?;
    let rootfs = work.path().join("rootfs");
    let log_path = work.path().join("debootstrap.log");
    let step = Step::start(format!("Bootstrapping Debian {suite} from {}", opts.mirror));
    let log = std::fs::File::create(&log_path)?;
    let status = tokio::process::Command::new("debootstrap")
        .args(["--variant=minbase", suite])
        .arg(&rootfs)
        .arg(&opts.mirror)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await
        .context("cannot run debootstrap")?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        for l in tail.iter().rev() {
            step.line(l);
        }
        bail!("debootstrap failed ({}); its log is above", crate::engine::exec::describe(status));
    }
    // Translations go; locale.alias stays (as slim.dpkg.cfg keeps it for later packages).
    let alias = std::fs::read(rootfs.join("usr/share/locale/locale.alias")).ok();
    for dir in TRIMMED {
        trim_dir(&rootfs.join(dir));
    }
    if let Some(alias) = alias {
        std::fs::write(rootfs.join("usr/share/locale/locale.alias"), alias)?;
    }
    step.done("Bootstrapped the base");

    let step = Step::start(format!("Importing the base rootfs as {BASE_REPO}:{tag}"));
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "-cf", "-", "."])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot run tar")?;
    let stdout = tar.stdout.take().expect("piped");
    engine.import(tokio_util::io::ReaderStream::new(stdout), BASE_REPO, tag).await?;
    let status = tar.wait().await?;
    if !status.success() {
        bail!("tar of the rootfs failed ({})", crate::engine::exec::describe(status));
    }
    step.done("Imported the base");
    Ok(())
}

/// The npm tarball, downloaded once (through the host's CA bundle) and checked.
fn fetch_npm() -> Result<Vec<u8>> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("slipway");
    let path = cache.join(format!("npm-{NPM_VERSION}.tgz"));
    let sha = |bytes: &[u8]| Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>();
    if let Ok(bytes) = std::fs::read(&path) {
        if sha(&bytes) == NPM_SHA256 {
            return Ok(bytes);
        }
    }
    let url = format!("https://registry.npmjs.org/npm/-/npm-{NPM_VERSION}.tgz");
    let response = crate::net::http_client()?
        .get(&url)
        .send()
        .map_err(|e| anyhow::anyhow!("could not download {url}: {}", crate::output::error_chain(&e)))?;
    if !response.status().is_success() {
        bail!("could not download {url}: the server answered {}", response.status());
    }
    let bytes = response.bytes().with_context(|| format!("could not download {url}"))?.to_vec();
    if sha(&bytes) != NPM_SHA256 {
        bail!("{url} does not have the expected sha256 {NPM_SHA256}; refusing it");
    }
    std::fs::create_dir_all(&cache)?;
    std::fs::write(&path, &bytes)?;
    Ok(bytes)
}

/// Empties a directory (keeping it).
fn trim_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() && !p.is_symlink() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
    }
}
