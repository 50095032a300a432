//! Reading slugs: where one comes from (file, stdin, URL), sending one on, and what is in it.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::import::{components, open_archive};
use crate::engine::pipeline::{Metadata, METADATA_PATH};
use crate::engine::procfile::Procfile;
use crate::output;

/// Where a slug comes from: a file, standard input, or a URL.
pub fn open_input(location: Option<&str>) -> Result<std::fs::File> {
    match location {
        Some(l) if l.starts_with("http://") || l.starts_with("https://") => {
            let mut response = crate::net::http_client()?
                .get(l)
                .send()
                .map_err(|e| anyhow!("could not download slug {l}: {}", crate::output::error_chain(&e)))?;
            if !response.status().is_success() {
                bail!("could not download slug {l}: the server answered {}", response.status());
            }
            let mut tmp = tempfile::tempfile()?;
            response.copy_to(&mut tmp).map_err(|e| anyhow!("could not download slug {l}: {e}"))?;
            Ok(tmp)
        }
        Some("-") | None => {
            let mut tmp = tempfile::tempfile()?;
            std::io::copy(&mut std::io::stdin().lock(), &mut tmp)?;
            Ok(tmp)
        }
        Some(path) => std::fs::File::open(path).with_context(|| format!("cannot open slug {path}")),
    }
}

/// Sends a slug file to standard output, or PUTs it to a URL.
pub fn export(slug: &Path, url: Option<&str>) -> Result<()> {
    let file = std::fs::File::open(slug).with_context(|| format!("cannot open slug {}", slug.display()))?;
    match url {
        None | Some("-") => {
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut BufReader::new(file), &mut out)?;
            out.flush()?;
        }
        Some(url) => {
            let len = file.metadata()?.len();
            let response = crate::net::http_client()?
                .put(url)
                .header(reqwest::header::CONTENT_TYPE, "application/gzip")
                .body(reqwest::blocking::Body::sized(file, len))
                .send()
                .map_err(|e| anyhow!("could not upload slug to {url}: {}", crate::output::error_chain(&e)))?;
            if !response.status().is_success() {
                bail!("could not upload slug to {url}: the server answered {}", response.status());
            }
        }
    }
    Ok(())
}

/// What `slug inspect` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub compressed: u64,
    pub unpacked: u64,
    pub entries: u64,
    pub process_types: Vec<(String, String)>,
    pub metadata: Option<Metadata>,
}

pub fn inspect(slug: &Path) -> Result<Inspection> {
    let file = std::fs::File::open(slug).with_context(|| format!("cannot open slug {}", slug.display()))?;
    let compressed = file.metadata()?.len();
    let mut archive = open_archive(&file)?;
    let (mut unpacked, mut entries) = (0, 0);
    let (mut procfile, mut metadata) = (None, None);
    for entry in archive.entries().context("not a slug: not a tar archive")? {
        let mut entry = entry.context("the slug is corrupt")?;
        entries += 1;
        unpacked += entry.size();
        let path = entry.path()?.into_owned();
        let comps = components(&path).unwrap_or_default();
        // herokuish layout, or Heroku's ./app nesting
        let direct: PathBuf = comps.iter().collect();
        let nested: Option<PathBuf> = (comps.len() > 1 && comps[0] == "app").then(|| comps[1..].iter().collect());
        let is = |name: &str| direct == Path::new(name) || nested.as_deref() == Some(Path::new(name));
        if is("Procfile") || is(METADATA_PATH) {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            if is("Procfile") {
                procfile = Some(Procfile::parse(&text)?);
            } else {
                metadata = serde_json::from_str(&text).ok();
            }
        }
    }
    let process_types =
        procfile.map(|p| p.processes.into_iter().map(|p| (p.name, p.command)).collect()).unwrap_or_default();
    Ok(Inspection { compressed, unpacked, entries, process_types, metadata })
}

impl Inspection {
    pub fn render(&self) -> String {
        let mut out = format!(
            "Size:          {} compressed, {} unpacked, {} entries\n",
            output::size(self.compressed),
            output::size(self.unpacked),
            self.entries
        );
        match &self.metadata {
            Some(m) => {
                out += &format!("Stack:         {}\n", m.stack);
                let bps: Vec<String> = m.buildpacks.iter().map(|b| format!("{} ({})", b.name, b.source)).collect();
                out += &format!("Buildpack:     {}\n", bps.join(", "));
                if let Some(v) = &m.source_version {
                    out += &format!("Source:        {v}\n");
                }
            }
            None => out += "Stack:         unknown (not built by slipway)\nBuildpack:     unknown\n",
        }
        if self.process_types.is_empty() {
            out += "Process types: none (no Procfile)\n";
        } else {
            out += "Process types:\n";
            for (name, cmd) in &self.process_types {
                out += &format!("  {name}: {cmd}\n");
            }
        }
        out
    }
}
