//! The buildpack engine: what runs inside the stack image (and on a host with `--local`).
//! Heroku's detect/compile/release contract, the Procfile, the slug format and its safe import,
//! process start with the `.profile.d` contract, and herokuish's surface. It knows nothing of
//! Docker or the platform; the host learns what a build did from its [`result`].
//!
//! Following a build: [`pipeline`] (the steps) -> [`buildpack`] (the contract) from a
//! [`source`] or the [`defaults`] -> [`release`] and [`procfile`] -> [`slug`].

pub mod buildpack;
pub mod defaults;
pub mod envdir;
pub mod exec;
pub mod fsutil;
pub mod herokuish;
pub mod local;
pub mod noderuntime;
pub mod paths;
pub mod pipeline;
pub mod process;
pub mod procfile;
pub mod release;
pub mod result;
pub mod slug;
pub mod smoke;
pub mod source;
#[cfg(test)]
mod testutil;
pub mod user;
