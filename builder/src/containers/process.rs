//! One process spec for every container that runs an app's process: the runner's `APP.TYPE.N`
//! and one-offs, `slipway run-image`, and the matrix's `web`. It says what runs (the command
//! for a buildpack or a Dockerfile image), with which environment, limits and labels, and
//! which port is published on 127.0.0.1.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Result};
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};

use super::docker::{loopback_port, rotated_logs, Engine, LogLimits, LABEL_APP, LABEL_MANAGED, LABEL_ROLE};
use super::image::BuildKind;

/// The port buildpack apps listen on inside their containers (`PORT`).
pub const APP_PORT: u16 = 5000;

/// Where ENV_PATH files are mounted (read-only); `/start` and `/exec` load them.
pub const ENV_PATH: &str = "/tmp/env";

#[derive(Debug, Clone, Default)]
pub struct ProcessSpec {
    pub name: String,
    pub image: String,
    /// None: the image's own command.
    pub cmd: Option<Vec<String>>,
    /// None: the image's own entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Plain variables (PORT, DYNO, ...); config values go through `env_dir` instead.
    pub env: Vec<String>,
    /// A directory of ENV_PATH files (config vars), mounted read-only at [`ENV_PATH`].
    pub env_dir: Option<PathBuf>,
    /// The container port published on 127.0.0.1, and the host port (0: any free one).
    pub publish: Option<(u16, u16)>,
    pub binds: Vec<String>,
    pub labels: HashMap<String, String>,
    /// Bytes.
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    /// The most processes and threads the container may run.
    pub pids: Option<u32>,
    /// Restart on failure (up to 10 times), as Dokku's processes do; one-offs do not.
    pub restart: bool,
    /// How big its log may grow.
    pub logs: LogLimits,
    /// Networks it joins besides the default one (its app's linked services').
    pub networks: Vec<String>,
}

/// The port an app listens on inside its container: a Dockerfile image's first EXPOSEd port,
/// else [`APP_PORT`] (what `PORT` says).
pub async fn container_port(engine: &super::docker::Engine, build: &BuildKind, image: &str) -> Result<u16> {
    Ok(match build {
        BuildKind::Dockerfile => engine.image_exposed_ports(image).await?.first().copied().unwrap_or(APP_PORT),
        BuildKind::Buildpacks(_) => APP_PORT,
    })
}

/// What runs for `kind` of an image: `/start TYPE` for buildpack images; for Dockerfile images,
/// the Procfile's command through `sh -c`, or the image's own command for `web`. A one-off
/// command runs through `/exec` (buildpack images) or as it is.
pub fn command(
    build: &BuildKind,
    process_types: &BTreeMap<String, String>,
    kind: &str,
    one_off: Option<&[String]>,
) -> Result<Option<Vec<String>>> {
    Ok(match (one_off, build.is_dockerfile()) {
        (Some(cmd), false) => Some([&["/exec".to_string()], cmd].concat()),
        (Some(cmd), true) => Some(cmd.to_vec()),
        (None, false) => {
            if !process_types.contains_key(kind) {
                let known: Vec<&str> = process_types.keys().map(String::as_str).collect();
                bail!("it has no `{kind}` process type (it has: {})", known.join(", "));
            }
            Some(vec!["/start".to_string(), kind.to_string()])
        }
        // `web` without a Procfile entry (recorded with an empty command) is the image's own.
        (None, true) => match process_types.get(kind).filter(|c| !c.trim().is_empty()) {
            Some(c) => Some(vec![build.shell().into(), "-c".into(), c.clone()]),
            None if kind == "web" => None,
            None => bail!("it has no Procfile entry for `{kind}`"),
        },
    })
}

impl ProcessSpec {
    /// Labels every app container carries: managed, its role and its app.
    pub fn base_labels(role: &str, app: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_ROLE.to_string(), role.to_string()),
            (LABEL_APP.to_string(), app.to_string()),
        ])
    }

    pub fn body(&self) -> ContainerCreateBody {
        let memory = self.memory.map(|m| m as i64);
        let mut binds = self.binds.clone();
        if let Some(dir) = &self.env_dir {
            binds.insert(0, format!("{}:{ENV_PATH}:ro", dir.display()));
        }
        ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.clone(),
            env: Some(self.env.clone()),
            labels: Some(self.labels.clone()),
            exposed_ports: self.publish.map(|(inside, _)| vec![format!("{inside}/tcp")]),
            host_config: Some(HostConfig {
                binds: Some(binds),
                init: Some(true),
                port_bindings: self.publish.map(|(inside, host)| loopback_port(inside, host)),
                restart_policy: self.restart.then_some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::ON_FAILURE),
                    maximum_retry_count: Some(10),
                }),
                memory,
                memory_swap: memory,
                nano_cpus: self.cpus.map(|c| (c * 1e9) as i64),
                log_config: Some(rotated_logs(self.logs)),
                pids_limit: self.pids.map(i64::from),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Creates the container (not started) on its networks; returns its id.
    pub async fn create(&self, engine: &Engine) -> Result<String> {
        let id = engine.create(&self.name, self.body()).await?;
        for network in &self.networks {
            let request = bollard::models::NetworkConnectRequest { container: id.clone(), endpoint_config: None };
            if let Err(e) = engine.api.connect_network(network, request).await {
                engine.remove_container(&id).await;
                bail!("cannot join {} to the network {network}: {}", self.name, crate::output::error_chain(&e));
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_for_buildpack_and_dockerfile_images() {
        let types = BTreeMap::from([("web".to_string(), "./server".to_string())]);
        let bp = BuildKind::Buildpacks("Go".into());
        assert_eq!(command(&bp, &types, "web", None).unwrap().unwrap(), ["/start", "web"]);
        assert!(command(&bp, &types, "worker", None).is_err());
        let run = ["bash".to_string()];
        assert_eq!(command(&bp, &types, "run", Some(&run)).unwrap().unwrap(), ["/exec", "bash"]);
        let df = BuildKind::Dockerfile;
        assert_eq!(command(&df, &BTreeMap::new(), "web", None).unwrap(), None);
        let recorded = BTreeMap::from([("web".to_string(), String::new())]);
        assert_eq!(command(&df, &recorded, "web", None).unwrap(), None, "an empty web entry is the image's command");
        assert_eq!(command(&df, &types, "web", None).unwrap().unwrap(), ["/bin/sh", "-c", "./server"]);
        assert!(command(&df, &types, "worker", None).is_err());
    }
}
