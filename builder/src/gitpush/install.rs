//! `slipway install`: the git user (in the docker group), its home and `.ssh`, the data dir
//! given to it (mode 0700), and optionally an sshd of slipway's own on a port (its own host key
//! and config in /etc/slipway, its pid file in /run/slipway: root's, not the git user's; the
//! system's sshd is left alone, and works too: keys go in the git user's
//! `~/.ssh/authorized_keys` either way).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::engine::user::AppUser;
use crate::output;

pub fn install(data_dir: &Path, user: &str, sshd_port: Option<u16>, address: &str) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("slipway install creates a system user: run it as root");
    }
    if AppUser::lookup(user).is_none() {
        let out = shadow_tool("useradd", &["--create-home", "--shell", "/bin/bash", "--user-group", user])?;
        // Another install may have created it meanwhile.
        if !out.status.success() && AppUser::lookup(user).is_none() {
            bail!("useradd {user} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        output::header(format!("Created the user {user}"));
    }
    // nginx's workers run as a user of their own when root runs the router (`slipway daemon`).
    let router_user = crate::platform::router::ROUTER_USER;
    if AppUser::lookup(router_user).is_none() {
        let args = ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", router_user];
        let out = shadow_tool("useradd", &args)?;
        if !out.status.success() && AppUser::lookup(router_user).is_none() {
            bail!("useradd {router_user} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        output::header(format!("Created the user {router_user} (nginx's workers; not in the docker group)"));
    }
    // Builds and deploys talk to Docker. A `*` password: no password login, but not a locked
    // account, which sshd would refuse even for key logins.
    let docker_group = AppUser::group_exists("docker");
    if !docker_group {
        output::warn(format!("there is no docker group: {user} can only build if it may use the Docker socket"));
    }
    let args: &[&str] = if docker_group { &["-aG", "docker", "-p", "*", user] } else { &["-p", "*", user] };
    let out = shadow_tool("usermod", args)?;
    if !out.status.success() {
        bail!(
            "usermod could not put {user} in the docker group and allow its key logins: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let owner = AppUser::lookup(user).context("the git user vanished")?;
    let home = crate::gitpush::keys::home_of(user)?;
    std::fs::create_dir_all(home.join(".ssh"))?;
    for p in [home.as_path(), &home.join(".ssh")] {
        owner.chown(p)?;
    }
    std::fs::create_dir_all(data_dir)?;
    // The data dir and everything in it belong to the git user: hooks run as that user. Handed
    // over once, deepest first (while its top is still root's, nothing in it can be swapped for
    // a link), never following links; a data dir the git user has is left as it is.
    if !owner.owns(data_dir) {
        for entry in walkdir::WalkDir::new(data_dir).contents_first(true) {
            owner.chown(entry?.path())?;
        }
    }
    let mut parent = data_dir.parent();
    while let Some(p) = parent {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p)?.permissions().mode();
        if mode & 0o001 == 0 {
            output::warn(format!("{} is not traversable by {user}; its mode is {:o}", p.display(), mode & 0o777));
        }
        parent = p.parent();
    }
    {
        // Config values and build logs live here: the git user's alone.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
    }
    output::header(format!("Data dir {} belongs to {user} (mode 0700)", data_dir.display()));
    if let Some(port) = sshd_port {
        start_sshd(data_dir, user, address, port)?;
    }
    output::header(format!(
        "Add a key with: slipway ssh-keys:add NAME ~/.ssh/id_ed25519.pub (then git push {user}@HOST:APP main)"
    ));
    Ok(())
}

/// Runs useradd/usermod, again while another of them holds the lock on /etc/passwd (exit
/// status 10: two installs at once).
fn shadow_tool(tool: &str, args: &[&str]) -> Result<std::process::Output> {
    let mut attempts = 0;
    loop {
        let out = Command::new(tool).args(args).output().with_context(|| format!("cannot run {tool}"))?;
        attempts += 1;
        if out.status.code() != Some(10) || attempts == 50 {
            return Ok(out);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// An sshd for slipway only: key authentication for the git user, nothing else.
fn start_sshd(data_dir: &Path, user: &str, address: &str, port: u16) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let sshd = super::sshd::Sshd { port };
    let (dir, pid_file) = (sshd.dir(), sshd.pid_file());
    for d in [dir.as_path(), pid_file.parent().expect("has a parent")] {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(d)?;
        let m = std::fs::symlink_metadata(d)?;
        if !m.is_dir() || std::os::unix::fs::MetadataExt::uid(&m) != 0 {
            bail!("{} must be a directory root owns", d.display());
        }
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let host_key = dir.join("ssh_host_ed25519_key");
    if !host_key.exists() {
        let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&host_key).output()?;
        if !out.status.success() {
            bail!("ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    sshd.terminate();
    let config = format!(
        "# Written by slipway install\nListenAddress {address}:{port}\nHostKey {key}\nPidFile {pid}\nAllowUsers {user}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin no\n\
         UsePAM no\nAllowTcpForwarding no\nX11Forwarding no\nPermitTunnel no\nAllowAgentForwarding no\n\
         AuthorizedKeysFile .ssh/authorized_keys\nLogLevel VERBOSE\n",
        key = host_key.display(),
        pid = pid_file.display()
    );
    let config_path = sshd.config();
    std::fs::write(&config_path, config)?;
    sshd.set_data_dir(data_dir)?;
    sshd.spawn()?;
    output::header(format!(
        "sshd for {user} listens on {address}:{port} (config {}; `slipway daemon` keeps it running)",
        config_path.display()
    ));
    Ok(())
}
