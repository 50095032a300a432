//! `domains:*`: the host names an app answers at, besides `APP.GLOBAL_DOMAIN`.

use anyhow::{bail, Result};

use super::{Format, Platform};
use crate::output;
use crate::platform::names::validate_domain;
use crate::platform::settings::{Global, GlobalSettings};

/// `domains:add APP DOMAIN`
pub async fn add(p: &Platform, app: &str, domain: &str) -> Result<()> {
    let domain = &validate_domain(domain)?;
    let r = p.runner_for(app).await?;
    // Every app answers at APP.GLOBAL_DOMAIN: no app may take another's (or its own again).
    let global = GlobalSettings::load(&r.state)?.domain;
    if let Some(owner) = domain.strip_suffix(&format!(".{global}")) {
        if owner == app || r.state.app_exists(owner)? {
            bail!("{domain} is app '{owner}'s own address under the global domain; choose another domain");
        }
    }
    r.state.add_domain(app, domain)?;
    r.refresh_routes(app).await?;
    output::header(format!("{domain} now routes to {app}"));
    Ok(())
}

/// `domains:remove APP DOMAIN`
pub async fn remove(p: &Platform, app: &str, domain: &str) -> Result<()> {
    let domain = &domain.to_ascii_lowercase();
    let r = p.runner_for(app).await?;
    r.state.remove_domain(app, domain)?;
    r.refresh_routes(app).await?;
    output::header(format!("{domain} no longer routes to {app}"));
    Ok(())
}

/// `domains:report APP [--format json]`
pub fn report(p: &Platform, app: &str, format: Format) -> Result<()> {
    let state = p.app_state(app)?;
    let global = GlobalSettings::load(&state)?.domain;
    if format == Format::Json {
        let report =
            serde_json::json!({ "app": app, "global": format!("{app}.{global}"), "domains": state.domains(app)? });
        super::print_json(&report);
        return Ok(());
    }
    println!("=== {app} domains\n{app}.{global} (global)");
    for d in state.domains(app)? {
        println!("{d}");
    }
    Ok(())
}

/// `domains:set-global DOMAIN`
pub fn set_global(p: &Platform, domain: &str) -> Result<()> {
    let domain = &validate_domain(domain)?;
    GlobalSettings::set(&p.state()?, Global::Domain, domain)?;
    output::header(format!("Apps answer at APP.{domain} from their next deploy or restart"));
    Ok(())
}
