//! How a run is shown: a live table on a terminal (plain lines in CI), then a summary table,
//! and JUnit, Markdown and JSON reports.

use std::time::Duration;

use anyhow::{Context, Result};

use super::fixture::Fixture;
use super::Outcome;
use crate::output;

/// A fixture's progress, shown live on a terminal.
pub trait Reporter: Send + Sync {
    fn step(&self, index: usize, what: &str);
    fn finished(&self, index: usize, outcome: &Outcome);
}

pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn step(&self, _index: usize, _what: &str) {}
    fn finished(&self, _index: usize, o: &Outcome) {
        println!("{:<8} {:<34} {}", if o.ok() { "ok" } else { "FAILED" }, o.fixture, summary_line(o));
    }
}

pub struct LiveReporter {
    bars: Vec<indicatif::ProgressBar>,
}

impl LiveReporter {
    pub fn new(fixtures: &[Fixture]) -> LiveReporter {
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:<34} {msg} {elapsed:.dim}")
            .expect("valid template");
        let bars = fixtures
            .iter()
            .map(|f| {
                let bar = multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(f.id.clone());
                bar.set_message("waiting");
                bar
            })
            .collect();
        LiveReporter { bars }
    }
}

impl Reporter for LiveReporter {
    fn step(&self, index: usize, what: &str) {
        let bar = &self.bars[index];
        bar.reset_elapsed();
        bar.enable_steady_tick(Duration::from_millis(150));
        bar.set_message(what.to_string());
    }
    fn finished(&self, index: usize, o: &Outcome) {
        let mark = if o.ok() { "✓" } else { "✗" };
        let bar = &self.bars[index];
        bar.set_style(indicatif::ProgressStyle::with_template("  {prefix:<34} {msg}").expect("valid template"));
        bar.finish_with_message(format!("{mark} {}", summary_line(o)));
    }
}

fn summary_line(o: &Outcome) -> String {
    let mut parts = vec![o.result_text()];
    if let Some(ms) = o.build_ms {
        parts.push(format!("build {}", output::duration(Duration::from_millis(ms))));
    }
    if let Some(s) = o.slug_size {
        parts.push(format!("slug {}", output::size(s)));
    }
    if let Some(ms) = o.start_ms {
        parts.push(format!("start {}", output::duration(Duration::from_millis(ms))));
    }
    if let Some(ms) = o.test_ms {
        parts.push(format!("tests {}", output::duration(Duration::from_millis(ms))));
    }
    if let Some(f) = o.failure.as_ref().filter(|_| !o.ok()) {
        parts.push(f.message.clone());
    }
    parts.join(", ")
}

fn ms(v: Option<u64>) -> String {
    v.map(|ms| output::duration(Duration::from_millis(ms))).unwrap_or_else(|| "-".into())
}

fn table_rows(outcomes: &[Outcome]) -> Vec<[String; 8]> {
    outcomes
        .iter()
        .map(|o| {
            [
                o.group.clone(),
                o.fixture.rsplit('/').next().unwrap_or(&o.fixture).to_string(),
                if o.detected.is_empty() { "-".into() } else { o.detected.join(" + ") },
                ms(o.build_ms),
                o.slug_size.map(output::size).unwrap_or_else(|| "-".into()),
                ms(o.start_ms),
                ms(o.test_ms),
                o.result_text(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 8] = ["buildpack", "fixture", "detected", "build", "slug", "start", "tests", "result"];

/// The summary table for a terminal, then each failure's cause and last log lines.
pub fn summary(outcomes: &[Outcome], wall: Duration) -> String {
    let rows = table_rows(outcomes);
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&HEADERS.map(String::from));
    for row in &rows {
        out.push_str(&line(row));
    }
    for o in outcomes.iter().filter(|o| !o.ok()) {
        if let Some(f) = &o.failure {
            out.push_str(&format!("\n{} failed at {}: {}\n", o.fixture, f.step, f.message));
            for l in &f.log_tail {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    out.push_str(&format!(
        "\n{} fixtures: {} passed, {failed} failed in {}\n",
        outcomes.len(),
        outcomes.len() - failed,
        output::duration(wall)
    ));
    out
}

/// The same table in Markdown, with failures' logs folded.
pub fn markdown(outcomes: &[Outcome], wall: Duration) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = format!("| {} |\n|{}\n", HEADERS.join(" | "), "---|".repeat(HEADERS.len()));
    for row in table_rows(outcomes) {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    out.push_str(&format!(
        "\n{} fixtures: {} passed, {failed} failed in {}.\n",
        outcomes.len(),
        outcomes.len() - failed,
        output::duration(wall)
    ));
    for o in outcomes.iter().filter(|o| !o.ok()) {
        if let Some(f) = &o.failure {
            out.push_str(&format!(
                "\n<details><summary>{} failed at {}: {}</summary>\n\n```\n{}\n```\n</details>\n",
                o.fixture,
                f.step,
                cell(&f.message),
                f.log_tail.join("\n")
            ));
        }
    }
    out
}

/// JUnit XML: a test suite per buildpack, a test case per fixture.
pub fn junit(outcomes: &[Outcome], wall: Duration) -> Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("slipway matrix");
    report.set_time(wall);
    let mut suites: Vec<TestSuite> = Vec::new();
    for o in outcomes {
        let status = match (&o.failure, o.ok()) {
            (Some(f), false) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!("failed at {}: {}", f.step, f.message));
                s.set_type(f.step.to_string());
                s.set_description(f.log_tail.join("\n"));
                s
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(o.fixture.clone(), status);
        case.set_classname(format!("matrix.{}", o.group));
        let total = o.build_ms.unwrap_or(0) + o.start_ms.unwrap_or(0) + o.test_ms.unwrap_or(0);
        case.set_time(Duration::from_millis(total));
        case.set_system_out(summary_line(o));
        match suites.iter_mut().find(|s| s.name.as_str() == o.group) {
            Some(suite) => {
                suite.add_test_case(case);
            }
            None => {
                let mut suite = TestSuite::new(o.group.clone());
                suite.add_test_case(case);
                suites.push(suite);
            }
        }
    }
    report.add_test_suites(suites);
    report.to_string().context("cannot write the JUnit report")
}
