//! The stacks, as Heroku has them: each a pair of images (run and build) made from one Debian
//! release. `slipway-trixie` (Debian 13) is the default; `slipway-bookworm` (Debian 12) stays
//! selectable per app (`stack:set`) or for every app (`stack:set --global`). [`images`] makes
//! them.

pub mod images;

use anyhow::{bail, Result};

pub use images::{build, StackOptions};

/// Where every stack's images live: `slipway/stack:SUITE` (run) and `slipway/stack:SUITE-build`.
pub const REPO: &str = "slipway/stack";
/// The default stack's run image under a name that never changes (`FROM slipway/stack:run` in
/// a Dockerfile app).
pub const RUN_IMAGE: &str = "slipway/stack:run";
/// The default stack's build image under a name that never changes.
pub const BUILD_IMAGE: &str = "slipway/stack:build";
pub const LABEL_STACK: &str = "io.slipway.stack";
pub const LABEL_HASH: &str = "io.slipway.stack.hash";

/// One stack: its name (what `STACK` says), the Debian release it is made from, and the
/// language runtimes (major.minor) its images carry, which buildpacks check versions against.
#[derive(Debug, PartialEq, Eq)]
pub struct Stack {
    pub name: &'static str,
    /// Debian's code name, also the image tag.
    pub suite: &'static str,
    pub debian: &'static str,
    /// The Heroku stack it stands in for (same or older glibc, same library generation): the
    /// `STACK` that buildpacks other than slipway's own see, so Heroku's official ones run.
    pub heroku: &'static str,
    /// The run image's packages (the build image's are shared: `build-packages.txt`).
    pub run_packages: &'static str,
    /// (language, major.minor), as Debian ships them; a Docker test checks them against the
    /// images.
    pub runtimes: &'static [(&'static str, &'static str)],
}

/// Every stack, the default first.
pub const STACKS: [Stack; 2] = [
    Stack {
        name: "slipway-trixie",
        suite: "trixie",
        debian: "Debian 13",
        heroku: "heroku-24",
        run_packages: include_str!("../../../../stack-image/run-packages-trixie.txt"),
        runtimes: &[("python", "3.13"), ("go", "1.24"), ("nodejs", "20"), ("ruby", "3.3"), ("php", "8.4")],
    },
    Stack {
        name: "slipway-bookworm",
        suite: "bookworm",
        debian: "Debian 12",
        heroku: "heroku-22",
        run_packages: include_str!("../../../../stack-image/run-packages-bookworm.txt"),
        runtimes: &[("python", "3.11"), ("go", "1.19"), ("nodejs", "18"), ("ruby", "3.1"), ("php", "8.2")],
    },
];

impl Stack {
    /// The stack new apps build on.
    pub fn default_stack() -> &'static Stack {
        &STACKS[0]
    }

    /// A stack by its name (`slipway-trixie`) or its Debian code name (`trixie`).
    pub fn named(name: &str) -> Result<&'static Stack> {
        match STACKS.iter().find(|s| s.name == name || s.suite == name) {
            Some(s) => Ok(s),
            None => {
                let names: Vec<&str> = STACKS.iter().map(|s| s.name).collect();
                let shown: String = name.chars().take(64).collect();
                bail!("there is no stack {shown:?}: the stacks are {} (see `slipway stack:list`)", names.join(", "))
            }
        }
    }

    pub fn is_default(&self) -> bool {
        self == Stack::default_stack()
    }

    pub fn run_image(&self) -> String {
        format!("{REPO}:{}", self.suite)
    }

    pub fn build_image(&self) -> String {
        format!("{REPO}:{}-build", self.suite)
    }

    /// `Python 3.13, Go 1.24, ...` for listings.
    pub fn runtimes_text(&self) -> String {
        let names = [("python", "Python"), ("go", "Go"), ("nodejs", "Node.js"), ("ruby", "Ruby"), ("php", "PHP")];
        self.runtimes
            .iter()
            .map(|(lang, v)| {
                let shown = names.iter().find(|(k, _)| k == lang).map_or(*lang, |(_, n)| n);
                format!("{shown} {v}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every stack's runtimes, a line each (`slipway-trixie python 3.13`): the build images carry it
/// as `/usr/share/slipway/stacks`, so a buildpack refusing a version can name the stack that has it.
pub fn runtimes_table() -> String {
    let mut out = String::new();
    for s in &STACKS {
        for (lang, v) in s.runtimes {
            out += &format!("{} {lang} {v}\n", s.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_by_name_and_code_name() {
        assert_eq!(Stack::default_stack().name, crate::engine::pipeline::DEFAULT_STACK);
        assert_eq!(Stack::named("bookworm").unwrap().name, "slipway-bookworm");
        assert_eq!(Stack::named("slipway-trixie").unwrap().build_image(), "slipway/stack:trixie-build");
        let e = Stack::named("heroku-24").unwrap_err().to_string();
        assert!(e.contains("slipway-trixie, slipway-bookworm"), "{e}");
        assert!(runtimes_table().contains("slipway-bookworm python 3.11\n"));
        assert_eq!(
            Stack::named("trixie").unwrap().runtimes_text(),
            "Python 3.13, Go 1.24, Node.js 20, Ruby 3.3, PHP 8.4"
        );
    }
}
