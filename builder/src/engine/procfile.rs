//! The Procfile: one `type: command` a line at the app root.
//!
//! Blank lines and `#` comments are allowed. Type names are letters, digits, `-` and `_`, at most
//! 63 characters (Heroku's limit). When a type appears twice the LAST definition wins, as in
//! Heroku's and herokuish's parsers, and a warning names both lines.

use std::fmt;
use std::path::Path;

/// The longest process type name Heroku accepts.
pub const MAX_TYPE_LEN: usize = 63;

/// Whether `name` is a process type name: letters, digits, `-` and `_`, at most 63 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TYPE_LEN && name.chars().all(is_name_char)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    pub name: String,
    pub command: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Procfile {
    /// Process types in the order of their (last) definition.
    pub processes: Vec<ProcessType>,
    /// Human-readable notes about redefinitions, for the build log.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error("Procfile line {line}: expected `type: command`, found {found:?}")]
    MissingColon { line: usize, found: String },
    #[error("Procfile line {line}: process type {name:?} may only contain letters, digits, '-' and '_'")]
    InvalidName { line: usize, name: String },
    #[error("Procfile line {line}: process type {name:?} is longer than {MAX_TYPE_LEN} characters")]
    NameTooLong { line: usize, name: String },
    #[error("Procfile line {line}: process type {name:?} has an empty command")]
    EmptyCommand { line: usize, name: String },
}

impl Procfile {
    pub fn parse(text: &str) -> Result<Self, ProcfileError> {
        let mut procfile = Procfile::default();
        let mut defined_at: Vec<usize> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, command)) = line.split_once(':') else {
                return Err(ProcfileError::MissingColon { line: line_no, found: line.to_string() });
            };
            let name = name.trim();
            let command = command.trim();
            if name.is_empty() || !name.chars().all(is_name_char) {
                return Err(ProcfileError::InvalidName { line: line_no, name: name.to_string() });
            }
            if name.len() > MAX_TYPE_LEN {
                return Err(ProcfileError::NameTooLong { line: line_no, name: name.to_string() });
            }
            if command.is_empty() {
                return Err(ProcfileError::EmptyCommand { line: line_no, name: name.to_string() });
            }
            if let Some(pos) = procfile.processes.iter().position(|p| p.name == name) {
                procfile.warnings.push(format!(
                    "Procfile defines `{name}` twice (lines {} and {line_no}); using line {line_no}",
                    defined_at[pos]
                ));
                procfile.processes.remove(pos);
                defined_at.remove(pos);
            }
            procfile.processes.push(ProcessType { name: name.to_string(), command: command.to_string() });
            defined_at.push(line_no);
        }
        Ok(procfile)
    }

    /// Reads `Procfile` in `app_dir`; `Ok(None)` when the app has none.
    pub fn read(app_dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = app_dir.join("Procfile");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Self::parse(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.processes.iter().find(|p| p.name == name).map(|p| p.command.as_str())
    }

    pub fn names(&self) -> Vec<&str> {
        self.processes.iter().map(|p| p.name.as_str()).collect()
    }
}

impl fmt::Display for Procfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.processes {
            writeln!(f, "{}: {}", p.name, p.command)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_comments_and_blank_lines() {
        let p = Procfile::parse(
            "# web first\n\nweb: bundle exec puma -p $PORT\nworker:python worker.py && echo done\n  \n",
        )
        .unwrap();
        assert_eq!(p.names(), vec!["web", "worker"]);
        assert_eq!(p.get("web"), Some("bundle exec puma -p $PORT"));
        assert_eq!(p.get("worker"), Some("python worker.py && echo done"));
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn keeps_colons_inside_the_command() {
        let p = Procfile::parse("web: echo 'a: b' | tr : -\n").unwrap();
        assert_eq!(p.get("web"), Some("echo 'a: b' | tr : -"));
    }

    #[test]
    fn duplicate_type_last_definition_wins_with_a_warning() {
        let p = Procfile::parse("web: one\nworker: w\nweb: two\n").unwrap();
        assert_eq!(p.get("web"), Some("two"));
        assert_eq!(p.names(), vec!["worker", "web"]);
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].contains("lines 1 and 3"), "{}", p.warnings[0]);
    }

    #[test]
    fn invalid_lines_are_reported_with_their_line_number() {
        assert_eq!(
            Procfile::parse("web: ok\n\nthis is not a process\n"),
            Err(ProcfileError::MissingColon { line: 3, found: "this is not a process".into() })
        );
        assert_eq!(
            Procfile::parse("web server: x\n"),
            Err(ProcfileError::InvalidName { line: 1, name: "web server".into() })
        );
        assert_eq!(Procfile::parse("# c\nweb:   \n"), Err(ProcfileError::EmptyCommand { line: 2, name: "web".into() }));
        assert_eq!(Procfile::parse(": cmd\n"), Err(ProcfileError::InvalidName { line: 1, name: "".into() }));
        let long = "a".repeat(64);
        assert!(matches!(Procfile::parse(&format!("{long}: x")), Err(ProcfileError::NameTooLong { line: 1, .. })));
        assert!(Procfile::parse(&format!("{}: x", "a".repeat(63))).is_ok());
    }

    #[test]
    fn error_messages_name_the_line() {
        let err = Procfile::parse("web: a\nbroken\n").unwrap_err();
        assert_eq!(err.to_string(), "Procfile line 2: expected `type: command`, found \"broken\"");
    }

    #[test]
    fn display_round_trips() {
        let p = Procfile::parse("web: a b\nclock: c\n").unwrap();
        assert_eq!(Procfile::parse(&p.to_string()).unwrap(), p);
    }
}
