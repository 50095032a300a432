//! Docker, through its API (bollard): the stack images, builds in containers, release images,
//! Dockerfile builds, one [`process::ProcessSpec`] for every container that runs an app, and
//! [`exec`]: a command in a running container with our standard streams.

pub mod app_build;
pub mod build;
pub mod docker;
pub mod dockerfile;
pub mod exec;
pub mod image;
pub mod loader;
pub mod prebuilt;
pub mod process;
pub mod run;
pub mod stack;
