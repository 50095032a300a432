//! Helpers shared by unit tests.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::engine::buildpack::Buildpack;

/// Writes a buildpack with the given bash bodies for bin/detect and bin/compile.
pub fn fake_buildpack(root: &Path, name: &str, detect: &str, compile: &str, export: Option<&str>) -> Buildpack {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for (script, body) in [("detect", detect), ("compile", compile)] {
        write_script(&dir.join("bin").join(script), body);
    }
    if let Some(e) = export {
        std::fs::write(dir.join("export"), e).unwrap();
    }
    Buildpack::new(dir, name.into())
}

pub fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
