//! Apps and their lifecycle: the state ([`state`], typed [`settings`] and [`records`]), the
//! [`runner`] (process types as containers, zero-downtime rollouts), the [`router`] (nginx),
//! deploy [`checks`], builds and deploys ([`deploy`]), and every Dokku-style command
//! ([`commands`]), which the CLI and the SSH dispatcher both call; [`daemon`] is root's side of
//! the platform (the router, sshd, restoring apps, and the [`cron`] scheduler's runs).

pub mod access;
pub mod app_json;
pub mod certs;
pub mod checks;
pub mod commands;
pub mod cron;
pub mod daemon;
pub mod deploy;
pub mod disk;
pub mod letsencrypt;
pub mod lock;
pub mod migrations;
pub mod names;
pub mod ports;
pub mod records;
pub mod rename;
pub mod router;
pub mod runner;
pub mod scheduler;
pub mod services;
pub mod settings;
pub mod state;
