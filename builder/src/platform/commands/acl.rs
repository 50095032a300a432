//! `acl:*` (dokku-acl's names): which developer keys may use an app besides its owner.

use anyhow::{bail, Result};

use super::Platform;
use crate::output;

/// `acl:add APP KEY`
pub fn add(p: &Platform, app: &str, key: &str) -> Result<()> {
    let state = p.app_state(app)?;
    if !state.grant(app, key)? {
        bail!("key '{key}' already has access to app '{app}'");
    }
    output::header(format!("Key {key} may now use app {app}"));
    Ok(())
}

/// `acl:remove APP KEY`
pub fn remove(p: &Platform, app: &str, key: &str) -> Result<()> {
    let state = p.app_state(app)?;
    if !state.revoke(app, key)? {
        bail!("key '{key}' has no grant on app '{app}' (see `acl:list {app}`)");
    }
    output::header(format!("Key {key} no longer has access to app {app}"));
    Ok(())
}

/// `acl:list APP`
pub fn list(p: &Platform, app: &str) -> Result<()> {
    let state = p.app_state(app)?;
    println!("=== {app} access");
    println!("owner: {}", state.owner(app)?.unwrap_or_else(|| "(created on the host)".into()));
    for key in state.grants(app)? {
        println!("{key}");
    }
    Ok(())
}
