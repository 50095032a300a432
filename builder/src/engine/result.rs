//! The build's result for the host: what the engine did, in a file the host takes out of the
//! build container with the slug (`buildpack build --result FILE`). The host decides from
//! this, never from the wording of the log, so messages can change freely.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::exec::ExecError;
use super::pipeline::{Metadata, NothingDetected};
use super::slug::SlugError;

/// Where the engine writes it in a build container.
pub const CONTAINER_PATH: &str = "/tmp/build-result.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BuildResult {
    /// The buildpacks whose bin/detect matched, as they named themselves, in order.
    pub detected: Vec<String>,
    /// Buildpacks chosen explicitly (BUILDPACK_URL, .buildpacks, --buildpack) whose bin/detect
    /// did not match; they ran anyway.
    pub undetected: Vec<String>,
    /// Each phase's name and milliseconds.
    pub phases: BTreeMap<String, u64>,
    /// What the release step recorded (buildpacks, process types, stack), once it ran.
    pub metadata: Option<Metadata>,
    /// The slug's compressed size, once written.
    pub slug_size: Option<u64>,
    /// Why the build failed.
    pub error: Option<BuildFailure>,
}

/// A failed build: the message the engine printed, and what kind of failure it was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildFailure {
    pub message: String,
    #[serde(flatten)]
    pub kind: FailureKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureKind {
    /// No default buildpack's bin/detect matched.
    NothingDetected { tried: Vec<String> },
    /// A buildpack script exited non-zero, or was killed by a signal.
    ScriptFailed { what: String, exit_code: Option<i32>, signal: Option<i32> },
    /// A buildpack script ran past the compile timeout.
    TimedOut { what: String, seconds: u64 },
    /// The build was stopped by SIGINT or SIGTERM.
    Interrupted,
    /// The slug was larger than the limit.
    SlugTooLarge { limit: u64 },
    /// Anything else (a bad Procfile, an unreachable buildpack, ...).
    Other,
}

impl BuildFailure {
    /// Classifies an engine error by its type (the message is the one users see).
    pub fn from_error(err: &anyhow::Error) -> BuildFailure {
        use std::os::unix::process::ExitStatusExt;
        let message = crate::output::error_chain(err.as_ref());
        let kind = if let Some(n) = err.downcast_ref::<NothingDetected>() {
            FailureKind::NothingDetected { tried: n.tried.split(", ").map(str::to_string).collect() }
        } else if let Some(e) = err.chain().find_map(|c| c.downcast_ref::<ExecError>()) {
            match e {
                ExecError::Failed { what, status } => {
                    FailureKind::ScriptFailed { what: what.clone(), exit_code: status.code(), signal: status.signal() }
                }
                ExecError::TimedOut { what, after } => {
                    FailureKind::TimedOut { what: what.clone(), seconds: after.as_secs() }
                }
                ExecError::Interrupted { .. } => FailureKind::Interrupted,
                ExecError::Spawn { .. } => FailureKind::Other,
            }
        } else if let Some(SlugError::TooLarge { limit }) = err.chain().find_map(|c| c.downcast_ref::<SlugError>()) {
            FailureKind::SlugTooLarge { limit: *limit }
        } else {
            FailureKind::Other
        };
        BuildFailure { message, kind }
    }

    /// Whether the kernel killed a buildpack script with SIGKILL (what the OOM killer does).
    pub fn killed(&self) -> bool {
        matches!(self.kind, FailureKind::ScriptFailed { signal: Some(9), .. })
    }
}

impl BuildResult {
    pub fn phase(&mut self, name: impl Into<String>, took: std::time::Duration) {
        self.phases.insert(name.into(), took.as_millis() as u64);
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn parse(text: &[u8]) -> Result<BuildResult> {
        serde_json::from_slice(text).context("the engine's build result is not valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_by_type_not_text() {
        let nothing: anyhow::Error = NothingDetected { tried: "python, static".into() }.into();
        let f = BuildFailure::from_error(&nothing);
        assert_eq!(f.kind, FailureKind::NothingDetected { tried: vec!["python".into(), "static".into()] });
        assert!(f.message.starts_with("no buildpack detected this app"));
        let status = std::os::unix::process::ExitStatusExt::from_raw(9);
        let killed: anyhow::Error = ExecError::Failed { what: "x bin/compile".into(), status }.into();
        let f = BuildFailure::from_error(&killed.context("building"));
        assert!(f.killed(), "{f:?}");
        let r = BuildResult { error: Some(f.clone()), ..Default::default() };
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(BuildResult::parse(&json).unwrap(), r);
        assert!(String::from_utf8(json).unwrap().contains("\"kind\":\"script_failed\""));
    }
}
