//! slipway: a Docker-powered mini-Heroku for one host.
//!
//! The tree follows an app from `git push` to a running container, one layer a folder; a lower
//! layer never imports a higher one:
//! - [`engine`]: the buildpack engine that runs inside the stack image (detect, compile,
//!   release, Procfile, slug format, process start, herokuish's surface). Knows nothing of
//!   Docker or the platform.
//! - [`containers`]: the Docker engine through its API: stack images, builds in containers,
//!   release images, Dockerfile builds, one process spec for every container that runs an app.
//! - [`platform`]: apps and their lifecycle: state, settings, the runner (zero-downtime
//!   rollouts), the router, checks, and every Dokku-style command.
//! - [`gitpush`]: `git push` over SSH: the dispatcher, the receive hook, the export, keys,
//!   install.
//! - [`matrix`]: the buildpack test matrix.
//! - [`cli`]: clap types and argument mapping only.
//! - Shared below them all: [`output`], [`units`], [`net`], [`sys`].
//! - Above them all, for `fuzz/` only: [`fuzzing`], the fuzz targets' entry points.

mod cli;
mod containers;
mod engine;
#[doc(hidden)]
pub mod fuzzing;
mod gitpush;
mod matrix;
mod net;
mod output;
mod platform;
mod sys;
mod units;

pub use cli::main;
/// For the integration tests: a GET to an app on 127.0.0.1.
pub use net::get;
