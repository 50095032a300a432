//! What the state stores, as types: releases and deploys with their statuses, stored as text
//! through rusqlite's ToSql/FromSql.

use std::collections::BTreeMap;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::containers::image::BuildKind;

/// Declares a status enum stored as its lowercase name.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok($name::$variant),)+
                    other => Err(FromSqlError::Other(format!("unknown {} {other:?}", stringify!($name)).into())),
                }
            }
        }
    };
}

text_enum!(
    /// A release is pending while it rolls out; the newest that succeeded is the current one.
    ReleaseStatus { Pending => "pending", Succeeded => "succeeded", Failed => "failed" }
);

text_enum!(
    /// A build and deploy (a push, or `slipway deploy`).
    DeployStatus { Running => "running", Succeeded => "succeeded", Failed => "failed" }
);

impl ToSql for BuildKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for BuildKind {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(BuildKind::parse(value.as_str()?))
    }
}

/// A release: an image, the config it runs with, and what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub app: String,
    pub version: i64,
    pub image: String,
    pub slug_digest: Option<String>,
    pub build: BuildKind,
    pub process_types: BTreeMap<String, String>,
    pub source_version: Option<String>,
    pub config: BTreeMap<String, String>,
    pub description: String,
    pub app_json: Option<String>,
    pub created_at: i64,
    pub status: ReleaseStatus,
    /// Who made it: an SSH key's name, or `USER (cli)` on the host.
    pub pusher: Option<String>,
}

impl Release {
    /// Whether it has a web process to route to (a Dockerfile image's own command is one).
    pub fn has_web(&self) -> bool {
        self.process_types.contains_key("web") || self.build.is_dockerfile()
    }

    /// Whether a process type of the formation runs in this release (`web` of a Dockerfile
    /// image needs no Procfile entry).
    pub fn runs(&self, kind: &str) -> bool {
        self.process_types.contains_key(kind) || (kind == "web" && self.has_web())
    }

    /// A shell command line as the argv of a one-off in this release's image.
    pub fn shell_command(&self, line: &str) -> Vec<String> {
        vec![self.build.shell().to_string(), "-c".to_string(), line.to_string()]
    }
}

/// A build and deploy, as `builds:list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub id: i64,
    pub release: Option<i64>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: DeployStatus,
    pub source_version: Option<String>,
    pub pusher: Option<String>,
}

/// A build's full log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployLog {
    pub id: i64,
    pub status: DeployStatus,
    pub log: String,
}
