//! The tree's shape, checked: layers import only downwards (no circle), no source file over
//! 700 lines, no function over 120, and host-side code decides nothing on the build log's text
//! (it reads the engine's structured result).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `engine` for `src/engine/slug/mod.rs`.
fn layer_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Lower ranks are lower layers; a module may import its own layer and lower ones only.
fn rank(layer: &str) -> Option<u32> {
    Some(match layer {
        "output" | "units" | "net" | "sys" => 0,
        "engine" => 1,
        "containers" => 2,
        "platform" | "matrix" => 3,
        "gitpush" => 4,
        "cli" | "lib" | "main" => 5,
        // The fuzz targets' entry points reach into every layer, the CLI's SSH grammar included.
        "fuzzing" => 6,
        _ => return None,
    })
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect()
}

#[test]
fn layers_import_only_downwards() {
    let mut wrong = Vec::new();
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, text) in sources() {
        let from = layer_of(&file);
        let from_rank = rank(&from).unwrap_or_else(|| panic!("{} is in no known layer", file.display()));
        for (i, _) in text.match_indices("crate::") {
            let to: String = text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let Some(to_rank) = rank(&to) else { continue };
            if to != from {
                edges.entry(from.clone()).or_default().push(to.clone());
            }
            let sideways = to_rank == from_rank && to != from && from_rank > 0;
            if to_rank > from_rank || sideways {
                wrong.push(format!("{} imports crate::{to}", file.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "upward or sideways imports:\n{}", wrong.join("\n"));
    assert!(edges.contains_key("platform"), "the scan found the platform's imports: {edges:?}");
}

#[test]
fn files_and_functions_stay_small() {
    let mut long = Vec::new();
    for (file, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() > 700 {
            long.push(format!("{}: {} lines", file.display(), lines.len()));
        }
        for (start, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let is_fn = ["fn ", "pub fn ", "async fn ", "pub async fn ", "pub(crate) fn "]
                .iter()
                .any(|p| trimmed.starts_with(p));
            if !is_fn || trimmed.ends_with(';') {
                continue;
            }
            // rustfmt closes a function at its own indentation.
            let indent = &line[..line.len() - trimmed.len()];
            let close = format!("{indent}}}");
            if let Some(len) = lines[start..].iter().position(|l| *l == close) {
                if len + 1 > 120 {
                    long.push(format!("{}:{}: a function of {} lines", file.display(), start + 1, len + 1));
                }
            }
        }
    }
    assert!(long.is_empty(), "too long:\n{}", long.join("\n"));
}

#[test]
fn host_code_does_not_read_the_build_log() {
    // Phrases the engine prints; deciding on them would break when a message is reworded.
    let phrases = [" !     ", "-----> ", "killed by signal", "no buildpack detected", "did not match", "app detected"];
    let matching = [".contains(", "starts_with(", "strip_prefix(", "strip_suffix(", "ends_with(", ".find("];
    let mut found = Vec::new();
    for (file, text) in sources() {
        if !["containers", "platform", "matrix", "gitpush", "cli"].contains(&layer_of(&file).as_str()) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if matching.iter().any(|m| line.contains(m)) && phrases.iter().any(|p| line.contains(p)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "host code matching log text:\n{}", found.join("\n"));
}
