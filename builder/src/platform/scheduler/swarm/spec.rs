//! A process type as a swarm service: the container the runner would start (its command,
//! limits, mounts, labels), with the release's config as secrets, the app's checks as its
//! healthcheck, a drain before SIGTERM, and rolling updates that start new tasks first and roll
//! back by themselves.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use bollard::models::*;
use sha2::Digest;

use super::DRAIN_SECONDS;
use crate::containers::docker::{Engine, LABEL_APP, LABEL_ROLE};
use crate::platform::checks::Check;
use crate::platform::records::Release;
use crate::platform::runner::{Runner, LABEL_RELEASE, LABEL_TYPE};
use crate::platform::settings::{AppSettings, ChecksMode, GlobalSettings};

/// Where a task finds its config: one secret file per variable, which `/start` reads as ENV_PATH.
const SECRETS_DIR: &str = "/run/secrets";
const SECOND: i64 = 1_000_000_000;

/// Runs the process; a SIGTERM (or SIGINT) reaches it only after `SLIPWAY_DRAIN` seconds, while
/// the router moves away from this task. Its arguments are the process's command.
const DRAIN: &str = r#"trap 'sleep "${SLIPWAY_DRAIN:-0}"; kill -TERM "$child" 2>/dev/null' TERM INT
"$@" &
child=$!
while :; do
  wait "$child"; status=$?
  kill -0 "$child" 2>/dev/null || exit "$status"
done"#;

/// A healthcheck in bash alone (stack images have no curl): GET $2 on port $1; a 2xx or 3xx
/// answer passes ($4 = any: any HTTP answer), and $3, when given, must be in the body; the
/// status line and the body get $5 seconds each. Nothing from app.json is ever part of the
/// script: path and content are arguments.
const PROBE: &str = r#"exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: slipway-healthcheck\r\n\r\n' "$2" >&3
IFS= read -r -t "$5" status <&3 || exit 1
case "$status" in
  "HTTP/"*" "[23][0-9][0-9]*) ;;
  "HTTP/"*) [ "$4" = any ] || exit 1 ;;
  *) exit 1 ;;
esac
[ -z "$3" ] && exit 0
body=$(timeout "$5" cat <&3)
case "$body" in *"$3"*) exit 0 ;; esac
exit 1"#;

/// A secret's name: `APP.vN.KEY.HASH` (HASH of the value: a secret of that name left by an
/// earlier app of the same name is only ever reused for the same value), or all of it hashed
/// when that would be too long.
fn secret_name(app: &str, version: i64, key: &str, value: &str) -> String {
    let hex = |text: &str, bytes: usize| -> String {
        sha2::Sha256::digest(text.as_bytes()).iter().take(bytes).map(|b| format!("{b:02x}")).collect()
    };
    let plain = format!("{app}.v{version}.{key}.{}", hex(value, 6));
    if plain.len() <= 64 {
        return plain;
    }
    format!("slipway.{}", hex(&format!("{plain}\n{value}"), 16))
}

/// The release's config as swarm secrets (made once per release), as a task mounts them.
pub async fn secrets(engine: &Engine, release: &Release) -> Result<Vec<TaskSpecContainerSpecSecrets>> {
    let mut refs = Vec::new();
    for (key, value) in &release.config {
        if !crate::engine::envdir::valid_key(key) {
            continue;
        }
        let name = secret_name(&release.app, release.version, key, value);
        let id = match engine.api.inspect_secret(&name).await {
            Ok(s) => s.id.unwrap_or_default(),
            Err(_) => {
                let spec = SecretSpec {
                    name: Some(name.clone()),
                    labels: Some(HashMap::from([
                        (LABEL_APP.to_string(), release.app.clone()),
                        (LABEL_RELEASE.to_string(), release.version.to_string()),
                    ])),
                    data: Some(base64::engine::general_purpose::STANDARD.encode(value)),
                    ..Default::default()
                };
                engine
                    .api
                    .create_secret(spec)
                    .await
                    .with_context(|| format!("cannot store {key} as a swarm secret"))?
                    .id
            }
        };
        let uid = crate::engine::user::DEFAULT_ID.to_string();
        refs.push(TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(key.clone()),
                uid: Some(uid.clone()),
                gid: Some(uid),
                mode: Some(0o400),
            }),
            secret_id: Some(id),
            secret_name: Some(name),
        });
    }
    Ok(refs)
}

/// Removes the app's secrets of releases not in `keep` (one a service still uses stays);
/// how many of those are left.
pub async fn remove_secrets(engine: &Engine, app: &str, keep: &[i64]) -> usize {
    let mut left = 0;
    let filters = HashMap::from([("label", vec![format!("{LABEL_APP}={app}")])]);
    let opts = bollard::query_parameters::ListSecretsOptionsBuilder::default().filters(&filters).build();
    for secret in engine.api.list_secrets(Some(opts)).await.unwrap_or_default() {
        let labels = secret.spec.as_ref().and_then(|s| s.labels.clone()).unwrap_or_default();
        let version = labels.get(LABEL_RELEASE).and_then(|v| v.parse::<i64>().ok());
        if version.is_some_and(|v| keep.contains(&v)) {
            continue;
        }
        if let Some(id) = secret.id {
            if engine.api.delete_secret(&id).await.is_err() {
                left += 1;
            }
        }
    }
    left
}

/// The healthcheck of a process type: its app.json check (an HTTP one, or a command), else for
/// web any HTTP answer on its port; none for other types without one (swarm then watches that
/// the task keeps running).
fn healthcheck(
    release: &Release,
    settings: &AppSettings,
    kind: &str,
    port: Option<u16>,
) -> Result<Option<HealthConfig>> {
    if settings.checks == ChecksMode::Disabled {
        return Ok(None);
    }
    let declared = crate::platform::checks::parse(release.app_json.as_deref())?;
    let check: Option<Check> = match settings.checks {
        ChecksMode::Skipped => None,
        _ => declared.get(kind).and_then(|c| c.first()).cloned(),
    };
    let test = match (&check, port) {
        (Some(Check { command: Some(command), .. }), _) => [vec!["CMD".to_string()], command.clone()].concat(),
        (check, Some(web_port)) => {
            let path = check.as_ref().and_then(|c| c.path.clone()).unwrap_or_else(|| "/".into());
            if !path.starts_with('/') || path.len() > 2048 || !path.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                bail!("app.json's healthcheck path {path:?} is not a URL path: use one such as /health");
            }
            let port = check.as_ref().and_then(|c| c.port).unwrap_or(web_port);
            let content = check.as_ref().and_then(|c| c.content.clone()).unwrap_or_default();
            let accept = if check.is_some() { "2xx-3xx" } else { "any" };
            let seconds = check.as_ref().map_or(5, |c| c.timeout.max(1)).to_string();
            ["CMD", "bash", "-c", PROBE, "slipway-probe", &port.to_string(), &path, &content, accept, &seconds]
                .map(str::to_string)
                .to_vec()
        }
        (_, None) => return Ok(None),
    };
    let c = check.unwrap_or(Check {
        name: None,
        kind: None,
        path: None,
        port: None,
        attempts: 3,
        timeout: 5,
        wait: 1,
        initial_delay: 0,
        content: None,
        command: None,
    });
    Ok(Some(HealthConfig {
        test: Some(test),
        interval: Some(SECOND),
        // The probe's two reads, and a second to connect.
        timeout: Some((2 * c.timeout.max(1) as i64 + 1) * SECOND),
        retries: Some(c.attempts.max(1) as i64),
        // Failures while the app boots do not count; the first success makes it healthy.
        start_period: Some((c.initial_delay as i64 + 30) * SECOND),
        ..Default::default()
    }))
}

fn mounts(binds: &[String]) -> Vec<Mount> {
    binds
        .iter()
        .filter_map(|b| {
            let mut parts = b.splitn(3, ':');
            let (source, target) = (parts.next()?, parts.next()?);
            Some(Mount {
                source: Some(source.into()),
                target: Some(target.into()),
                typ: Some(MountType::BIND),
                read_only: Some(parts.next() == Some("ro")),
                ..Default::default()
            })
        })
        .collect()
}

/// A one-off's job: one task of `image` that runs `command` once (`run`, release scripts, cron).
pub async fn job(
    r: &Runner,
    release: &Release,
    command: &[String],
    image: &str,
    secrets: &[TaskSpecContainerSpecSecrets],
) -> Result<ServiceSpec> {
    let mut spec = service(r, release, "run", 1, image, secrets, Some(command)).await?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    spec.name = Some(format!("{}-{}-{nanos}", super::service_name(&release.app, "run"), std::process::id()));
    spec.mode = Some(ServiceSpecMode {
        replicated_job: Some(ServiceSpecModeReplicatedJob { max_concurrent: Some(1), total_completions: Some(1) }),
        ..Default::default()
    });
    spec.update_config = None;
    spec.rollback_config = None;
    // Not one of the app's process types (services_of lists those by this label).
    if let Some(labels) = spec.labels.as_mut() {
        labels.remove(LABEL_TYPE);
    }
    if let Some(task) = spec.task_template.as_mut() {
        task.restart_policy = Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
            ..Default::default()
        });
    }
    Ok(spec)
}

/// The service of `kind` for a release: `replicas` tasks of `image` (the registry's
/// reference); with `one_off`, that command in place of the type's.
pub async fn service(
    r: &Runner,
    release: &Release,
    kind: &str,
    replicas: i64,
    image: &str,
    secrets: &[TaskSpecContainerSpecSecrets],
    one_off: Option<&[String]>,
) -> Result<ServiceSpec> {
    let app = &release.app;
    let name = super::service_name(app, kind);
    let process = r.process_spec(release, kind, 1, &name, Path::new("/unused"), one_off).await?;
    let settings = AppSettings::load(&r.state, app)?;
    let global = GlobalSettings::load(&r.state)?;
    let port = process.publish.map(|(inside, _)| inside);
    let mut env: Vec<String> = process.env.iter().filter(|e| !e.starts_with("DYNO=")).cloned().collect();
    env.extend([
        format!("DYNO={kind}.{{{{.Task.Slot}}}}"),
        format!("ENV_PATH={SECRETS_DIR}"),
        format!("SLIPWAY_DRAIN={DRAIN_SECONDS}"),
    ]);
    let mut labels = process.labels.clone();
    if one_off.is_none() {
        labels.insert(LABEL_ROLE.to_string(), "task".to_string());
    }
    let command = [
        vec!["bash".to_string(), "-c".to_string(), DRAIN.to_string(), "slipway-drain".to_string()],
        process.cmd.clone().unwrap_or_default(),
    ]
    .concat();
    let service_labels: HashMap<String, String> = labels
        .iter()
        .filter(|(k, _)| [LABEL_APP, LABEL_TYPE, LABEL_RELEASE].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let container = TaskSpecContainerSpec {
        image: Some(image.to_string()),
        labels: Some(labels),
        command: Some(command),
        env: Some(env),
        mounts: Some(mounts(&process.binds)),
        stop_grace_period: Some(i64::from(DRAIN_SECONDS + global.stop_timeout) * SECOND),
        health_check: if one_off.is_some() { None } else { healthcheck(release, &settings, kind, port)? },
        secrets: Some(secrets.to_vec()),
        init: Some(true),
        ..Default::default()
    };
    let log_options = BTreeMap::from([
        ("max-size".to_string(), process.logs.max_size.to_string()),
        ("max-file".to_string(), process.logs.max_files.to_string()),
    ]);
    Ok(ServiceSpec {
        name: Some(name),
        labels: Some(service_labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: process.cpus.map(|c| (c * 1e9) as i64),
                    memory_bytes: process.memory.map(|m| m as i64),
                    pids: process.pids.map(i64::from),
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(SECOND),
                ..Default::default()
            }),
            log_driver: Some(TaskSpecLogDriver {
                name: Some("json-file".into()),
                options: Some(log_options.into_iter().collect()),
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(replicas) }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(2 * SECOND),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(2 * SECOND),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: port.map(|p| {
                vec![EndpointPortConfig {
                    protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                    target_port: Some(i64::from(p)),
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]
            }),
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_fit_and_differ() {
        let name = secret_name("shop", 3, "DATABASE_URL", "postgres://x");
        assert!(
            name.starts_with("shop.v3.DATABASE_URL.") && name.len() == "shop.v3.DATABASE_URL.".len() + 12,
            "{name}"
        );
        assert_ne!(name, secret_name("shop", 3, "DATABASE_URL", "postgres://y"), "another value, another secret");
        let long = secret_name(&"a".repeat(40), 3, "A_VERY_LONG_VARIABLE_NAME_INDEED", "v");
        assert!(long.len() <= 64 && long.starts_with("slipway."), "{long}");
        assert_ne!(long, secret_name(&"a".repeat(40), 4, "A_VERY_LONG_VARIABLE_NAME_INDEED", "v"));
    }

    #[test]
    fn binds_become_mounts() {
        let m = mounts(&["/srv/data:/data".into(), "/srv/conf:/conf:ro".into()]);
        assert_eq!(m[0].target.as_deref(), Some("/data"));
        assert_eq!((m[0].read_only, m[1].read_only), (Some(false), Some(true)));
    }
}
