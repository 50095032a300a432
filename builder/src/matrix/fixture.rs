//! The fixtures: `fixtures/<buildpack>/<app>/`, each with an optional `test.toml` ([`Spec`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::defaults::DefaultBuildpack;

/// The fixtures that name their buildpacks in `.buildpacks` (several buildpacks, one app).
pub const MULTI_GROUP: &str = "multi";

/// A fixture's `test.toml`; every key is optional.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Spec {
    /// The path requested once `web` is up.
    pub path: String,
    /// The expected body (compared without surrounding whitespace) [default: the fixture's
    /// directory name].
    pub body: Option<String>,
    /// Config vars, given to the build (ENV_DIR) and to `web`.
    pub env: BTreeMap<String, String>,
    /// The buildpacks that must be picked, in order [default: the fixture's group].
    pub buildpacks: Option<Vec<String>>,
    /// The step this fixture must fail at (a buildpack's own error handling under test).
    pub expect_failure: Option<StepName>,
    /// Text the failure's message must contain, with `expect_failure`.
    pub error: Option<String>,
    /// Run the buildpack's test mode when it has one.
    pub test: bool,
    /// Seconds `web` has to answer.
    pub boot_timeout: u64,
    /// The process type started [default: web]. Another one (an app with only a worker) is
    /// checked by its log: it must print the expected body and keep running.
    pub process: String,
    /// What differs on one stack (`[on.slipway-bookworm]`): a version only the newer stack
    /// has is refused on the older one, with a message the fixture checks.
    pub on: BTreeMap<String, OnStack>,
}

/// A fixture's expectations on one stack, replacing the top-level ones.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnStack {
    pub expect_failure: Option<StepName>,
    pub error: Option<String>,
    pub body: Option<String>,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            path: "/".into(),
            body: None,
            env: BTreeMap::new(),
            buildpacks: None,
            expect_failure: None,
            error: None,
            test: true,
            boot_timeout: 60,
            process: "web".into(),
            on: BTreeMap::new(),
        }
    }
}

/// The steps of a fixture's run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepName {
    Detect,
    Build,
    Start,
    Request,
    Test,
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            StepName::Detect => "detect",
            StepName::Build => "build",
            StepName::Start => "start",
            StepName::Request => "request",
            StepName::Test => "test",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone)]
pub struct Fixture {
    /// `group/name`, e.g. `python/flask`.
    pub id: String,
    /// The buildpack it belongs to (its parent directory's name).
    pub group: String,
    pub dir: PathBuf,
    pub spec: Spec,
}

impl Fixture {
    /// The fixture in `dir`, with its expectations on `stack`.
    pub fn load(dir: &Path, stack: &str) -> Result<Fixture> {
        let dir = dir.canonicalize().with_context(|| format!("fixture directory {} does not exist", dir.display()))?;
        if !dir.is_dir() {
            bail!("fixture {} is not a directory", dir.display());
        }
        let name = file_name(&dir);
        let group = dir.parent().map(file_name).unwrap_or_default();
        let spec_path = dir.join("test.toml");
        let mut spec: Spec = match std::fs::read_to_string(&spec_path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("{} is not a valid test.toml", spec_path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Spec::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", spec_path.display())),
        };
        // `[on.bookworm]` and `[on.slipway-bookworm]` are the same stack.
        let mut on_stacks = BTreeMap::new();
        for (name, on) in &spec.on {
            let named = crate::containers::stack::Stack::named(name)
                .with_context(|| format!("{}: [on.{name}]", spec_path.display()))?;
            on_stacks.insert(named.name, on.clone());
        }
        if let Some(on) = on_stacks.get(stack).cloned() {
            if on.expect_failure.is_some() || on.error.is_some() {
                (spec.expect_failure, spec.error) = (on.expect_failure, on.error);
            }
            spec.body = on.body.or(spec.body);
        }
        if spec.error.is_some() && spec.expect_failure.is_none() {
            bail!("{}: `error` needs `expect_failure` (the step that must fail)", spec_path.display());
        }
        Ok(Fixture { id: format!("{group}/{name}"), group, dir, spec })
    }

    pub fn expected_body(&self) -> String {
        self.spec.body.clone().unwrap_or_else(|| file_name(&self.dir))
    }
}

pub fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// "Node.js" and "nodejs" are the same buildpack: compare names without case or punctuation.
pub fn same_buildpack(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The fixtures of each buildpack under `root` (`root/<name>/<app>/`), in `buildpacks` order,
/// then the multi-buildpack group. `only` keeps the named groups.
pub fn discover(
    root: &Path,
    buildpacks: &[DefaultBuildpack],
    only: &[String],
    stack: &str,
) -> Result<(Vec<Fixture>, Vec<String>)> {
    if !root.is_dir() {
        bail!(
            "no fixtures directory at {}: run from a slipway checkout, pass --fixtures DIR, or name fixture \
             directories on the command line",
            root.display()
        );
    }
    for name in only {
        if !buildpacks.iter().any(|b| &b.name == name) && name != MULTI_GROUP {
            let known: Vec<&str> = buildpacks.iter().map(|b| b.name.as_str()).collect();
            bail!("unknown buildpack {name:?} (the defaults are: {}, and {MULTI_GROUP})", known.join(", "));
        }
    }
    let mut groups: Vec<String> = buildpacks.iter().map(|b| b.name.clone()).collect();
    groups.push(MULTI_GROUP.into());
    let mut fixtures = Vec::new();
    let mut warnings = Vec::new();
    for group in groups.iter().filter(|g| only.is_empty() || only.contains(g)) {
        let dir = root.join(group);
        let mut apps: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
            Err(_) => {
                if group != MULTI_GROUP {
                    warnings.push(format!("buildpack {group} has no fixtures ({} is missing)", dir.display()));
                }
                continue;
            }
        };
        apps.sort();
        for app in apps {
            fixtures.push(Fixture::load(&app, stack)?);
        }
    }
    Ok((fixtures, warnings))
}
