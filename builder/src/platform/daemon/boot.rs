//! Keeping `slipway daemon` running across reboots: where systemd runs, `slipway install`
//! writes a unit for the data dir's daemon (Restart=always) and starts it; elsewhere it starts
//! the daemon itself, detached, its log in /var/log/slipway, and says what to run at boot.
//! `slipway daemon --stop` stops it either way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{run_path, status};
use crate::output;

const UNIT_DIR: &str = "/etc/systemd/system";
const LOG_DIR: &str = "/var/log/slipway";

/// Whether systemd manages this machine (its runtime directory exists only then).
pub fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `slipway.service` for the default data dir; `slipway-HASH.service` for another.
pub fn unit_name(data_dir: &Path) -> String {
    if data_dir == Path::new("/var/lib/slipway") {
        return "slipway.service".into();
    }
    let hashed = run_path(data_dir, "slipway");
    format!("{}.service", hashed.file_name().expect("a name").to_string_lossy())
}

/// The daemon's log when it runs without systemd.
pub fn log_path(data_dir: &Path) -> PathBuf {
    Path::new(LOG_DIR).join(run_path(data_dir, "daemon").with_extension("log").file_name().expect("a name"))
}

/// A path systemd's ExecStart takes as one word (no quoting needed, nothing it expands).
fn plain(path: &Path) -> Result<&str> {
    let text = path.to_str().filter(|t| t.starts_with('/'));
    match text {
        Some(t) if t.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b)) => Ok(t),
        _ => bail!(
            "{} must be an absolute path of letters, digits and / . _ - + for the daemon's systemd unit",
            path.display()
        ),
    }
}

/// The systemd unit that keeps the daemon of `data_dir` running.
pub fn unit_text(exe: &Path, data_dir: &Path, git_user: &str) -> Result<String> {
    let (exe, data) = (plain(exe)?, plain(data_dir)?);
    if !git_user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        bail!("{git_user:?} is not a user name systemd can take");
    }
    Ok(format!(
        "# Written by slipway install: the router, sshd, app restore and scheduler for {data}\n\
         [Unit]\n\
         Description=slipway daemon for {data}\n\
         After=network-online.target docker.service\n\
         Wants=network-online.target docker.service\n\n\
         [Service]\n\
         ExecStart={exe} --data-dir {data} daemon\n\
         Environment=SLIPWAY_GIT_USER={git_user}\n\
         Restart=always\n\
         RestartSec=1\n\
         # The daemon stops nginx and sshd itself on SIGTERM; the rest is killed after that.\n\
         KillMode=mixed\n\
         TimeoutStopSec=30\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    ))
}

/// Makes sure the daemon of `data_dir` runs now and after a reboot.
pub fn ensure_running(exe: &Path, data_dir: &Path, git_user: &str) -> Result<()> {
    if systemd_runs() {
        let name = unit_name(data_dir);
        let path = Path::new(UNIT_DIR).join(&name);
        std::fs::write(&path, unit_text(exe, data_dir, git_user)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        systemctl(&["daemon-reload"])?;
        systemctl(&["enable", &name])?;
        // A daemon of an older binary or unit goes; systemd starts this one.
        systemctl(&["restart", &name])?;
        let pid = wait_for_status(data_dir, None, &format!("see journalctl -u {name}"))?;
        output::header(format!("slipway daemon runs (pid {pid}) as {name}: systemd starts it at boot"));
        return Ok(());
    }
    if let Some(running) = status(data_dir) {
        output::header(format!("slipway daemon already runs (pid {})", running.pid));
    } else {
        let pid = start_detached(exe, data_dir, git_user)?;
        output::header(format!("Started slipway daemon (pid {pid}); its log is {}", log_path(data_dir).display()));
    }
    output::warn(format!(
        "systemd does not run here, so nothing starts the daemon at boot: have your init run `{} --data-dir {} daemon` as root \
         (for example from /etc/rc.local, or a root crontab line `@reboot ...`)",
        exe.display(),
        data_dir.display()
    ));
    Ok(())
}

fn systemctl(args: &[&str]) -> Result<()> {
    let out = Command::new("systemctl").args(args).output().context("cannot run systemctl")?;
    if !out.status.success() {
        bail!("systemctl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The daemon, in a session of its own (it outlives this command), its output appended to its
/// log; returns its pid once it answers.
fn start_detached(exe: &Path, data_dir: &Path, git_user: &str) -> Result<u32> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    use std::os::unix::process::CommandExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(LOG_DIR)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(log_path(data_dir))?;
    let mut command = Command::new(exe);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("daemon")
        .env("SLIPWAY_GIT_USER", git_user)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of this process.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().context("cannot start slipway daemon")?;
    let where_to_look = format!("see {}", log_path(data_dir).display());
    wait_for_status(data_dir, Some(&mut child), &where_to_look)
}

/// The daemon's pid once it answers (up to 30 s); an error naming `where_to_look` when it does
/// not, or when `child` (the daemon, started here) exits meanwhile.
fn wait_for_status(data_dir: &Path, mut child: Option<&mut std::process::Child>, where_to_look: &str) -> Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(running) = status(data_dir) {
            return Ok(running.pid);
        }
        if let Some(exit) = child.as_mut().map(|c| c.try_wait()).transpose()?.flatten() {
            bail!("slipway daemon exited at once ({exit}); {where_to_look}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("slipway daemon did not answer within 30 s; {where_to_look}")
}

/// `slipway daemon --stop`: stops the daemon of `data_dir` (through systemd when its unit is
/// there), and with it the router and sshd; waits until it is gone.
pub fn stop(data_dir: &Path) -> Result<i32> {
    let unit = Path::new(UNIT_DIR).join(unit_name(data_dir));
    if systemd_runs() && unit.is_file() {
        systemctl(&["stop", &unit_name(data_dir)])?;
        output::header(format!("Stopped {} (systemd starts it again at boot)", unit_name(data_dir)));
        return Ok(0);
    }
    let Some(running) = status(data_dir) else {
        output::header("slipway daemon is not running");
        return Ok(0);
    };
    let pid = running.pid as i32;
    // SAFETY: a signal to the pid the daemon gave for itself over its root-only socket.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while unsafe { libc::kill(pid, 0) } == 0 || status(data_dir).is_some() {
        if Instant::now() > deadline {
            bail!("slipway daemon (pid {pid}) did not stop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    output::header(format!("Stopped slipway daemon (pid {pid}) and the router and sshd it ran"));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_daemon_of_its_data_dir_and_restarts_it() {
        let unit = unit_text(Path::new("/usr/local/bin/slipway"), Path::new("/var/lib/slipway"), "slipway").unwrap();
        assert!(unit.contains("\nExecStart=/usr/local/bin/slipway --data-dir /var/lib/slipway daemon\n"), "{unit}");
        assert!(unit.contains("\nRestart=always\n") && unit.contains("\nWantedBy=multi-user.target\n"));
        assert_eq!(unit_name(Path::new("/var/lib/slipway")), "slipway.service");
        let other = unit_name(Path::new("/srv/other"));
        assert!(other.starts_with("slipway-") && other.ends_with(".service") && other.len() > 20, "{other}");
        for (exe, data) in [("/bin/slip way", "/d"), ("/bin/s", "rel/dir"), ("/bin/s", "/d/$HOME"), ("/bin/s", "/d;x")]
        {
            assert!(unit_text(Path::new(exe), Path::new(data), "slipway").is_err(), "{exe} {data}");
        }
        assert!(unit_text(Path::new("/bin/s"), Path::new("/d"), "a b").is_err());
    }
}
