//! Slugs: a gzip tar of the compiled app directory (SPEC section 1).
//!
//! Format: entries relative to the app root (herokuish's layout; Heroku's `./app/` nesting is
//! accepted on import), sorted by name so the same tree gives the same bytes, owned by the app
//! user (32767), mtimes kept (clamped to `SOURCE_DATE_EPOCH` when set). The top-level `.git` is
//! left out; nested `.git` directories (git dependencies) are kept. The gzip stream is a series
//! of independently compressed members made in parallel (libdeflate, level 6): any gzip reader
//! reads it, and it keeps up with `tar | pigz`.
//!
//! Import is two passes: the first reads every entry and refuses the archive (before anything
//! is written) on absolute paths, `..`, links resolving outside the app, entries behind a link,
//! device files, or more than the unpacked-size limit; the second extracts.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};

use crate::engine::user;
use crate::output;

mod import;
mod inspect;

pub use import::{import_file, open_archive, ImportOptions};
pub use inspect::{export, inspect, open_input};

/// Heroku warns above this compressed size.
pub const WARN_SIZE: u64 = 300 * 1000 * 1000;
/// Refused above this compressed size unless configured otherwise (Heroku's current limit).
pub const DEFAULT_MAX_SIZE: u64 = 1000 * 1000 * 1000;
/// Refused on import above this many unpacked bytes.
pub const DEFAULT_MAX_UNPACKED: u64 = 8 * 1000 * 1000 * 1000;
/// Where the app lives at run time: absolute links below it point inside the app.
pub const RUNTIME_APP_PATH: &str = "/app";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateStats {
    pub compressed: u64,
    pub unpacked: u64,
    pub entries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SlugError {
    #[error("the slug is larger than the {} limit; remove files with .slugignore, or raise the limit with --max-size / SLIPWAY_SLUG_MAX_SIZE", output::size(*.limit))]
    TooLarge { limit: u64 },
    #[error("refusing slug: entry {entry:?} {reason}; nothing was extracted")]
    Hostile { entry: String, reason: String },
    #[error("refusing slug: it unpacks to more than {}; raise the limit with --max-unpacked", output::size(*.limit))]
    UnpackedTooLarge { limit: u64 },
}

/// Counts bytes written and fails once `limit` is passed.
struct LimitedWriter<W> {
    inner: W,
    written: Arc<AtomicU64>,
    limit: u64,
}

impl<W: Write> Write for LimitedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let total = self.written.fetch_add(buf.len() as u64, Ordering::Relaxed) + buf.len() as u64;
        if total > self.limit {
            return Err(std::io::Error::other("slug size limit reached"));
        }
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
}

/// Writes the slug of `app_dir` to `out` (atomically: a partial slug never stays behind).
pub fn generate(app_dir: &Path, out: &Path, max_size: u64) -> Result<GenerateStats> {
    if !app_dir.is_dir() {
        bail!("app directory {} does not exist", app_dir.display());
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".slug-")
        .tempfile_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let file = tmp.reopen()?;
    let stats = write_slug(app_dir, file, max_size)?;
    tmp.persist(out).with_context(|| format!("cannot write {}", out.display()))?;
    if stats.compressed > WARN_SIZE {
        output::warn(format!(
            "Warning: your slug is {} (above 300 MB), which makes deploys and restarts slow.\nUse .slugignore to leave out files the app does not need at run time.",
            output::size(stats.compressed)
        ));
    }
    Ok(stats)
}

/// Streams the slug of `app_dir` into `w`.
pub fn write_slug<W: Write + Send + 'static>(app_dir: &Path, w: W, max_size: u64) -> Result<GenerateStats> {
    use gzp::{deflate::Mgzip, par::compress::ParCompressBuilder, ZWriter};
    let written = Arc::new(AtomicU64::new(0));
    let limited = LimitedWriter { inner: w, written: written.clone(), limit: max_size };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(1);
    let mut gz = ParCompressBuilder::<Mgzip>::new()
        .num_threads(threads)
        .map_err(|e| anyhow!("cannot start compression: {e}"))?
        .compression_level(gzp::Compression::new(6))
        .buffer_size(1 << 20)
        .map_err(|e| anyhow!("cannot start compression: {e}"))?
        .from_writer(limited);
    let too_large = |written: &AtomicU64| written.load(Ordering::Relaxed) > max_size;
    let result = (|| {
        let mut builder = tar::Builder::new(&mut gz as &mut dyn Write);
        let stats = append_tree(&mut builder, app_dir, Path::new(""))?;
        builder.finish()?;
        Ok::<_, anyhow::Error>(stats)
    })();
    let finished = gz.finish();
    if too_large(&written) {
        return Err(SlugError::TooLarge { limit: max_size }.into());
    }
    let (unpacked, entries) = result?;
    finished.map_err(|e| anyhow!("cannot write the slug: {e}"))?;
    Ok(GenerateStats { compressed: written.load(Ordering::Relaxed), unpacked, entries })
}

/// Writes `app_dir` as a tar (sorted, owned by the app user, top-level `.git` left out) under
/// `prefix`; returns the unpacked bytes and entry count. Also used to upload sources.
pub fn append_tree<W: Write>(builder: &mut tar::Builder<W>, app_dir: &Path, prefix: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let clamp = source_date_epoch();
    let (mut unpacked, mut entries) = (0u64, 0u64);
    let walker = walkdir::WalkDir::new(app_dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"));
    for entry in walker {
        let entry = entry.with_context(|| format!("cannot read {}", app_dir.display()))?;
        let rel = prefix.join(entry.path().strip_prefix(app_dir).expect("under the app dir"));
        let rel = rel.as_path();
        let meta = entry.metadata()?;
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(user::DEFAULT_ID as u64);
        header.set_gid(user::DEFAULT_ID as u64);
        header.set_username(user::DEFAULT_NAME)?;
        header.set_groupname(user::DEFAULT_NAME)?;
        let mtime = meta.mtime().max(0) as u64;
        header.set_mtime(clamp.map_or(mtime, |c| mtime.min(c)));
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, rel, std::io::empty())?;
        } else if ft.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            let target = std::fs::read_link(entry.path())?;
            builder.append_link(&mut header, rel, target)?;
        } else if ft.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file =
                std::fs::File::open(entry.path()).with_context(|| format!("cannot read {}", entry.path().display()))?;
            builder.append_data(&mut header, rel, file)?;
            unpacked += meta.len();
        } else {
            output::warn(format!("Leaving {} out of the slug: not a file, directory or link", rel.display()));
            continue;
        }
        entries += 1;
    }
    Ok((unpacked, entries))
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pipeline::METADATA_PATH;
    use std::os::unix::fs::PermissionsExt;

    fn sample_app() -> tempfile::TempDir {
        let app = tempfile::tempdir().unwrap();
        let p = app.path();
        std::fs::create_dir_all(p.join(".git/objects")).unwrap();
        std::fs::write(p.join(".git/HEAD"), "ref: refs/heads/main").unwrap();
        std::fs::create_dir_all(p.join("vendor/dep/.git")).unwrap();
        std::fs::write(p.join("vendor/dep/.git/HEAD"), "abc").unwrap();
        std::fs::write(p.join("Procfile"), "web: ./run\n").unwrap();
        std::fs::write(p.join("run"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(p.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("run", p.join("run-link")).unwrap();
        std::os::unix::fs::symlink("/app/run", p.join("abs-link")).unwrap();
        std::fs::write(p.join("big.txt"), "slipway ".repeat(100_000)).unwrap();
        app
    }

    fn slug_bytes(app: &Path) -> Vec<u8> {
        let out = tempfile::tempdir().unwrap();
        generate(app, &out.path().join("s.tgz"), DEFAULT_MAX_SIZE).unwrap();
        std::fs::read(out.path().join("s.tgz")).unwrap()
    }

    fn import_bytes(bytes: &[u8], dest: &Path, opts: &ImportOptions) -> Result<u64> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        import_file(&f, dest, opts)
    }

    #[test]
    fn round_trip_keeps_modes_links_and_nested_git_but_not_top_git() {
        let app = sample_app();
        let bytes = slug_bytes(app.path());
        let dest = tempfile::tempdir().unwrap();
        import_bytes(&bytes, dest.path(), &ImportOptions::default()).unwrap();
        let d = dest.path();
        assert!(!d.join(".git").exists(), "top-level .git must be left out");
        assert_eq!(std::fs::read_to_string(d.join("vendor/dep/.git/HEAD")).unwrap(), "abc");
        assert_eq!(std::fs::read_link(d.join("run-link")).unwrap(), Path::new("run"));
        assert_eq!(std::fs::read_link(d.join("abs-link")).unwrap(), Path::new("/app/run"));
        assert_eq!(std::fs::metadata(d.join("run")).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::read(d.join("big.txt")).unwrap(), std::fs::read(app.path().join("big.txt")).unwrap());
        // Ordinary tools read it too (several gzip members).
        let copy = dest.path().join("copy.tgz");
        std::fs::write(&copy, &bytes).unwrap();
        let out = std::process::Command::new("tar").arg("-tzf").arg(&copy).output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l == "Procfile"));
    }

    #[test]
    fn same_tree_same_bytes_in_sorted_order() {
        let app = sample_app();
        assert_eq!(slug_bytes(app.path()), slug_bytes(app.path()));
        let bytes = slug_bytes(app.path());
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&bytes[..]));
        let names: Vec<String> =
            archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn oversize_slug_is_refused_and_nothing_is_left() {
        let app = sample_app();
        let out = tempfile::tempdir().unwrap();
        let err = generate(app.path(), &out.path().join("s.tgz"), 100).unwrap_err();
        assert!(matches!(err.downcast_ref::<SlugError>(), Some(SlugError::TooLarge { .. })), "{err}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }

    /// Writes a tar entry with raw name/link bytes (tar-rs refuses to write hostile paths).
    fn raw(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) {
        let mut h = tar::Header::new_old();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            h.as_mut_bytes()[157..157 + l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    /// (name, type, link target) of one hand-made archive entry.
    type RawEntry<'a> = (&'a str, tar::EntryType, Option<&'a str>);

    fn archive(entries: &[RawEntry]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let data: &[u8] = if *kind == tar::EntryType::Regular { b"pwned" } else { b"" };
            raw(&mut b, name, *kind, *link, data);
        }
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn hostile_archives_are_refused_with_nothing_written() {
        use tar::EntryType::{Block, Char, Directory, Fifo, Link, Regular, Symlink};
        let cases: Vec<(&str, Vec<RawEntry>, &str)> = vec![
            ("traversal", vec![("ok.txt", Regular, None), ("../evil.txt", Regular, None)], "contains `..`"),
            ("nested traversal", vec![("a/../../evil.txt", Regular, None)], "contains `..`"),
            ("absolute", vec![("/tmp/evil.txt", Regular, None)], "absolute"),
            ("symlink escape", vec![("link", Symlink, Some("../../outside"))], "outside the app"),
            ("absolute symlink", vec![("passwd", Symlink, Some("/etc/passwd"))], "outside the app"),
            (
                "write through a link",
                vec![("d", Symlink, Some("..")), ("d/evil.txt", Regular, None)],
                "outside the app",
            ),
            ("link chain", vec![("l1", Symlink, Some(".")), ("l2", Symlink, Some("l1/.."))], "outside the app"),
            ("link loop", vec![("a", Symlink, Some("b")), ("b", Symlink, Some("a"))], "outside the app"),
            ("hard link out", vec![("h", Link, Some("../etc/passwd"))], "hard link"),
            ("char device", vec![("dev", Char, None)], "device file"),
            ("block device", vec![("dev", Block, None)], "device file"),
            ("fifo", vec![("pipe", Fifo, None)], "named pipe"),
            ("root as file", vec![("./", Regular, None)], "app root"),
            ("dir then escape", vec![("sub", Directory, None), ("sub/x", Symlink, Some("../../x"))], "outside"),
            // Found while writing the slug_entries fuzz target: `l/l2` is `l2` on disk, so its
            // `..` was checked from the wrong directory and `l2/evil.txt` landed beside the app.
            (
                "link placed through a link",
                vec![("l", Symlink, Some(".")), ("l/l2", Symlink, Some("..")), ("l2/evil.txt", Regular, None)],
                "behind a link",
            ),
            ("write through an /app link", vec![("x", Symlink, Some("/app")), ("x/evil.txt", Regular, None)], "behind"),
            ("dir over a link", vec![("x", Symlink, Some("/app/sub")), ("x", Directory, None)], "replaces a link"),
            (
                "hard link through a link",
                vec![("x", Symlink, Some("/app")), ("h", Link, Some("x/etc/passwd"))],
                "behind",
            ),
        ];
        for (what, entries, expected) in cases {
            let outer = tempfile::tempdir().unwrap();
            let dest = outer.path().join("app");
            let err = import_bytes(&archive(&entries), &dest, &ImportOptions::default()).unwrap_err();
            assert!(matches!(err.downcast_ref::<SlugError>(), Some(SlugError::Hostile { .. })), "{what}: {err}");
            assert!(err.to_string().contains(expected), "{what}: {err}");
            assert!(err.to_string().ends_with("nothing was extracted"), "{what}: {err}");
            assert!(!dest.exists(), "{what}: the target was created");
            assert_eq!(std::fs::read_dir(outer.path()).unwrap().count(), 0, "{what}: something was written");
        }
    }

    #[test]
    fn links_that_stay_inside_are_fine() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let bytes = archive(&[
            ("lib", Directory, None),
            ("lib/real.so", Regular, None),
            ("lib/alias.so", Symlink, Some("real.so")),
            ("up", Symlink, Some("lib/../lib")),
            ("venv-python", Symlink, Some("/app/lib/real.so")),
            ("hard", Link, Some("lib/real.so")),
        ]);
        let dest = tempfile::tempdir().unwrap();
        import_bytes(&bytes, dest.path(), &ImportOptions::default()).unwrap();
        assert_eq!(std::fs::read_to_string(dest.path().join("lib/alias.so")).unwrap(), "pwned");
        assert_eq!(std::fs::read_to_string(dest.path().join("hard")).unwrap(), "pwned");
    }

    #[test]
    fn oversize_archive_is_refused() {
        let bytes = archive(&[("a", tar::EntryType::Regular, None), ("b", tar::EntryType::Regular, None)]);
        let dest = tempfile::tempdir().unwrap();
        let err =
            import_bytes(&bytes, &dest.path().join("x"), &ImportOptions { max_unpacked: 6, owner: None }).unwrap_err();
        assert!(matches!(err.downcast_ref::<SlugError>(), Some(SlugError::UnpackedTooLarge { .. })), "{err}");
        assert!(!dest.path().join("x").exists());
    }

    #[test]
    fn heroku_nested_layout_is_unpacked_at_the_root() {
        use tar::EntryType::{Directory, Regular};
        let bytes =
            archive(&[("./app/", Directory, None), ("./app/Procfile", Regular, None), ("./app/app", Directory, None)]);
        let dest = tempfile::tempdir().unwrap();
        import_bytes(&bytes, dest.path(), &ImportOptions::default()).unwrap();
        assert!(dest.path().join("Procfile").is_file());
        assert!(dest.path().join("app").is_dir());
        assert!(!dest.path().join("app/Procfile").exists());
    }

    #[test]
    fn inspect_reads_procfile_and_metadata() {
        let app = sample_app();
        std::fs::create_dir(app.path().join(".slipway")).unwrap();
        std::fs::write(
            app.path().join(METADATA_PATH),
            r#"{"slipway_version":"0.1.0","stack":"s-1","buildpacks":[{"name":"Static","source":"static@1.0.0"}],"process_types":{"web":"./run"}}"#,
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let slug = out.path().join("s.tgz");
        generate(app.path(), &slug, DEFAULT_MAX_SIZE).unwrap();
        let i = inspect(&slug).unwrap();
        assert_eq!(i.process_types, vec![("web".to_string(), "./run".to_string())]);
        assert_eq!(i.metadata.as_ref().unwrap().stack, "s-1");
        let text = i.render();
        assert!(text.contains("Buildpack:     Static (static@1.0.0)"), "{text}");
    }
}
