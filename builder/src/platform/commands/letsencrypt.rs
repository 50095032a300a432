//! `letsencrypt:*` (dokku-letsencrypt's): certificates from Let's Encrypt (or another ACME
//! server), renewed by the daemon's scheduler (see [`crate::platform::letsencrypt`]).

use anyhow::{bail, Result};

use super::{Platform, GLOBAL};
use crate::output;
use crate::platform::certs;
use crate::platform::cron::schedule::format_utc;
use crate::platform::letsencrypt::{self as le, Property};

/// `letsencrypt:set --global|APP KEY VALUE`
pub fn set(p: &Platform, app: &str, key: &str, value: &str) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    let stored = le::set(&state, scope, Property::named(key)?, value)?;
    let whose = if scope.is_empty() { "every app".to_string() } else { app.to_string() };
    output::header(format!("Set letsencrypt {key} to {stored} for {whose}"));
    Ok(())
}

/// `letsencrypt:enable APP`: a certificate now, and renewals from now on.
pub async fn enable(p: &Platform, app: &str) -> Result<()> {
    let r = p.runner_for(app).await?;
    let _lock = r.lock(app)?;
    let config = le::config(&r.state, app)?;
    output::header(format!("Requesting a certificate for {} from {}", r.hosts(app)?.join(", "), config.server));
    let info = le::obtain(&r, app).await?;
    le::set_enabled(&r.state, app, true)?;
    output::header(format!(
        "{app} is served over HTTPS on {} with its Let's Encrypt certificate (expires {}); it is renewed {} days before",
        r.router.https_listen,
        format_utc(info.not_after),
        config.renew_within_days
    ));
    Ok(())
}

/// `letsencrypt:disable APP`: no more renewals; the certificate goes, HTTP only.
pub async fn disable(p: &Platform, app: &str) -> Result<()> {
    let r = p.runner_for(app).await?;
    let _lock = r.lock(app)?;
    if !le::is_enabled(&r.state, app)? {
        bail!("Let's Encrypt is not enabled for {app}");
    }
    let stored = certs::stored(&p.data_dir, app)?;
    certs::remove(&p.data_dir, app)?;
    if let Err(e) = r.refresh_routes(app).await {
        if let Some((chain, key)) = stored {
            certs::store(&p.data_dir, app, &chain, &key)?;
        }
        return Err(e.context("the router did not take the change; nothing was disabled"));
    }
    le::set_enabled(&r.state, app, false)?;
    output::header(format!("Disabled Let's Encrypt for {app}: it is served over HTTP only"));
    Ok(())
}

/// `letsencrypt:list`: each app with it enabled, its names, expiry, last renewal and last error.
pub fn list(p: &Platform) -> Result<()> {
    let state = p.state()?;
    println!("{:<20} {:<40} {:<24} {:<24} LAST ERROR", "APP", "DOMAINS", "EXPIRES", "LAST RENEWAL");
    for app in le::enabled_apps(&state)? {
        let info = certs::info(&p.data_dir, &app).ok().flatten();
        let names = info.as_ref().map(|i| i.names.join(",")).unwrap_or_else(|| "-".into());
        let expires = info.as_ref().map(|i| format_utc(i.not_after)).unwrap_or_else(|| "-".into());
        let (last, error) = le::history(&state, &app)?;
        let last = last.map(format_utc).unwrap_or_else(|| "-".into());
        let error = error.map(|e| output::printable(&e)).unwrap_or_else(|| "-".into());
        println!("{app:<20} {names:<40} {expires:<24} {last:<24} {error}");
    }
    Ok(())
}

/// `letsencrypt:auto-renew [APP]`: renews the certificates (of APP, or of every app with Let's
/// Encrypt) that expire within `renew-within` days; each failure is recorded and reported, and
/// makes the exit status 1.
pub async fn auto_renew(p: &Platform, app: Option<&str>) -> Result<i32> {
    let state = p.state()?;
    let apps = match app {
        Some(app) if app != GLOBAL => {
            state.require_app(app)?;
            if !le::is_enabled(&state, app)? {
                bail!("Let's Encrypt is not enabled for {app}: letsencrypt:enable {app} first");
            }
            vec![app.to_string()]
        }
        _ => le::enabled_apps(&state)?,
    };
    let mut failed = 0;
    for app in apps {
        if !le::due(&state, &app)? {
            output::detail(format!("{app}: its certificate is not due for renewal"));
            continue;
        }
        let r = p.runner_for(&app).await?;
        let _lock = r.lock(&app)?;
        output::header(format!("Renewing the certificate of {app}"));
        match le::obtain(&r, &app).await {
            Ok(info) => output::header(format!("Renewed {app}: expires {}", format_utc(info.not_after))),
            Err(e) => {
                failed += 1;
                output::warn(format!("cannot renew the certificate of {app}: {e:#}"));
            }
        }
    }
    Ok(i32::from(failed > 0))
}
