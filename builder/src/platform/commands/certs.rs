//! `certs:*` (Dokku's): an app's own TLS certificate. Once it has one, the router serves the
//! hosts it names over HTTPS and redirects their HTTP requests (see [`crate::platform::certs`]).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Platform;
use crate::output;
use crate::platform::certs::{self, CertInfo};
use crate::platform::cron::schedule::format_utc;

/// A tar of a certificate and key on standard input (Dokku's `certs:add APP < cert-key.tar`):
/// at most this big.
const MAX_TAR: u64 = 1024 * 1024;

/// `certs:add APP [CERT_FILE KEY_FILE]`: files on this host, or (over SSH, or with no files)
/// a tar on standard input holding a `.crt` (or `.pem`) and a `.key`.
pub async fn add(p: &Platform, app: &str, files: Option<(&Path, &Path)>) -> Result<()> {
    let r = p.runner_for(app).await?;
    let (chain, key) = match files {
        Some(_) if p.caller.is_some() => bail!("over SSH, send the certificate and key as a tar on standard input"),
        Some((chain, key)) => (read_file(chain)?, read_file(key)?),
        None => from_tar(std::io::stdin().lock())?,
    };
    let info = certs::inspect_for(&chain, &key, &r.hosts(app)?)?;
    certs::install(&r, app, &chain, &key).await?;
    let hosts = r.hosts(app)?;
    let served: Vec<&String> = info.covered(&hosts);
    output::header(format!(
        "Added a certificate for {app}: {} served over HTTPS on {} (expires {})",
        served.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", "),
        r.router.https_listen,
        format_utc(info.not_after)
    ));
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let text = crate::engine::fsutil::read_no_follow(path, certs::MAX_PEM)
        .with_context(|| format!("cannot read {} (a link is not followed)", path.display()))?
        .with_context(|| format!("there is no file {}", path.display()))?;
    Ok(text.into_bytes())
}

/// The certificate (`*.crt` or `*.pem`) and key (`*.key`) in a tar.
fn from_tar(input: impl Read) -> Result<(Vec<u8>, Vec<u8>)> {
    let (mut chain, mut key) = (None, None);
    let mut archive = tar::Archive::new(input.take(MAX_TAR));
    for entry in archive.entries().context("standard input is not a tar of a certificate and key")? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.by_ref().take(certs::MAX_PEM).read_to_end(&mut bytes)?;
        if name.ends_with(".key") {
            key = Some(bytes);
        } else if name.ends_with(".crt") || name.ends_with(".pem") {
            chain = Some(bytes);
        }
    }
    match (chain, key) {
        (Some(chain), Some(key)) => Ok((chain, key)),
        _ => bail!("the tar on standard input must hold a certificate (server.crt) and its key (server.key)"),
    }
}

/// `certs:remove APP`: back to HTTP only.
pub async fn remove(p: &Platform, app: &str) -> Result<()> {
    let r = p.runner_for(app).await?;
    let Some((chain, key)) = certs::stored(&p.data_dir, app)? else {
        bail!("app '{app}' has no certificate");
    };
    certs::remove(&p.data_dir, app)?;
    if let Err(e) = r.refresh_routes(app).await {
        certs::store(&p.data_dir, app, &chain, &key)?;
        return Err(e.context("the router did not take the change; the certificate stays"));
    }
    output::header(format!("Removed the certificate of {app}: it is served over HTTP only"));
    Ok(())
}

/// `certs:report APP`: subject, names, issuer, validity, and which hosts it serves.
pub fn report(p: &Platform, app: &str) -> Result<()> {
    let state = p.app_state(app)?;
    output::header(format!("{app} ssl information"));
    let Some(info) = certs::info(&p.data_dir, app)? else {
        println!("       {:<24}false", "Ssl enabled:");
        return Ok(());
    };
    let CertInfo { subject, names, issuer, not_before, not_after } = &info;
    let global = crate::platform::settings::GlobalSettings::load(&state)?.domain;
    let mut hosts = vec![format!("{app}.{global}")];
    hosts.extend(state.domains(app)?);
    let served: Vec<&str> = info.covered(&hosts).into_iter().map(|h| h.as_str()).collect();
    let days = (not_after - crate::units::now()).div_euclid(86400);
    for (label, value) in [
        ("Ssl enabled:", "true".to_string()),
        ("Ssl subject:", subject.clone()),
        ("Ssl hostnames:", names.join(" ")),
        ("Ssl issuer:", issuer.clone()),
        ("Ssl starts at:", format_utc(*not_before)),
        ("Ssl expires at:", format!("{} ({days} days left)", format_utc(*not_after))),
        ("Ssl served hosts:", served.join(" ")),
    ] {
        println!("       {label:<24}{}", output::printable(&value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tar_gives_its_certificate_and_key() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, text) in [("server.crt", "CERT"), ("server.key", "KEY"), ("README", "x")] {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, text.as_bytes()).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        assert_eq!(from_tar(&tar[..]).unwrap(), (b"CERT".to_vec(), b"KEY".to_vec()));
        assert!(from_tar(&b"not a tar"[..]).is_err());
    }
}
