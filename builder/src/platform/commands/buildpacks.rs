//! `buildpacks:*` (Dokku's): the buildpacks an app builds with, in order, whatever its detect
//! says. What chooses, first match wins: `BUILDPACK_URL` (config) > `buildpacks:set` >
//! `.buildpacks` > app.json's `buildpacks` > detection. Over SSH only URLs and `org/name` are
//! taken: a directory of this host is for host commands (its files go into the build).

use anyhow::{bail, Result};

use super::Platform;
use crate::engine::source::Source;
use crate::output;
use crate::platform::settings::AppSettings;

/// Checks a buildpack source as the caller may give it.
fn check(p: &Platform, url: &str) -> Result<String> {
    let url = url.trim();
    if url.is_empty() || url.len() > 1024 || url.chars().any(char::is_control) || url.contains(char::is_whitespace) {
        bail!("{:?} is not a buildpack source: one URL, directory or org/name, without spaces", output::printable(url));
    }
    let location = url.split('#').next().unwrap_or(url);
    if location.split('/').any(|part| part == "." || part == "..") && !location.contains("://") {
        bail!("{url:?} is not a buildpack source: no '.' or '..' parts");
    }
    // Relative paths are the caller's working directory's, made absolute here: a build never
    // reads a relative entry against its own.
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/nonexistent".into());
    let source = Source::parse(url, &cwd)?;
    let local = matches!(&source, Source::Local(_))
        || matches!(&source, Source::Tarball { location } if !location.starts_with("http"))
        || url.starts_with("file://");
    if local && p.caller.is_some() {
        bail!("{url:?} is a path on the server: over SSH give a buildpack's URL or org/name");
    }
    match &source {
        Source::Local(dir) if !dir.join("bin/compile").is_file() => {
            bail!("{} is not a buildpack: it has no bin/compile", dir.display())
        }
        Source::Local(dir) => Ok(dir.canonicalize()?.to_string_lossy().into_owned()),
        _ => Ok(url.to_string()),
    }
}

fn change(p: &Platform, app: &str, edit: impl FnOnce(&mut Vec<String>) -> Result<()>) -> Result<()> {
    let state = p.app_state(app)?;
    let mut list = AppSettings::buildpacks(&state, app)?;
    edit(&mut list)?;
    AppSettings::set_buildpacks(&state, app, &list)?;
    list_of(&list, app);
    Ok(())
}

fn list_of(list: &[String], app: &str) {
    output::header(format!("{app} buildpack urls"));
    for url in list {
        println!("       {url}");
    }
}

/// `buildpacks:set APP URL [--index N]`: the one buildpack (or the one at N, 1-based).
pub fn set(p: &Platform, app: &str, url: &str, index: Option<usize>) -> Result<()> {
    let url = check(p, url)?;
    change(p, app, |list| {
        match index {
            Some(i) if i >= 1 && i <= list.len() => list[i - 1] = url,
            Some(i) if i == list.len() + 1 => list.push(url),
            Some(i) => bail!("--index {i} is out of range: {app} has {} buildpack(s)", list.len()),
            None => *list = vec![url],
        }
        Ok(())
    })
}

/// `buildpacks:add APP URL [--index N]`: appended (or inserted at N, 1-based).
pub fn add(p: &Platform, app: &str, url: &str, index: Option<usize>) -> Result<()> {
    let url = check(p, url)?;
    change(p, app, |list| {
        if list.contains(&url) {
            bail!("{app} already builds with {url}");
        }
        match index {
            Some(i) if i >= 1 && i <= list.len() + 1 => list.insert(i - 1, url),
            Some(i) => bail!("--index {i} is out of range: {app} has {} buildpack(s)", list.len()),
            None => list.push(url),
        }
        Ok(())
    })
}

/// `buildpacks:remove APP URL`
pub fn remove(p: &Platform, app: &str, url: &str) -> Result<()> {
    change(p, app, |list| {
        let before = list.len();
        list.retain(|u| u != url);
        if list.len() == before {
            bail!("{app} does not build with {:?}; `buildpacks:list {app}` lists them", output::printable(url));
        }
        Ok(())
    })
}

/// `buildpacks:clear APP`: back to what the app chooses, or detection.
pub fn clear(p: &Platform, app: &str) -> Result<()> {
    change(p, app, |list| {
        list.clear();
        Ok(())
    })
}

/// `buildpacks:list APP`
pub fn list(p: &Platform, app: &str) -> Result<()> {
    let state = p.app_state(app)?;
    list_of(&AppSettings::buildpacks(&state, app)?, app);
    Ok(())
}

/// `buildpacks:report APP`: the list, and what the last release was built with.
pub fn report(p: &Platform, app: &str) -> Result<()> {
    let state = p.app_state(app)?;
    let list = AppSettings::buildpacks(&state, app)?;
    let detected = state.current_release(app)?.map(|r| r.build.to_string()).unwrap_or_else(|| "-".into());
    output::header(format!("{app} buildpacks information"));
    println!("       {:<24}{}", "Buildpacks list:", if list.is_empty() { "-".into() } else { list.join(",") });
    println!("       {:<24}{detected}", "Buildpacks last used:");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::access::{Caller, Role};

    #[test]
    fn lists_are_edited_in_order_and_paths_refused_over_ssh() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = crate::platform::state::State::open(dir.path()).unwrap();
        state.create_app("web").unwrap();
        let mut p = Platform { data_dir: dir.path().into(), router_listen: None, actor: "t".into(), caller: None };
        let urls = ["https://example.test/a.tgz", "heroku/python", "https://example.test/b.git#v1"];
        set(&p, "web", urls[0], None).unwrap();
        add(&p, "web", urls[2], None).unwrap();
        add(&p, "web", urls[1], Some(2)).unwrap();
        assert_eq!(AppSettings::buildpacks(&state, "web").unwrap(), urls);
        assert!(add(&p, "web", urls[1], None).is_err(), "already there");
        assert!(set(&p, "web", "heroku/go", Some(5)).is_err());
        remove(&p, "web", urls[1]).unwrap();
        assert!(remove(&p, "web", urls[1]).is_err());
        assert_eq!(AppSettings::buildpacks(&state, "web").unwrap(), [urls[0], urls[2]]);
        clear(&p, "web").unwrap();
        assert!(AppSettings::buildpacks(&state, "web").unwrap().is_empty());
        assert!(set(&p, "web", "a b", None).is_err());
        assert!(set(&p, "web", "data/..", None).is_err());
        assert!(set(&p, "web", "./x", None).is_err());
        assert!(set(&p, "web", dir.path().to_str().unwrap(), None).unwrap_err().to_string().contains("no bin/compile"));
        p.caller = Some(Caller { key: "k".into(), role: Role::Admin });
        for local in ["/etc", "file:///tmp/x.tgz", "/srv/bp.tgz"] {
            let err = set(&p, "web", local, None).unwrap_err().to_string();
            assert!(err.contains("path on the server"), "{local}: {err}");
        }
        set(&p, "web", "https://example.test/ok.tgz", None).unwrap();
    }
}
