//! Progress for long steps: an indicatif spinner on a terminal; in CI or when piped, plain
//! `-----> ` lines (a spinner's redraws would be noise in a log).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::output;

pub struct Step {
    bar: Option<ProgressBar>,
    started: Instant,
}

fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

impl Step {
    pub fn start(msg: impl Into<String>) -> Step {
        let msg = msg.into();
        let bar = if output::quiet() {
            None
        } else if interactive() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("-----> {msg} {spinner} {elapsed}").expect("valid template"));
            bar.set_message(msg);
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            output::header(format!("{msg}..."));
            None
        };
        Step { bar, started: Instant::now() }
    }

    /// A detail line (a log line of the step), printed above the spinner.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("       {text}")),
            None => output::detail(text),
        }
    }

    pub fn done(self, msg: impl AsRef<str>) -> Duration {
        let took = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        output::header(format!("{} ({})", msg.as_ref(), output::duration(took)));
        took
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
