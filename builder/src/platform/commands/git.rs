//! Deploys that are not a git push (Dokku's `git:from-image`, `git:from-archive`): a prebuilt
//! image in the engine, or an archive (.tar, .tar.gz, .zip) from a URL or standard input,
//! built as a push would be. Archives are checked before anything is unpacked: their size
//! (`max-push-size`), their number of entries, and every path (no absolute path, no `..`, no
//! link; tarballs go through the slug importer's checks).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Platform;
use crate::output;
use crate::platform::deploy::{self, Source};
use crate::platform::settings::GlobalSettings;

/// The most entries an archive may hold.
const MAX_ENTRIES: usize = 100_000;

/// `git:from-image APP IMAGE`
pub async fn from_image(p: &Platform, app: &str, image: &str) -> Result<()> {
    crate::containers::prebuilt::check_reference(image)?;
    let mut r = p.runner_for(app).await?;
    // slipway's own images (other apps' releases, services) are not a developer's to take:
    // judged by what the engine resolves the name to (any alias, digest or id), never the text.
    if is_developer(p) {
        let info = r.engine.api.inspect_image(image).await.ok();
        let labels = info.as_ref().and_then(|i| i.config.as_ref()).and_then(|c| c.labels.clone()).unwrap_or_default();
        let tags = info.and_then(|i| i.repo_tags).unwrap_or_default();
        let ours = labels.contains_key(crate::containers::docker::LABEL_APP)
            || labels.contains_key(crate::containers::docker::LABEL_ROLE)
            || tags.iter().any(|t| t.starts_with("slipway"));
        if ours {
            bail!("a developer key may not deploy slipway's own images ({image}); ask an admin");
        }
    }
    let v = deploy::deploy(&mut r, app, Source::Image(image)).await?;
    print!("{}", super::apps::app_info(&r, app).await?);
    output::header(format!("Deployed {app} v{v} from the image {image}"));
    Ok(())
}

/// `git:from-archive APP URL|-`
pub async fn from_archive(p: &Platform, app: &str, from: &str) -> Result<()> {
    let state = p.app_state(app)?;
    // The server fetching a URL reaches what the server reaches: an admin's call.
    if is_developer(p) && from != "-" {
        bail!("a developer key sends the archive on standard input: `ssh ... git:from-archive {app} - < app.tar.gz`");
    }
    let max = GlobalSettings::load(&state)?.max_push_size;
    let work = tempfile::Builder::new().prefix("slipway-archive-").tempdir()?;
    let file = work.path().join("archive");
    let (from_owned, dest) = (from.to_string(), file.clone());
    tokio::task::spawn_blocking(move || fetch(&from_owned, &dest, max)).await??;
    let mut magic = [0u8; 4];
    let _ = std::fs::File::open(&file)?.read(&mut magic)?;
    let source = if &magic == b"PK\x03\x04" {
        let dir = work.path().join("tree");
        let (zip, into) = (file.clone(), dir.clone());
        tokio::task::spawn_blocking(move || unzip(&zip, &into, max)).await??;
        dir
    } else {
        count_tar_entries(&file)?;
        file
    };
    let mut r = p.runner_for(app).await?;
    let v = deploy::deploy(&mut r, app, Source::Tree(&source, None)).await?;
    print!("{}", super::apps::app_info(&r, app).await?);
    output::header(format!("Deployed {app} v{v} from the archive"));
    Ok(())
}

fn is_developer(p: &Platform) -> bool {
    p.caller.as_ref().is_some_and(|c| c.role == crate::platform::access::Role::Developer)
}

/// Copies the archive (standard input for `-`, else an http(s) URL) into `dest`, at most `max` bytes.
fn fetch(from: &str, dest: &Path, max: u64) -> Result<()> {
    let too_big = || format!("the archive is larger than max-push-size ({}): nothing was deployed", output::size(max));
    let mut out = std::fs::File::create(dest)?;
    let copied = if from == "-" {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            bail!("git:from-archive APP - reads the archive from standard input: `< app.tar.gz`");
        }
        std::io::copy(&mut std::io::stdin().lock().take(max + 1), &mut out)?
    } else if from.starts_with("https://") || from.starts_with("http://") {
        let response = crate::net::http_client()?
            .get(from)
            .send()
            .map_err(|e| anyhow::anyhow!("could not download {from}: {}", output::error_chain(&e)))?;
        if !response.status().is_success() {
            bail!("could not download {from}: the server answered {}", response.status());
        }
        std::io::copy(&mut response.take(max + 1), &mut out).with_context(|| format!("could not download {from}"))?
    } else {
        bail!("{:?} is neither an http(s) URL nor - (standard input)", output::printable(from));
    };
    if copied > max {
        bail!(too_big());
    }
    if copied == 0 {
        bail!("the archive is empty: nothing was deployed");
    }
    out.flush()?;
    Ok(())
}

/// Refuses a tarball of more than [`MAX_ENTRIES`] entries (the importer checks the rest).
fn count_tar_entries(file: &Path) -> Result<()> {
    let file = std::fs::File::open(file)?;
    let mut archive = crate::engine::slug::open_archive(&file)?;
    let entries = archive.entries().context("the archive is not a .tar, .tar.gz or .zip")?;
    let mut n = 0;
    for entry in entries {
        entry.context("the archive is not a .tar, .tar.gz or .zip, or it is damaged")?;
        n += 1;
        if n > MAX_ENTRIES {
            bail!("the archive holds more than {MAX_ENTRIES} entries: nothing was deployed");
        }
    }
    if n == 0 {
        bail!("the archive is not a .tar, .tar.gz or .zip, or it is empty: nothing was deployed");
    }
    Ok(())
}

/// Unpacks a zip into `dir`: regular files and directories only, each path checked, at most
/// [`MAX_ENTRIES`] entries and `max` bytes unpacked. A single top-level directory is the app.
fn unzip(zip: &Path, dir: &Path, max: u64) -> Result<()> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip)?).context("the .zip is damaged")?;
    if archive.len() > MAX_ENTRIES {
        bail!("the archive holds more than {MAX_ENTRIES} entries: nothing was deployed");
    }
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i)?;
        let Some(path) = entry.enclosed_name() else {
            bail!(
                "the archive's entry {:?} leaves its directory: nothing was deployed",
                output::printable(entry.name())
            );
        };
        if entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
            bail!("the archive's entry {} is a link: nothing was deployed", path.display());
        }
        names.push(path);
    }
    // GitHub's and most tools' zips hold one directory with the app in it.
    let first: Vec<_> = names.iter().filter_map(|p| p.components().next()).collect();
    let single =
        first.first().filter(|c| first.iter().all(|x| x == *c) && names.iter().any(|p| p.components().count() > 1));
    let strip = single.map(|c| Path::new(c.as_os_str()).to_path_buf());
    std::fs::create_dir_all(dir)?;
    let mut unpacked = 0u64;
    for (i, name) in names.iter().enumerate() {
        let mut entry = archive.by_index(i)?;
        let rel = match &strip {
            Some(prefix) => name.strip_prefix(prefix).unwrap_or(name).to_path_buf(),
            None => name.clone(),
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dir.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(&target)?;
        unpacked += std::io::copy(&mut (&mut entry).take(max + 1 - unpacked.min(max)), &mut out)?;
        if unpacked > max {
            bail!("the archive unpacks to more than max-push-size ({}): nothing was deployed", output::size(max));
        }
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode & 0o755))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        file
    }

    #[test]
    fn zips_unpack_checked_and_a_single_top_directory_is_the_app() {
        let zip = zip_of(&[("app-main/Procfile", b"web: ./x"), ("app-main/src/a.py", b"print(1)")]);
        let dir = tempfile::tempdir().unwrap();
        unzip(zip.path(), &dir.path().join("t"), 1 << 20).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("t/Procfile")).unwrap(), "web: ./x");
        assert!(dir.path().join("t/src/a.py").is_file());
        let evil = zip_of(&[("../escape", b"x")]);
        let err = unzip(evil.path(), &dir.path().join("e"), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("leaves its directory"), "{err}");
        assert!(!dir.path().join("escape").exists());
        let big = zip_of(&[("a", &[0u8; 4096])]);
        assert!(unzip(big.path(), &dir.path().join("b"), 1000).unwrap_err().to_string().contains("more than"));
    }
}
