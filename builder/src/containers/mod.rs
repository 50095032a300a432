//! Docker, through its API (bollard): the stack images, builds in containers, release images,
//! Dockerfile builds, and one [`process::ProcessSpec`] for every container that runs an app.

pub mod app_build;
pub mod build;
pub mod docker;
pub mod dockerfile;
pub mod image;
pub mod loader;
pub mod process;
pub mod run;
pub mod stack;
