//! Running buildpack scripts and app processes as children: each in its own process group, so
//! that a timeout or a Ctrl-C stops the whole tree it started (a `bin/compile` that forks a
//! daemon included), with output passed straight through as it happens.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// How long a stopped process group gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    TimedOut,
    /// We received SIGINT or SIGTERM, passed it on, and the child has ended.
    Interrupted(ExitStatus),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{what} did not finish within {}s and was stopped (raise the limit with --timeout or SLIPWAY_COMPILE_TIMEOUT)", .after.as_secs())]
    TimedOut { what: String, after: Duration },
    #[error("{what} was interrupted")]
    Interrupted { what: String },
    #[error("{what} failed: {}", describe(*.status))]
    Failed { what: String, status: ExitStatus },
    #[error("cannot run {what}: {source}")]
    Spawn { what: String, source: std::io::Error },
}

pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// Puts the command in a process group of its own.
pub fn own_group(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0)
}

fn signal_group(child: &Child, sig: libc::c_int) {
    // The child leads its own group, so its pid is the group id.
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), sig);
    }
}

/// Waits for `child` (spawned with [`own_group`]), stopping its group on timeout, and passing
/// SIGINT/SIGTERM received by this process on to it.
pub fn supervise(child: &mut Child, timeout: Option<Duration>) -> std::io::Result<Ended> {
    let received = Arc::new(AtomicUsize::new(0));
    let ids: Vec<_> = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
        .into_iter()
        .filter_map(|sig| signal_hook::flag::register_usize(sig, received.clone(), sig as usize).ok())
        .collect();
    let started = Instant::now();
    let result = (|| loop {
        if let Some(status) = child.wait_timeout(Duration::from_millis(50))? {
            return Ok(Ended::Exited(status));
        }
        let sig = received.swap(0, Ordering::SeqCst);
        if sig != 0 {
            signal_group(child, sig as libc::c_int);
            return Ok(Ended::Interrupted(stop(child)?));
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            signal_group(child, libc::SIGTERM);
            stop(child)?;
            return Ok(Ended::TimedOut);
        }
    })();
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    result
}

/// After a SIGTERM: waits out the grace period, then SIGKILLs the group.
fn stop(child: &mut Child) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.wait_timeout(STOP_GRACE)? {
        signal_group(child, libc::SIGKILL); // stragglers the leader left behind
        return Ok(status);
    }
    signal_group(child, libc::SIGKILL);
    child.wait()
}

/// Runs `cmd` with its output passed straight through; non-zero exit is an error naming `what`.
pub fn run(cmd: &mut Command, what: &str, timeout: Option<Duration>) -> Result<(), ExecError> {
    let status = run_status(cmd, what, timeout)?;
    if !status.success() {
        return Err(ExecError::Failed { what: what.to_string(), status });
    }
    Ok(())
}

/// Like [`run`], but a non-zero exit is returned rather than an error.
pub fn run_status(cmd: &mut Command, what: &str, timeout: Option<Duration>) -> Result<ExitStatus, ExecError> {
    let mut child =
        own_group(cmd).stdin(Stdio::null()).spawn().map_err(|source| ExecError::Spawn { what: what.into(), source })?;
    finish(&mut child, what, timeout)
}

/// Runs `cmd` capturing stdout (stderr passes through); returns the status and stdout.
pub fn run_capture(
    cmd: &mut Command,
    what: &str,
    timeout: Option<Duration>,
) -> Result<(ExitStatus, String), ExecError> {
    let mut child = own_group(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|source| ExecError::Spawn { what: what.into(), source })?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let status = finish(&mut child, what, timeout)?;
    let out = reader.join().unwrap_or_default();
    Ok((status, String::from_utf8_lossy(&out).into_owned()))
}

fn finish(child: &mut Child, what: &str, timeout: Option<Duration>) -> Result<ExitStatus, ExecError> {
    match supervise(child, timeout).map_err(|source| ExecError::Spawn { what: what.into(), source })? {
        Ended::Exited(status) => Ok(status),
        Ended::TimedOut => Err(ExecError::TimedOut { what: what.into(), after: timeout.unwrap_or_default() }),
        Ended::Interrupted(_) => Err(ExecError::Interrupted { what: what.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_stops_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-ran");
        // A grandchild that would touch the marker after 2s must die with its parent.
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let err = run(Command::new("bash").args(["-c", &script]), "bin/compile", Some(Duration::from_millis(300)))
            .unwrap_err();
        assert!(matches!(err, ExecError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(8));
        assert!(err.to_string().contains("did not finish within"));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild survived the timeout");
    }

    #[test]
    fn failure_and_capture() {
        let err = run(Command::new("bash").args(["-c", "exit 3"]), "bin/compile", None).unwrap_err();
        assert_eq!(err.to_string(), "bin/compile failed: exit status 3");
        let (status, out) = run_capture(Command::new("bash").args(["-c", "echo Static"]), "bin/detect", None).unwrap();
        assert!(status.success());
        assert_eq!(out, "Static\n");
        let err = run(&mut Command::new("/nonexistent/bin/compile"), "bin/compile", None).unwrap_err();
        assert!(matches!(err, ExecError::Spawn { .. }));
    }
}
