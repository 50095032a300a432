//! A command run in a running container with this process's standard streams (`docker exec
//! -i [-t]`): what a service's `connect`, `export` and `import` are. Bytes pass through as they
//! come, never whole in memory; on a terminal the exec gets a TTY and ours is put in raw mode
//! for the while.

use anyhow::{anyhow, bail, Context, Result};
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::docker::Engine;

/// How an exec is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// Standard input passed in, output out; no TTY (a pipe: import, or connect fed a script).
    Piped,
    /// Output only; standard input is not read (export).
    OutputOnly,
    /// A TTY, ours in raw mode (an interactive connect).
    Terminal,
}

impl Stdio {
    /// `Terminal` when standard input and output are both terminals, else `Piped`.
    pub fn for_interactive() -> Stdio {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            Stdio::Terminal
        } else {
            Stdio::Piped
        }
    }
}

impl Engine {
    /// Runs `cmd` in `container` (as `user`, when given) with this process's streams; returns
    /// its exit code.
    pub async fn exec_stdio(&self, container: &str, cmd: &[&str], user: Option<&str>, stdio: Stdio) -> Result<i64> {
        let tty = stdio == Stdio::Terminal;
        let config = CreateExecOptions {
            attach_stdin: Some(stdio != Stdio::OutputOnly),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(tty),
            user,
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let exec = self
            .api
            .create_exec(container, config)
            .await
            .map_err(|e| anyhow!("cannot run {} in {container}: {}", cmd[0], crate::output::error_chain(&e)))?;
        let _raw = if tty { RawMode::enter() } else { None };
        let started = self
            .api
            .start_exec(&exec.id, Some(StartExecOptions { detach: false, tty, output_capacity: None }))
            .await
            .with_context(|| format!("cannot start {} in {container}", cmd[0]))?;
        let StartExecResults::Attached { mut output, mut input } = started else {
            bail!("the engine did not attach to {} in {container}", cmd[0]);
        };
        let pump = (stdio != Stdio::OutputOnly).then(|| {
            // Read on a thread of its own, never joined: a terminal's pending read must not keep
            // this process alive once the command is over.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
            std::thread::spawn(move || {
                use std::io::Read;
                let mut stdin = std::io::stdin().lock();
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = stdin.read(&mut buf) {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(bytes) = rx.recv().await {
                    if input.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                // End of our input is the end of its: the engine closes its standard input.
                let _ = input.shutdown().await;
            })
        });
        let (mut out, mut err) = (tokio::io::stdout(), tokio::io::stderr());
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| anyhow!("lost {}'s output: {}", cmd[0], crate::output::error_chain(&e)))? {
                LogOutput::StdErr { message } => err.write_all(&message).await?,
                other => out.write_all(&other.into_bytes()).await?,
            }
        }
        out.flush().await?;
        if let Some(pump) = pump {
            pump.abort();
        }
        let info = self.api.inspect_exec(&exec.id).await.context("cannot read the command's exit status")?;
        Ok(info.exit_code.unwrap_or(-1))
    }
}

impl Engine {
    /// Runs `cmd` in `container`, its output captured; returns its exit code and output
    /// (stdout, then stderr).
    pub async fn exec_captured(&self, container: &str, cmd: &[&str]) -> Result<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        let (code, err) = self.exec_into(container, cmd, None, &mut out).await?;
        out.extend(err.into_bytes());
        Ok((code, out))
    }

    /// Runs `cmd` in `container` (as `user`), its standard output written to `into` as it comes;
    /// returns its exit code and the end of its standard error (64 KB at most).
    pub async fn exec_into(
        &self,
        container: &str,
        cmd: &[&str],
        user: Option<&str>,
        into: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<(i64, String)> {
        let config = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            user,
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let exec = self.api.create_exec(container, config).await.with_context(|| format!("cannot run {}", cmd[0]))?;
        let started = self.api.start_exec(&exec.id, None).await.with_context(|| format!("cannot run {}", cmd[0]))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            bail!("the engine did not attach to {} in {container}", cmd[0]);
        };
        let mut err = Vec::new();
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| anyhow!("lost {}'s output: {}", cmd[0], crate::output::error_chain(&e)))? {
                LogOutput::StdErr { message } => {
                    err.extend_from_slice(&message);
                    if err.len() > 64 << 10 {
                        err.drain(..err.len() - (64 << 10));
                    }
                }
                other => into.write_all(&other.into_bytes()).await?,
            }
        }
        into.flush().await?;
        let code = self.api.inspect_exec(&exec.id).await.ok().and_then(|i| i.exit_code).unwrap_or(-1);
        Ok((code, String::from_utf8_lossy(&err).into_owned()))
    }

    /// The exit code of `cmd` run in `container`.
    pub async fn exec_quiet(&self, container: &str, cmd: &[&str]) -> Result<i64> {
        Ok(self.exec_captured(container, cmd).await?.0)
    }

    /// The output of `cmd` run in `container`; an error with it when it fails.
    pub async fn exec_output(&self, container: &str, cmd: &[&str]) -> Result<Vec<u8>> {
        let (code, out) = self.exec_captured(container, cmd).await?;
        if code != 0 {
            bail!("{} failed (exit status {code}): {}", cmd[0], String::from_utf8_lossy(&out).trim());
        }
        Ok(out)
    }
}

/// Our terminal in raw mode until dropped (the remote TTY does the echoing and line editing).
struct RawMode(libc::termios);

impl RawMode {
    fn enter() -> Option<RawMode> {
        // SAFETY: termios is plain data; fd 0 is checked to be a terminal by tcgetattr.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            (libc::tcsetattr(0, libc::TCSANOW, &raw) == 0).then_some(RawMode(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enter`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}
