//! `postgres:*` and `redis:*` as clap types: one definition, made for each kind by
//! [`service_commands`], mapped onto `platform::commands::services`. The app-side commands run
//! over SSH too (a developer key: services it made or its apps link to); backups take host
//! paths and run on this host only.

use anyhow::Result;
use clap::Subcommand;

use crate::platform::access::Need;
use crate::platform::commands::{services as cmd, Platform};
use crate::platform::services::{Kind, Service};

macro_rules! service_commands {
    ($commands:ident, $host_commands:ident, $kind:expr, $p:literal, $title:literal, $var:literal) => {
        #[derive(Subcommand, Debug)]
        pub enum $commands {
            #[command(name = concat!($p, ":create"), about = concat!("Create a ", $title, " service (its own volume and network)"))]
            Create {
                name: String,
                /// Memory limit of its container (512m, 2g)
                #[arg(long)]
                memory: Option<String>,
            },
            #[command(name = concat!($p, ":list"), about = concat!("List the ", $title, " services"))]
            List,
            #[command(name = concat!($p, ":info"), about = "Status, version, volume, links, URL (password masked), backups")]
            Info { name: String },
            #[command(
                name = concat!($p, ":link"),
                about = concat!("Give an app the service's URL in ", $var, " (or --alias) as a new release, restarted")
            )]
            Link {
                name: String,
                app: String,
                /// The config var to set instead
                #[arg(long, value_name = "VAR")]
                alias: Option<String>,
            },
            #[command(name = concat!($p, ":unlink"), about = "Remove the app's URL var and link, as a new release")]
            Unlink { name: String, app: String },
            #[command(name = concat!($p, ":restart"), about = "Restart the service's container (the data stays)")]
            Restart { name: String },
            #[command(name = concat!($p, ":logs"), about = "The service's log")]
            Logs {
                name: String,
                /// Follow
                #[arg(short = 't', long)]
                tail: bool,
                #[arg(short = 'n', long, default_value_t = 100)]
                num: usize,
            },
            #[command(
                name = concat!($p, ":connect"),
                about = "A client on the service: interactive on a terminal, else it reads standard input"
            )]
            Connect { name: String },
            #[command(name = concat!($p, ":export"), about = "The service's data to standard output (redirect it to a file)")]
            Export { name: String },
            #[command(name = concat!($p, ":import"), about = "Replace the service's data with a dump from standard input")]
            Import { name: String },
            #[command(name = concat!($p, ":expose"), about = "Publish the service on 127.0.0.1:PORT (this host only)")]
            Expose { name: String, port: u16 },
            #[command(name = concat!($p, ":unexpose"), about = "Stop publishing the service")]
            Unexpose { name: String },
            #[command(name = concat!($p, ":destroy"), about = "Delete the service and its data (refused while linked)")]
            Destroy {
                name: String,
                #[arg(long)]
                force: bool,
            },
        }

        /// Backups: host paths, so this host only.
        #[derive(Subcommand, Debug)]
        pub enum $host_commands {
            #[command(name = concat!($p, ":backup"), about = "Write a backup file into DIR (on this host)")]
            Backup {
                name: String,
                dir: String,
                /// Keep only the newest N backups of the service in DIR
                #[arg(long)]
                keep: Option<u32>,
            },
            #[command(
                name = concat!($p, ":backup-schedule"),
                about = "Back up on a cron schedule (UTC) into DIR, keeping the newest N (default 7)"
            )]
            BackupSchedule {
                name: String,
                schedule: String,
                dir: String,
                #[arg(long)]
                keep: Option<u32>,
            },
            #[command(name = concat!($p, ":backup-unschedule"), about = "No more scheduled backups")]
            BackupUnschedule { name: String },
        }

        impl $commands {
            /// What it touches, for the caller's access check over SSH.
            pub fn need(&self) -> Result<Need> {
                let svc = |name: &str| Service::new($kind, name);
                Ok(match self {
                    Self::Create { .. } => Need::Create,
                    Self::List => Need::Nothing,
                    Self::Link { name, app, .. } | Self::Unlink { name, app } => {
                        Need::ServiceAndApp(svc(name)?, app.clone())
                    }
                    // Publishing takes a port of the host's: an admin's call.
                    Self::Expose { .. } | Self::Unexpose { .. } => Need::Admin,
                    Self::Info { name }
                    | Self::Restart { name }
                    | Self::Logs { name, .. }
                    | Self::Connect { name }
                    | Self::Export { name }
                    | Self::Import { name }
                    | Self::Destroy { name, .. } => Need::Service(svc(name)?),
                })
            }

            pub async fn run(self, p: &Platform) -> Result<i32> {
                let svc = |name: &str| Service::new($kind, name);
                match self {
                    Self::Create { name, memory } => cmd::create(p, &svc(&name)?, memory.as_deref()).await?,
                    Self::List => cmd::list(p, $kind).await?,
                    Self::Info { name } => cmd::info(p, &svc(&name)?).await?,
                    Self::Link { name, app, alias } => cmd::link(p, &svc(&name)?, &app, alias.as_deref()).await?,
                    Self::Unlink { name, app } => cmd::unlink(p, &svc(&name)?, &app).await?,
                    Self::Restart { name } => cmd::restart(p, &svc(&name)?).await?,
                    Self::Logs { name, tail, num } => cmd::logs(p, &svc(&name)?, tail, num).await?,
                    Self::Connect { name } => return cmd::connect(p, &svc(&name)?).await,
                    Self::Export { name } => cmd::export(p, &svc(&name)?).await?,
                    Self::Import { name } => cmd::import(p, &svc(&name)?).await?,
                    Self::Expose { name, port } => cmd::expose(p, &svc(&name)?, Some(port)).await?,
                    Self::Unexpose { name } => cmd::expose(p, &svc(&name)?, None).await?,
                    Self::Destroy { name, force } => cmd::destroy(p, &svc(&name)?, force).await?,
                }
                Ok(0)
            }
        }

        impl $host_commands {
            pub async fn run(self, p: &Platform) -> Result<i32> {
                let svc = |name: &str| Service::new($kind, name);
                match self {
                    Self::Backup { name, dir, keep } => cmd::backup(p, &svc(&name)?, &dir, keep).await?,
                    Self::BackupSchedule { name, schedule, dir, keep } => {
                        cmd::backup_schedule(p, &svc(&name)?, &schedule, &dir, keep)?
                    }
                    Self::BackupUnschedule { name } => cmd::backup_unschedule(p, &svc(&name)?)?,
                }
                Ok(0)
            }
        }
    };
}

service_commands!(PostgresCommand, PostgresHostCommand, Kind::Postgres, "postgres", "Postgres", "DATABASE_URL");
service_commands!(RedisCommand, RedisHostCommand, Kind::Redis, "redis", "Redis", "REDIS_URL");
