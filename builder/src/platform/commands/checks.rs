//! `checks:enable|disable|skip`: the deploy checks of an app.

use anyhow::Result;

use super::Platform;
use crate::output;
use crate::platform::settings::{AppSettings, ChecksMode};

pub fn set(p: &Platform, app: &str, mode: ChecksMode) -> Result<()> {
    AppSettings::set_checks(&p.app_state(app)?, app, mode)?;
    output::header(format!("Checks for {app}: {}", mode.as_str()));
    Ok(())
}
