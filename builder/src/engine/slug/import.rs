//! A slug's safe import: every entry checked before anything is written (no absolute paths,
//! no `..`, no links resolving outside the app, nothing behind a link, no devices, a size cap).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::{SlugError, DEFAULT_MAX_UNPACKED, RUNTIME_APP_PATH};
use crate::engine::user::AppUser;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub max_unpacked: u64,
    /// Give extracted entries to this user (inside the stack image, as root).
    pub owner: Option<AppUser>,
}

impl std::default::Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { max_unpacked: DEFAULT_MAX_UNPACKED, owner: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    Hardlink(Vec<OsString>),
}

pub fn open_archive(file: &std::fs::File) -> Result<tar::Archive<Box<dyn Read + '_>>> {
    let mut f = file;
    f.rewind()?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    f.rewind()?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f)))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    Ok(tar::Archive::new(reader))
}

/// The normal components of an archive path; `Err` names why it is refused.
pub(super) fn components(path: &Path) -> Result<Vec<OsString>, &'static str> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    Ok(out)
}

fn hostile(entry: &Path, reason: impl Into<String>) -> anyhow::Error {
    SlugError::Hostile { entry: entry.display().to_string(), reason: reason.into() }.into()
}

/// Follows `target` from the directory `start` through the archive's own symlinks; true when
/// it leaves the app root at any step, or loops.
fn escapes(links: &HashMap<Vec<OsString>, PathBuf>, start: Vec<OsString>, target: &Path) -> bool {
    let mut cur = start;
    let mut queue = VecDeque::new();
    if !enqueue(target, &mut cur, &mut queue) {
        return true;
    }
    let mut hops = 0;
    while let Some(part) = queue.pop_front() {
        if part == ".." {
            if cur.pop().is_none() {
                return true;
            }
            continue;
        }
        cur.push(part);
        if let Some(link) = links.get(&cur) {
            hops += 1;
            cur.pop();
            if hops > 40 || !enqueue(link, &mut cur, &mut queue) {
                return true;
            }
        }
    }
    false
}

/// Puts `target`'s components at the front of the walk. An absolute target restarts at the app
/// root when it lies below `/app` (where the app runs); anywhere else it is outside: false.
fn enqueue(target: &Path, cur: &mut Vec<OsString>, queue: &mut VecDeque<OsString>) -> bool {
    let rel = if target.is_absolute() {
        match target.strip_prefix(RUNTIME_APP_PATH) {
            Ok(rel) => {
                cur.clear();
                rel
            }
            Err(_) => return false,
        }
    } else {
        target
    };
    for c in rel.components().rev() {
        match c {
            Component::Normal(n) => queue.push_front(n.to_os_string()),
            Component::ParentDir => queue.push_front(OsString::from("..")),
            _ => {}
        }
    }
    true
}

struct Plan {
    entries: Vec<(Vec<OsString>, Kind)>,
}

fn plan(file: &std::fs::File, opts: &ImportOptions) -> Result<Plan> {
    let mut archive = open_archive(file)?;
    let mut raw: Vec<(PathBuf, Vec<OsString>, Kind)> = Vec::new();
    let mut unpacked = 0u64;
    for entry in archive.entries().context("the slug is not a tar archive")? {
        let entry = entry.context("the slug is corrupt")?;
        let path = entry.path().context("the slug has an entry with an unreadable name")?.into_owned();
        let comps = components(&path).map_err(|why| hostile(&path, why))?;
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => Kind::File,
            tar::EntryType::Symlink => {
                let target = entry.link_name()?.ok_or_else(|| hostile(&path, "is a link with no target"))?;
                Kind::Symlink(target.into_owned())
            }
            tar::EntryType::Link => {
                let target = entry.link_name()?.ok_or_else(|| hostile(&path, "is a link with no target"))?;
                Kind::Hardlink(components(&target).map_err(|why| hostile(&path, format!("is a hard link that {why}")))?)
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            tar::EntryType::Char | tar::EntryType::Block => return Err(hostile(&path, "is a device file")),
            tar::EntryType::Fifo => return Err(hostile(&path, "is a named pipe")),
            other => return Err(hostile(&path, format!("has an unsupported type {other:?}"))),
        };
        unpacked += entry.size();
        if unpacked > opts.max_unpacked {
            return Err(SlugError::UnpackedTooLarge { limit: opts.max_unpacked }.into());
        }
        if comps.is_empty() && kind != Kind::Dir {
            return Err(hostile(&path, "names the app root itself"));
        }
        raw.push((path, comps, kind));
    }
    // Heroku nests the app under ./app; herokuish does not.
    let strip_app = raw.iter().any(|(_, c, _)| c.len() > 1)
        && raw.iter().all(|(_, c, _)| c.is_empty() || c[0] == "app")
        && raw.iter().any(|(_, c, _)| c.len() == 1 && c[0] == "app");
    let strip = |mut c: Vec<OsString>| {
        if strip_app && !c.is_empty() {
            c.remove(0);
        }
        c
    };
    let mut entries = Vec::with_capacity(raw.len());
    for (path, comps, kind) in raw {
        let kind = match kind {
            Kind::Hardlink(t) => Kind::Hardlink(strip(t)),
            k => k,
        };
        entries.push((path, strip(comps), kind));
    }
    let links: HashMap<Vec<OsString>, PathBuf> = entries
        .iter()
        .filter_map(|(_, c, k)| match k {
            Kind::Symlink(t) => Some((c.clone(), t.clone())),
            _ => None,
        })
        .collect();
    // Nothing is written, replaced or hard-linked through a link of the slug (a tar of a real
    // tree has nothing behind a link): every path is then where it says, and a symlink's
    // target can be followed from its own directory.
    let through_link = |c: &[OsString]| (1..c.len()).any(|n| links.contains_key(&c[..n]));
    for (path, comps, kind) in &entries {
        if through_link(comps) {
            return Err(hostile(path, "lies behind a link"));
        }
        let parent = comps[..comps.len().saturating_sub(1)].to_vec();
        match kind {
            Kind::Symlink(target) if escapes(&links, parent, target) => {
                return Err(hostile(path, format!("is a link to {} (outside the app)", target.display())));
            }
            Kind::Symlink(_) => {}
            _ if links.contains_key(comps) => return Err(hostile(path, "replaces a link")),
            Kind::Hardlink(target) if through_link(target) => {
                return Err(hostile(path, "is a hard link to a file behind a link"));
            }
            _ => {}
        }
    }
    Ok(Plan { entries: entries.into_iter().map(|(_, c, k)| (c, k)).collect() })
}

/// Extracts the slug in `file` into `dest` (created if missing) after checking every entry.
pub fn import_file(file: &std::fs::File, dest: &Path, opts: &ImportOptions) -> Result<u64> {
    let plan = plan(file, opts)?;
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut archive = open_archive(file)?;
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    let mut planned = plan.entries.into_iter();
    let mut count = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if matches!(entry.header().entry_type(), tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            continue;
        }
        let (comps, kind) = planned.next().ok_or_else(|| anyhow!("the slug changed while it was read"))?;
        let target: PathBuf = dest.join(comps.iter().collect::<PathBuf>());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match kind {
            Kind::Dir => {
                std::fs::create_dir_all(&target)?;
                dirs.push((target.clone(), entry.header().mode().unwrap_or(0o755)));
            }
            Kind::File => {
                entry.unpack(&target).with_context(|| format!("cannot extract {}", target.display()))?;
            }
            Kind::Symlink(link) => {
                std::os::unix::fs::symlink(&link, &target)
                    .with_context(|| format!("cannot create link {}", target.display()))?;
            }
            Kind::Hardlink(source) => {
                std::fs::hard_link(dest.join(source.iter().collect::<PathBuf>()), &target)
                    .with_context(|| format!("cannot create link {}", target.display()))?;
            }
        }
        if let Some(u) = &opts.owner {
            u.chown(&target)?;
        }
        count += 1;
    }
    // Directory modes last, so a read-only directory does not block its own contents.
    use std::os::unix::fs::PermissionsExt;
    for (dir, mode) in dirs.into_iter().rev() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    Ok(count)
}
