//! herokuish's test convention (SPEC sections 3 and 5): start the `web` process with a known
//! `PORT`, request a path on 127.0.0.1, and compare the body with the expected text.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::engine::exec;
use crate::engine::process::ProcessEnv;

/// A started process, stopped (its whole group) when dropped.
pub struct Running {
    pub child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Starts `command` as the web process on `port` (its output goes to our stderr).
pub fn start_web(env: &ProcessEnv, command: &str, port: u16) -> Result<Running> {
    let mut env = env.clone();
    env.vars.insert("PORT".into(), port.to_string());
    env.vars.entry("DYNO".into()).or_insert_with(|| "web.1".into());
    let mut cmd = env.shell(command)?;
    // The app's output goes to our stderr, keeping stdout for results.
    let stderr = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned()?;
    exec::own_group(&mut cmd).stdin(Stdio::null()).stdout(Stdio::from(stderr));
    Ok(Running { child: cmd.spawn().context("cannot start the web process")? })
}

/// Waits until the process answers `path` with 2xx; returns the body and the time it took.
pub fn wait_for_answer(running: &mut Running, port: u16, path: &str, boot: Duration) -> Result<(String, Duration)> {
    let started = Instant::now();
    loop {
        if let Some(status) = running.child.try_wait()? {
            bail!("the web process exited ({}) before it answered on port {port}", exec::describe(status));
        }
        match crate::net::get(port, path, Duration::from_secs(5)) {
            Ok((code, body)) if (200..300).contains(&code) => return Ok((body, started.elapsed())),
            Ok((code, _)) if started.elapsed() >= boot => bail!("GET {path} answered {code}"),
            Err(e) if started.elapsed() >= boot => {
                return Err(anyhow!("the web process did not answer on port {port} within {}s: {e}", boot.as_secs()))
            }
            _ => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}
