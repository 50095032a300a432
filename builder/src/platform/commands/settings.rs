//! `settings:*` (global settings), `resource:limit` and `storage:mount` (per app).

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Platform;
use crate::output;
use crate::platform::settings::{AppSettings, Global, GlobalSettings};

/// `settings:set KEY VALUE`
pub fn set(p: &Platform, key: &str, value: &str) -> Result<()> {
    GlobalSettings::set(&p.state()?, Global::settable(key)?, value)?;
    output::header(format!("{key} = {value}"));
    Ok(())
}

/// `settings:show`
pub fn show(p: &Platform) -> Result<()> {
    let state = p.state()?;
    for setting in Global::ALL {
        let value = state.setting("", setting.key())?;
        let shown = value.clone().unwrap_or_else(|| setting.default_value());
        println!("{:<20} {shown}{}", setting.key(), if value.is_none() { " (default)" } else { "" });
    }
    Ok(())
}

/// `resource:limit APP [--memory SIZE] [--cpu N] [--process-type TYPE]`
pub fn limit(p: &Platform, app: &str, memory: Option<&str>, cpu: Option<&str>, kind: Option<&str>) -> Result<()> {
    AppSettings::set_limits(&p.app_state(app)?, app, kind, memory, cpu)?;
    let kind = kind.unwrap_or("_all");
    output::header(format!("Limits for {app} ({kind}) apply from the next deploy or `ps:restart {app}`"));
    Ok(())
}

/// `storage:mount APP HOST_DIR:CONTAINER_DIR`
pub fn mount(p: &Platform, app: &str, mount: &str) -> Result<()> {
    let state = p.app_state(app)?;
    let Some((host, inside)) = mount.split_once(':') else { bail!("expected HOST_DIR:CONTAINER_DIR") };
    if !Path::new(host).is_absolute() || !Path::new(inside).is_absolute() {
        bail!("both directories must be absolute paths");
    }
    std::fs::create_dir_all(host).with_context(|| format!("cannot create {host}"))?;
    AppSettings::add_mount(&state, app, inside, mount)?;
    output::header(format!("{host} is mounted at {inside} from the next deploy or `ps:restart {app}`"));
    Ok(())
}
