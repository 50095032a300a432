//! slipway: a Docker-powered mini-Heroku for one host.
//!
//! Following an app from source to a running process:
//! - [`pipeline`]: the build, step by step (copy, select, compile, release);
//! - [`buildpack`]: the detect/compile/release contract; [`source`]: where buildpacks come from;
//!   [`defaults`]: the default list (`buildpacks.toml`);
//! - [`procfile`] and [`release`]: the two small formats a build produces;
//! - [`slug`]: the compiled app as a gzip tar, and its safe import;
//! - [`process`]: starting a process type with the `.profile.d` contract;
//! - [`matrix`]: the buildpack test matrix (every fixture: detect, build, start, request);
//! - [`stack`]: the stack images; [`docker`]: the Docker engine through its API;
//! - [`cli`]: the command line, including herokuish's surface (`/build`, `/start`, `/exec`).

pub mod buildpack;
pub mod checks;
pub mod cli;
pub mod container;
pub mod defaults;
pub mod docker;
pub mod dockerfile;
pub mod envdir;
pub mod exec;
pub mod fsutil;
pub mod gitpush;
pub mod image;
pub mod install;
pub mod keys;
pub mod matrix;
pub mod noderuntime;
pub mod output;
pub mod paths;
pub mod pipeline;
pub mod platform;
pub mod process;
pub mod procfile;
pub mod progress;
pub mod release;
pub mod router;
pub mod runimage;
pub mod runner;
pub mod slug;
pub mod smoke;
pub mod source;
pub mod stack;
pub mod state;
#[cfg(test)]
mod testutil;
pub mod user;

/// An error and its causes on one line: `a: b: c`, leaving out a cause an earlier part
/// already says.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// A number unlikely to repeat between calls or processes (time and pid), for names of
/// temporary containers and runs.
pub fn unique_id() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    (nanos as u64) ^ ((std::process::id() as u64) << 40)
}
