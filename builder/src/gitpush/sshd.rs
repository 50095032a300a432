//! slipway's own sshd for git push: `slipway install --sshd-port PORT` writes its config, host
//! key and the data dir it serves in root's `/etc/slipway/sshd-PORT` and starts it (its pid file
//! and log in root's `/run/slipway`); `slipway daemon` keeps it running as one of its services.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::platform::daemon::Service;

/// The sshd listening on one port.
#[derive(Debug, Clone)]
pub struct Sshd {
    pub port: u16,
}

impl Sshd {
    /// Its config, host key and data-dir file: a directory root owns (never under the git
    /// user's data dir, where a pid file could name any process to root).
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(format!("/etc/slipway/sshd-{}", self.port))
    }

    pub fn config(&self) -> PathBuf {
        self.dir().join("sshd_config")
    }

    pub fn pid_file(&self) -> PathBuf {
        PathBuf::from(format!("/run/slipway/sshd-{}.pid", self.port))
    }

    /// The pid of its listener, when one runs with this config (a pid file naming another
    /// process, or nothing, is no sshd).
    pub fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok().filter(|p| *p > 1)?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        (cmdline.contains("sshd") && cmdline.contains(&*self.config().to_string_lossy())).then_some(pid)
    }

    /// Starts it from its config (sshd detaches itself and writes its pid file).
    pub fn spawn(&self) -> Result<()> {
        std::fs::create_dir_all("/run/sshd")?;
        let sshd = crate::sys::which("sshd").unwrap_or_else(|| "/usr/sbin/sshd".into());
        let out = Command::new(&sshd)
            .arg("-f")
            .arg(self.config())
            .arg("-E")
            .arg(self.pid_file().with_extension("log"))
            .output()
            .context("cannot run sshd (apt-get install openssh-server)")?;
        if !out.status.success() {
            bail!("sshd did not start: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// SIGTERM to its listener, if it runs; waits a moment for the port to be free.
    pub fn terminate(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: a signal to the sshd checked above.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while self.pid().is_some() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }

    /// Records which data dir this sshd serves (read by that data dir's daemon).
    pub fn set_data_dir(&self, data_dir: &Path) -> Result<()> {
        let canonical = data_dir.canonicalize().with_context(|| format!("no data dir {}", data_dir.display()))?;
        std::fs::write(self.dir().join("data-dir"), canonical.as_os_str().as_encoded_bytes())?;
        Ok(())
    }
}

/// The sshds `slipway install` made for `data_dir`.
pub fn installed_for(data_dir: &Path) -> Vec<Sshd> {
    let Ok(canonical) = data_dir.canonicalize() else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir("/etc/slipway") else { return Vec::new() };
    let mut found: Vec<Sshd> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("sshd-")?.parse().ok())
        .map(|port| Sshd { port })
        .filter(|s| {
            std::fs::read(s.dir().join("data-dir")).is_ok_and(|d| d == canonical.as_os_str().as_encoded_bytes())
        })
        .filter(|s| s.config().is_file())
        .collect();
    found.sort_by_key(|s| s.port);
    found
}

impl Service for Sshd {
    fn name(&self) -> String {
        format!("sshd on port {}", self.port)
    }

    fn running(&self) -> bool {
        self.pid().is_some()
    }

    fn start(&self) -> Result<()> {
        self.spawn()
    }

    fn stop(&self) -> Result<()> {
        self.terminate();
        Ok(())
    }
}
