//! The build log's look, as Heroku users know it: `-----> ` headers, 7-space indented detail
//! lines and ` !     ` warnings. Every line is flushed at once so a pusher sees it live.

pub mod progress;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences the build log's lines for the rest of the process: `slipway matrix` runs builds in
/// parallel, collects each one's log, and owns the terminal.
pub fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

pub fn header(msg: impl AsRef<str>) {
    line(&format!("-----> {}", msg.as_ref()));
}

pub fn detail(msg: impl AsRef<str>) {
    for l in msg.as_ref().lines() {
        line(&format!("       {l}"));
    }
}

pub fn warn(msg: impl AsRef<str>) {
    let stderr = std::io::stderr();
    let mut e = stderr.lock();
    for l in msg.as_ref().lines() {
        let _ = writeln!(e, " !     {l}");
    }
    let _ = e.flush();
}

fn line(s: &str) {
    if quiet() {
        return;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

/// `1.234s`, `85ms`: durations for people.
pub fn duration(d: std::time::Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `12.3 MB`: sizes for people (decimal units, as Heroku prints slug sizes).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Text from an app or a build, safe for a terminal: escape sequences (CSI, OSC and the
/// like) and other control characters are removed; newlines and tabs stay.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: up to BEL or ESC \.
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// An error and its causes on one line: `a: b: c`, leaving out a cause an earlier part
/// already says.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_never_reach_the_terminal() {
        let hostile = "ok \u{1b}[31mred\u{1b}[0m \u{1b}]0;title\u{7}\u{1b}]52;c;Y2xpcA==\u{1b}\\done\r\u{8}\tend\n";
        assert_eq!(printable(hostile), "ok red done\tend\n");
        assert_eq!(printable("plain, ünïcode"), "plain, ünïcode");
    }
}
