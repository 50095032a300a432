//! The platform's commands as clap types, mapped onto `platform::commands`. [`AppCommand`] is
//! the one definition of what a key may run over SSH; [`HostCommand`] and [`KeyCommand`] run
//! on this host only.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::platform::access::{Caller, Need, Role};
use crate::platform::commands::{self as cmd, Format, Platform, GLOBAL};
use crate::platform::settings::ChecksMode;

/// App commands: on this host, and over SSH (`ssh slipway@HOST config:set APP K=V`).
#[derive(Subcommand, Debug)]
pub enum AppCommand {
    #[command(name = "apps:create", about = "Create an app")]
    AppsCreate { app: String },
    #[command(name = "apps:list", about = "List the apps")]
    AppsList {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "apps:info", about = "Show an app's release, buildpack and URLs")]
    AppsInfo { app: String },
    #[command(
        name = "apps:clone",
        about = "A new app with OLD's config and settings, its pushed source built and deployed"
    )]
    AppsClone { old: String, new: String },
    #[command(
        name = "apps:rename",
        about = "Rename an app: state, files, images, routes and repo follow; it keeps serving"
    )]
    AppsRename { old: String, new: String },
    #[command(name = "apps:exists", about = "Exit status 0 when the app exists, else 1")]
    AppsExists { app: String },
    #[command(name = "apps:report", about = "The app's release, build, stack, hosts, scale and settings")]
    AppsReport {
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "config:set", about = "Set config vars; makes a new release and restarts the processes")]
    ConfigSet {
        /// The app, or --global
        #[arg(allow_hyphen_values = true)]
        app: String,
        #[arg(required_unless_present = "stdin", value_name = "KEY=VALUE")]
        vars: Vec<String>,
        #[arg(long)]
        no_restart: bool,
        /// The values are base64 (Dokku's flag: any bytes, no shell quoting)
        #[arg(long)]
        encoded: bool,
        /// Read KEY=VALUE lines (.env format) from standard input: values stay off command lines
        #[arg(long)]
        stdin: bool,
    },
    #[command(name = "config:unset", about = "Unset config vars; makes a new release and restarts the processes")]
    ConfigUnset {
        #[arg(allow_hyphen_values = true)]
        app: String,
        #[arg(required = true)]
        keys: Vec<String>,
        #[arg(long)]
        no_restart: bool,
    },
    #[command(name = "config:get", about = "Print one config var")]
    ConfigGet {
        #[arg(allow_hyphen_values = true)]
        app: String,
        key: String,
    },
    #[command(name = "config:show", about = "Print an app's config vars")]
    ConfigShow {
        #[arg(allow_hyphen_values = true)]
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "ps:scale", about = "Set how many containers each process type runs, e.g. web=2 worker=1")]
    PsScale {
        app: String,
        #[arg(required = true, value_name = "TYPE=COUNT")]
        counts: Vec<String>,
    },
    #[command(name = "ps:restart", about = "Restart the processes with zero downtime")]
    PsRestart { app: String },
    #[command(name = "ps:stop", about = "Stop the processes")]
    PsStop { app: String },
    #[command(name = "ps:start", about = "Start the processes of the current release")]
    PsStart { app: String },
    #[command(name = "ps:report", about = "Show the processes")]
    PsReport {
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "ps:inspect", about = "The engine's view of the app's containers (JSON)")]
    PsInspect { app: String },
    #[command(name = "ps:rebuild", about = "Build the deploy branch's current revision again; zero downtime")]
    PsRebuild { app: String },
    #[command(about = "List the releases")]
    Releases {
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(about = "Go back to an earlier release (default: the one before the current)")]
    Rollback { app: String, release: Option<String> },
    #[command(about = "Show the processes' logs")]
    Logs {
        app: String,
        /// Follow
        #[arg(short = 't', long)]
        tail: bool,
        #[arg(short = 'n', long)]
        num: Option<usize>,
        #[arg(short = 'p', long = "ps")]
        process_type: Option<String>,
        /// The router's access and error logs of the app instead (nginx:access-logs)
        #[arg(long, conflicts_with_all = ["tail", "process_type"])]
        router: bool,
    },
    #[command(about = "Run a one-off command in a container of the current release")]
    Run {
        app: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    #[command(name = "domains:add")]
    DomainsAdd { app: String, domain: String },
    #[command(name = "domains:remove")]
    DomainsRemove { app: String, domain: String },
    #[command(name = "domains:report")]
    DomainsReport {
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "stack:list", about = "List the stacks; * marks the one the app (or every app) builds on")]
    StackList { app: Option<String> },
    #[command(
        name = "stack:set",
        about = "Choose the stack an app (or --global: every app) builds on from its next deploy"
    )]
    StackSet {
        /// The app, or --global
        #[arg(allow_hyphen_values = true)]
        app: String,
        /// A stack's name or Debian code name (see stack:list)
        name: String,
    },
    #[command(name = "checks:disable")]
    ChecksDisable { app: String },
    #[command(name = "checks:enable")]
    ChecksEnable { app: String },
    #[command(name = "checks:skip", about = "Only wait for the web port, skip app.json checks")]
    ChecksSkip { app: String },
    #[command(name = "builds:list", about = "The builds of an app (every push is one)")]
    BuildsList {
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "logs:failed", about = "The output of the app's last failed build or deploy")]
    LogsFailed { app: String },
    #[command(name = "builds:output", about = "A build's full log (default: the latest)")]
    BuildsOutput { app: String, id: Option<i64> },
    #[command(name = "builds:cancel", about = "Stop the running build; its push is rejected")]
    BuildsCancel { app: String },
    #[command(
        name = "letsencrypt:set",
        about = "Let's Encrypt settings: --global email ADDRESS, --global server URL|staging|production, --global renew-within DAYS, APP email ADDRESS"
    )]
    LetsencryptSet {
        /// The app, or --global
        #[arg(allow_hyphen_values = true)]
        app: String,
        key: String,
        value: String,
    },
    #[command(
        name = "letsencrypt:enable",
        about = "Get a Let's Encrypt certificate for the app's hosts, renewed from now on"
    )]
    LetsencryptEnable { app: String },
    #[command(name = "letsencrypt:disable", about = "Stop renewing and remove the app's certificate: HTTP only")]
    LetsencryptDisable { app: String },
    #[command(name = "letsencrypt:list", about = "Apps with Let's Encrypt: domains, expiry, last renewal, last error")]
    LetsencryptList,
    #[command(
        name = "letsencrypt:auto-renew",
        about = "Renew the certificates (of APP, or every app) that expire within renew-within days"
    )]
    LetsencryptAutoRenew { app: Option<String> },
    #[command(
        name = "cron:list",
        about = "The app's app.json cron tasks (--global: the platform's) with their last and next run"
    )]
    CronList {
        #[arg(allow_hyphen_values = true)]
        app: String,
    },
    #[command(name = "cron:run", about = "Run a cron task now (not while its previous run still runs)")]
    CronRun {
        /// The app, or --global
        #[arg(allow_hyphen_values = true)]
        app: String,
        id: String,
        /// The daemon's scheduler runs it (recorded as scheduled)
        #[arg(long, hide = true)]
        scheduled: bool,
    },
    #[command(name = "cron:runs", about = "The recorded runs of the app's cron tasks (or of one)")]
    CronRuns {
        #[arg(allow_hyphen_values = true)]
        app: String,
        id: Option<String>,
    },
    #[command(name = "cron:output", about = "A cron run's output (default: the newest run's)")]
    CronOutput {
        #[arg(allow_hyphen_values = true)]
        app: String,
        run: Option<i64>,
    },
    #[command(name = "cron:report", about = "Cron tasks, last and next run, of an app (or every app)")]
    CronReport { app: Option<String> },
    #[command(
        name = "certs:add",
        about = "Serve the app over HTTPS with this certificate and key (over SSH: a tar of them on stdin)"
    )]
    CertsAdd {
        app: String,
        /// PEM certificate chain (on this host)
        #[arg(requires = "key")]
        cert: Option<PathBuf>,
        /// Its PEM private key
        key: Option<PathBuf>,
    },
    #[command(name = "certs:remove", about = "Remove the app's certificate: HTTP only")]
    CertsRemove { app: String },
    #[command(name = "certs:report", about = "The app's certificate: names, issuer, expiry, hosts served")]
    CertsReport { app: String },
    #[command(name = "acl:add", about = "Let a developer key use an app (admins only)")]
    AclAdd { app: String, key: String },
    #[command(name = "acl:remove", about = "Take an app away from a developer key (admins only)")]
    AclRemove { app: String, key: String },
    #[command(name = "acl:list", about = "The app's owner and the keys granted it")]
    AclList { app: String },
    #[command(
        name = "git:from-image",
        about = "Deploy a prebuilt image from the Docker engine (its /app Procfile and app.json apply)"
    )]
    GitFromImage { app: String, image: String },
    #[command(
        name = "git:from-archive",
        about = "Deploy a .tar, .tar.gz or .zip from an http(s) URL, or - for standard input"
    )]
    GitFromArchive {
        app: String,
        #[arg(allow_hyphen_values = true, value_name = "URL|-")]
        source: String,
    },
    #[command(name = "ports:list", about = "The app's port mappings (or the default one)")]
    PortsList { app: String },
    #[command(name = "ports:add", about = "Add http:HOST_PORT:CONTAINER_PORT mappings; a new release")]
    PortsAdd {
        app: String,
        #[arg(required = true, value_name = "http:HOST:CONTAINER")]
        maps: Vec<String>,
    },
    #[command(name = "ports:set", about = "Replace the app's port mappings; a new release")]
    PortsSet {
        app: String,
        #[arg(required = true, value_name = "http:HOST:CONTAINER")]
        maps: Vec<String>,
    },
    #[command(name = "ports:remove", about = "Remove mappings (or every mapping of a host port); a new release")]
    PortsRemove {
        app: String,
        #[arg(required = true, value_name = "MAP|HOST_PORT")]
        maps: Vec<String>,
    },
    #[command(name = "ports:clear", about = "Back to the default mapping; a new release")]
    PortsClear { app: String },
    #[command(name = "ports:report", about = "The app's port mappings, set and in force")]
    PortsReport {
        app: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    #[command(name = "buildpacks:set", about = "Build the app with this buildpack (or replace the one at --index N)")]
    BuildpacksSet {
        app: String,
        url: String,
        #[arg(long)]
        index: Option<usize>,
    },
    #[command(name = "buildpacks:add", about = "Add a buildpack to the app's list (at the end, or at --index N)")]
    BuildpacksAdd {
        app: String,
        url: String,
        #[arg(long)]
        index: Option<usize>,
    },
    #[command(name = "buildpacks:remove", about = "Remove a buildpack from the app's list")]
    BuildpacksRemove { app: String, url: String },
    #[command(
        name = "buildpacks:clear",
        about = "Empty the app's list: its .buildpacks, app.json or detection choose"
    )]
    BuildpacksClear { app: String },
    #[command(name = "buildpacks:list", about = "The app's buildpacks, in order")]
    BuildpacksList { app: String },
    #[command(name = "buildpacks:report", about = "The app's buildpacks and what its release was built with")]
    BuildpacksReport { app: String },
    #[command(flatten)]
    Postgres(super::services::PostgresCommand),
    #[command(flatten)]
    Redis(super::services::RedisCommand),
    #[command(flatten)]
    Cluster(super::cluster::ClusterCommand),
}

/// Platform commands for this host only (they take host paths or change global settings).
#[derive(Subcommand, Debug)]
pub enum HostCommand {
    #[command(
        name = "apps:destroy",
        about = "Remove an app and everything it has (containers, images, volumes, routes, state)"
    )]
    AppsDestroy {
        app: String,
        /// Do not ask (required when not on a terminal)
        #[arg(long)]
        force: bool,
    },
    #[command(about = "Build a directory or tarball and deploy it with zero downtime")]
    Deploy { app: String, source: PathBuf },
    #[command(name = "domains:set-global", about = "Apps answer at APP.DOMAIN")]
    DomainsSetGlobal { domain: String },
    #[command(name = "resource:limit", about = "Memory/CPU limits for the app's containers (from the next restart)")]
    ResourceLimit {
        app: String,
        #[arg(long)]
        memory: Option<String>,
        #[arg(long)]
        cpu: Option<String>,
        #[arg(long)]
        process_type: Option<String>,
    },
    #[command(
        name = "storage:mount",
        about = "Mount a host directory into the app's containers (from the next restart)"
    )]
    StorageMount { app: String, mount: String },
    #[command(
        name = "settings:set",
        about = "Set a platform setting: keep-releases N, stop-timeout SECS, git.auto-create true|false, max-scale N, pids-limit N, https-listen IP:PORT, ..."
    )]
    SettingsSet { key: String, value: String },
    #[command(name = "settings:show", about = "Show the platform settings")]
    SettingsShow,
    #[command(
        name = "ps:restore",
        about = "Bring an app (or --all) back at its scale after a reboot; stopped apps stay stopped"
    )]
    PsRestore {
        /// The app, or --all
        #[arg(allow_hyphen_values = true)]
        app: String,
    },
    #[command(
        about = "What runs and what is down: the daemon, router, sshd, scheduler, each app's processes, cron tasks, disk"
    )]
    Report,
    #[command(about = "Free disk: release images beyond keep-releases, exited containers, untagged images")]
    Cleanup,
    #[command(name = "cron:due", hide = true, about = "Print the cron tasks due now (the daemon's scheduler)")]
    CronDue,
    #[command(name = "ssh-command", hide = true)]
    SshDispatch {
        /// The key's role (in its authorized_keys line)
        #[arg(long, value_enum, default_value = "admin")]
        role: Role,
        key: String,
    },
    #[command(name = "git-hook", hide = true)]
    GitHook { app: String },
    #[command(flatten)]
    PostgresHost(super::services::PostgresHostCommand),
    #[command(flatten)]
    RedisHost(super::services::RedisHostCommand),
    #[command(flatten)]
    ClusterHost(super::cluster::ClusterHostCommand),
}

/// Keys and install: as root, on the git user's files (not the platform's state).
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    #[command(name = "ssh-keys:add", about = "Let a key push (and run app commands over ssh)")]
    SshKeysAdd {
        name: String,
        /// The public key file, or - for standard input [default: -]
        keyfile: Option<PathBuf>,
        /// admin: everything SSH offers (Dokku's only kind); developer: its own and granted apps
        #[arg(long, value_enum, default_value = "admin")]
        role: Role,
    },
    #[command(name = "ssh-keys:remove")]
    SshKeysRemove { name: String },
    #[command(name = "ssh-keys:list")]
    SshKeysList,
    #[command(
        about = "Set up git push: the git user, its data dir, an sshd of slipway's own, and the daemon (at boot too)"
    )]
    Install {
        /// Start a dedicated sshd on 127.0.0.1:PORT (its own host key and config under the data dir)
        #[arg(long)]
        sshd_port: Option<u16>,
        /// Address for that sshd
        #[arg(long, default_value = "127.0.0.1")]
        sshd_address: String,
        /// Do not start `slipway daemon` (nor write its systemd unit): run it yourself
        #[arg(long)]
        no_daemon: bool,
    },
}

/// What an app command touches, for the caller's access check over SSH (an error: a name
/// that cannot be one).
pub fn need(command: &AppCommand) -> Result<Need> {
    use AppCommand as C;
    let app = |a: &str| if a == GLOBAL { Need::Admin } else { Need::App(a.to_string()) };
    Ok(match command {
        C::Postgres(c) => c.need()?,
        C::Redis(c) => c.need()?,
        C::Cluster(c) => c.need(),
        C::AppsList { .. } | C::StackList { app: None } => Need::Nothing,
        C::StackList { app: Some(a) } | C::StackSet { app: a, .. } => app(a),
        C::AppsCreate { .. } => Need::Create,
        C::ConfigSet { app: a, .. } | C::ConfigUnset { app: a, .. } | C::ConfigGet { app: a, .. } => app(a),
        C::ConfigShow { app: a, .. } => app(a),
        // Whether an app exists is no secret of its own: a developer learns only of apps it sees.
        C::AppsExists { .. } => Need::Nothing,
        C::DomainsAdd { app, domain } => Need::Domain { app: app.clone(), domain: domain.clone() },
        C::AclAdd { .. } | C::AclRemove { .. } | C::CronReport { app: None } => Need::Admin,
        C::LetsencryptList | C::LetsencryptAutoRenew { app: None } => Need::Admin,
        C::LetsencryptSet { app: a, .. } => app(a),
        C::AppsInfo { app: a }
        | C::AppsReport { app: a, .. }
        | C::AppsClone { old: a, .. }
        | C::AppsRename { old: a, .. }
        | C::PsInspect { app: a }
        | C::PsRebuild { app: a }
        | C::LogsFailed { app: a }
        | C::PsScale { app: a, .. }
        | C::PsRestart { app: a }
        | C::PsStop { app: a }
        | C::PsStart { app: a }
        | C::PsReport { app: a, .. }
        | C::Releases { app: a, .. }
        | C::Rollback { app: a, .. }
        | C::Logs { app: a, .. }
        | C::Run { app: a, .. }
        | C::DomainsRemove { app: a, .. }
        | C::DomainsReport { app: a, .. }
        | C::ChecksDisable { app: a }
        | C::ChecksEnable { app: a }
        | C::ChecksSkip { app: a }
        | C::BuildsList { app: a, .. }
        | C::BuildsOutput { app: a, .. }
        | C::BuildsCancel { app: a }
        | C::LetsencryptEnable { app: a }
        | C::LetsencryptDisable { app: a }
        | C::LetsencryptAutoRenew { app: Some(a) }
        | C::CertsAdd { app: a, .. }
        | C::CertsRemove { app: a }
        | C::CertsReport { app: a }
        | C::CronList { app: a }
        | C::CronRun { app: a, .. }
        | C::CronRuns { app: a, .. }
        | C::CronOutput { app: a, .. }
        | C::CronReport { app: Some(a) }
        | C::AclList { app: a }
        | C::PortsList { app: a }
        | C::PortsAdd { app: a, .. }
        | C::PortsSet { app: a, .. }
        | C::PortsRemove { app: a, .. }
        | C::PortsClear { app: a }
        | C::PortsReport { app: a, .. }
        | C::GitFromImage { app: a, .. }
        | C::GitFromArchive { app: a, .. }
        | C::BuildpacksSet { app: a, .. }
        | C::BuildpacksAdd { app: a, .. }
        | C::BuildpacksRemove { app: a, .. }
        | C::BuildpacksClear { app: a }
        | C::BuildpacksList { app: a }
        | C::BuildpacksReport { app: a } => app(a),
    })
}

/// Runs an app command; returns the exit code.
pub async fn run_app(p: &Platform, command: AppCommand) -> Result<i32> {
    use AppCommand as C;
    match command {
        C::AppsCreate { app } => cmd::apps::create(p, &app)?,
        C::AppsList { format } => cmd::apps::list(p, format)?,
        C::AppsInfo { app } => cmd::apps::info(p, &app).await?,
        C::AppsExists { app } => return cmd::apps::exists(p, &app),
        C::AppsRename { old, new } => {
            cmd::apps::rename(p, &old, &new).await?;
            // The moved repo's hook names the app: written again for its new name.
            if crate::gitpush::dispatch::repo_path(&p.data_dir, &new).is_dir() {
                crate::gitpush::dispatch::ensure_repo(&p.data_dir, &new, &std::env::current_exe()?)?;
            }
        }
        C::AppsClone { old, new } => {
            let owner = p.caller.as_ref().map(|c| c.key.as_str());
            return crate::gitpush::clone::clone_app(&p.data_dir, &old, &new, owner, &p.actor);
        }
        C::AppsReport { app, format } => cmd::apps::report(p, &app, format).await?,
        C::ConfigSet { app, vars, no_restart, encoded, stdin } => {
            let mut assigned = cmd::config::assignments(&vars, encoded)?;
            if stdin {
                assigned.extend(cmd::config::from_stdin()?);
            }
            cmd::config::set(p, &app, &assigned, no_restart).await?
        }
        C::ConfigUnset { app, keys, no_restart } => cmd::config::unset(p, &app, &keys, no_restart).await?,
        C::ConfigGet { app, key } => cmd::config::get(p, &app, &key)?,
        C::ConfigShow { app, format } => cmd::config::show(p, &app, format)?,
        C::PsScale { app, counts } => cmd::ps::scale(p, &app, &counts).await?,
        C::PsRestart { app } | C::PsStart { app } => cmd::ps::restart(p, &app).await?,
        C::PsStop { app } => cmd::ps::stop(p, &app).await?,
        C::PsReport { app, format } => cmd::ps::report(p, &app, format).await?,
        C::PsInspect { app } => cmd::ps::inspect(p, &app).await?,
        C::PsRebuild { app } => {
            p.app_state(&app)?;
            return crate::gitpush::hook::rebuild(&p.data_dir, &app, &p.actor);
        }
        C::Releases { app, format } => cmd::releases::releases(p, &app, format)?,
        C::Rollback { app, release } => cmd::releases::rollback(p, &app, release.as_deref()).await?,
        C::Logs { app, router: true, num, .. } => cmd::logs::router_logs(p, &app, num.unwrap_or(100)).await?,
        C::Logs { app, tail, num, process_type, router: false } => {
            cmd::logs::logs(p, &app, tail, num, process_type.as_deref()).await?
        }
        C::Run { app, command } => return cmd::logs::run(p, &app, command).await,
        C::DomainsAdd { app, domain } => cmd::domains::add(p, &app, &domain).await?,
        C::DomainsRemove { app, domain } => cmd::domains::remove(p, &app, &domain).await?,
        C::DomainsReport { app, format } => cmd::domains::report(p, &app, format)?,
        C::StackList { app } => cmd::stacks::list(p, app.as_deref()).await?,
        C::StackSet { app, name } => cmd::stacks::set(p, &app, &name)?,
        C::ChecksDisable { app } => cmd::checks::set(p, &app, ChecksMode::Disabled)?,
        C::ChecksEnable { app } => cmd::checks::set(p, &app, ChecksMode::Enabled)?,
        C::ChecksSkip { app } => cmd::checks::set(p, &app, ChecksMode::Skipped)?,
        C::BuildsList { app, format } => cmd::builds::list(p, &app, format)?,
        C::LogsFailed { app } => cmd::builds::failed(p, &app)?,
        C::BuildsOutput { app, id } => cmd::builds::output(p, &app, id)?,
        C::BuildsCancel { app } => cmd::builds::cancel(p, &app)?,
        C::CertsAdd { app, cert, key } => {
            let files = cert.as_deref().zip(key.as_deref());
            cmd::certs::add(p, &app, files).await?
        }
        C::CertsRemove { app } => cmd::certs::remove(p, &app).await?,
        C::LetsencryptSet { app, key, value } => cmd::letsencrypt::set(p, &app, &key, &value)?,
        C::LetsencryptEnable { app } => cmd::letsencrypt::enable(p, &app).await?,
        C::LetsencryptDisable { app } => cmd::letsencrypt::disable(p, &app).await?,
        C::LetsencryptList => cmd::letsencrypt::list(p)?,
        C::LetsencryptAutoRenew { app } => return cmd::letsencrypt::auto_renew(p, app.as_deref()).await,
        C::CertsReport { app } => cmd::certs::report(p, &app)?,
        C::CronList { app } => cmd::cron::list(p, &app)?,
        C::CronRun { app, id, scheduled } => return cmd::cron::run(p, &app, &id, scheduled).await,
        C::CronRuns { app, id } => cmd::cron::history(p, &app, id.as_deref())?,
        C::CronOutput { app, run } => cmd::cron::run_output(p, &app, run)?,
        C::CronReport { app } => cmd::cron::report(p, app.as_deref())?,
        C::AclAdd { app, key } => cmd::acl::add(p, &app, &key)?,
        C::AclRemove { app, key } => cmd::acl::remove(p, &app, &key)?,
        C::AclList { app } => cmd::acl::list(p, &app)?,
        C::PortsList { app } => cmd::ports::list(p, &app).await?,
        C::PortsAdd { app, maps } => cmd::ports::add(p, &app, &maps).await?,
        C::PortsSet { app, maps } => cmd::ports::set(p, &app, &maps).await?,
        C::PortsRemove { app, maps } => cmd::ports::remove(p, &app, &maps).await?,
        C::PortsClear { app } => cmd::ports::clear(p, &app).await?,
        C::PortsReport { app, format } => cmd::ports::report(p, &app, format).await?,
        C::GitFromImage { app, image } => cmd::git::from_image(p, &app, &image).await?,
        C::GitFromArchive { app, source } => cmd::git::from_archive(p, &app, &source).await?,
        C::BuildpacksSet { app, url, index } => cmd::buildpacks::set(p, &app, &url, index)?,
        C::BuildpacksAdd { app, url, index } => cmd::buildpacks::add(p, &app, &url, index)?,
        C::BuildpacksRemove { app, url } => cmd::buildpacks::remove(p, &app, &url)?,
        C::BuildpacksClear { app } => cmd::buildpacks::clear(p, &app)?,
        C::BuildpacksList { app } => cmd::buildpacks::list(p, &app)?,
        C::BuildpacksReport { app } => cmd::buildpacks::report(p, &app)?,
        C::Postgres(c) => return c.run(p).await,
        C::Redis(c) => return c.run(p).await,
        C::Cluster(c) => return c.run(p).await,
    }
    Ok(0)
}

/// Runs a host-only platform command; returns the exit code.
pub async fn run_host(p: &Platform, command: HostCommand) -> Result<i32> {
    use HostCommand as C;
    match command {
        C::AppsDestroy { app, force } => cmd::apps::destroy(p, &app, force).await?,
        C::Deploy { app, source } => cmd::releases::deploy(p, &app, &source).await?,
        C::DomainsSetGlobal { domain } => cmd::domains::set_global(p, &domain)?,
        C::ResourceLimit { app, memory, cpu, process_type } => {
            cmd::settings::limit(p, &app, memory.as_deref(), cpu.as_deref(), process_type.as_deref())?
        }
        C::StorageMount { app, mount } => cmd::settings::mount(p, &app, &mount)?,
        C::SettingsSet { key, value } => cmd::settings::set(p, &key, &value)?,
        C::SettingsShow => cmd::settings::show(p)?,
        C::PsRestore { app } => cmd::ps::restore(p, &app).await?,
        C::Report => {
            let mut services = vec![crate::platform::daemon::router_service(&p.data_dir)];
            for sshd in crate::gitpush::sshd::installed_for(&p.data_dir) {
                services.push(Box::new(sshd));
            }
            return cmd::report::report(p, &services).await;
        }
        C::CronDue => cmd::cron::due(p)?,
        C::Cleanup => cmd::report::cleanup(p).await?,
        C::SshDispatch { key, role } => return super::ssh_dispatch(p, Caller { key, role }).await,
        C::GitHook { app } => return crate::gitpush::hook::pre_receive(&p.data_dir, &app),
        C::PostgresHost(c) => return c.run(p).await,
        C::RedisHost(c) => return c.run(p).await,
        C::ClusterHost(c) => return c.run(p).await,
    }
    Ok(0)
}

/// Runs a key or install command (as root, on the git user's files).
pub fn run_keys(command: KeyCommand, git_user: &str, data_dir: &std::path::Path) -> Result<i32> {
    use crate::gitpush::keys::{read_key_source, AuthorizedKeys};
    // The key file is read as the caller; the git user's files are then changed as that user.
    let as_git_user = || -> Result<()> {
        match crate::engine::user::AppUser::lookup(git_user) {
            Some(u) if crate::sys::is_root() => crate::sys::drop_to(&u.name, u.uid, u.gid),
            _ => Ok(()),
        }
    };
    match command {
        KeyCommand::SshKeysAdd { name, keyfile, role } => {
            let keys = AuthorizedKeys::for_user(git_user)?;
            let text = read_key_source(keyfile.as_deref())?;
            as_git_user()?;
            let exe = std::env::current_exe()?;
            let command =
                format!("{} --data-dir {} ssh-command --role {}", exe.display(), data_dir.display(), role.as_str());
            let entry = keys.add(&name, &text, &command)?;
            crate::output::header(format!(
                "Added key {name} ({}, {}) for {git_user}",
                entry.key.fingerprint(),
                role.as_str()
            ));
        }
        KeyCommand::SshKeysRemove { name } => {
            as_git_user()?;
            AuthorizedKeys::for_user(git_user)?.remove(&name)?;
            crate::output::header(format!("Removed key {name}"));
        }
        KeyCommand::SshKeysList => {
            as_git_user()?;
            for e in AuthorizedKeys::for_user(git_user)?.entries()? {
                println!("{:<20} {:<10} {} {}", e.name, e.role.as_str(), e.key.kind, e.key.fingerprint());
            }
        }
        KeyCommand::Install { sshd_port, sshd_address, no_daemon } => {
            crate::gitpush::install::install(data_dir, git_user, sshd_port, &sshd_address)?;
            if !no_daemon {
                let exe = std::env::current_exe()?;
                crate::platform::daemon::boot::ensure_running(&exe, data_dir, git_user)?;
            }
        }
    }
    Ok(0)
}
