//! herokuish's well-known paths, each overridable by its variable (SPEC section 3).

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub app: PathBuf,
    pub build: PathBuf,
    pub cache: PathBuf,
    pub env: PathBuf,
    pub import: PathBuf,
    pub buildpacks: PathBuf,
    pub slug: PathBuf,
}

/// (variable, default) pairs, in the order `paths` prints them.
pub const VARIABLES: [(&str, &str); 7] = [
    ("APP_PATH", "/app"),
    ("BUILD_PATH", "/tmp/build"),
    ("CACHE_PATH", "/tmp/cache"),
    ("ENV_PATH", "/tmp/env"),
    ("IMPORT_PATH", "/tmp/app"),
    ("BUILDPACK_PATH", "/tmp/buildpacks"),
    ("SLUG_PATH", "/tmp/slug.tgz"),
];

impl Paths {
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from))
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<PathBuf>) -> Self {
        let get = |i: usize| lookup(VARIABLES[i].0).unwrap_or_else(|| PathBuf::from(VARIABLES[i].1));
        Paths {
            app: get(0),
            build: get(1),
            cache: get(2),
            env: get(3),
            import: get(4),
            buildpacks: get(5),
            slug: get(6),
        }
    }

    pub fn render(&self) -> String {
        let values = [&self.app, &self.build, &self.cache, &self.env, &self.import, &self.buildpacks, &self.slug];
        VARIABLES.iter().zip(values).map(|((var, _), value)| format!("{var}={}\n", value.display())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let p = Paths::from_lookup(|k| (k == "CACHE_PATH").then(|| PathBuf::from("/c")));
        assert_eq!(p.app, PathBuf::from("/app"));
        assert_eq!(p.cache, PathBuf::from("/c"));
        assert_eq!(p.buildpacks, PathBuf::from("/tmp/buildpacks"));
        assert!(p.render().contains("CACHE_PATH=/c\n"));
        assert!(p.render().starts_with("APP_PATH=/app\n"));
    }
}
