//! `stack:list [APP]` and `stack:set APP|--global NAME`: which stack (Debian release and its
//! runtimes) an app builds on, as Heroku's `stack` and `stack:set` do. The change applies from
//! the app's next deploy.

use anyhow::Result;

use super::{Platform, GLOBAL};
use crate::containers::stack::{Stack, STACKS};
use crate::output;
use crate::platform::settings;

/// `stack:list [APP]`: every stack, `*` on the one in force (the app's, else the global one),
/// and whether its images are built here.
pub async fn list(p: &Platform, app: Option<&str>) -> Result<()> {
    let state = p.state()?;
    if let Some(a) = app {
        state.require_app(a)?;
    }
    // A stored stack this slipway does not know is shown, not fatal: this is where to see it.
    let current = match settings::stack_of(&state, app.unwrap_or("")) {
        Ok(stack) => Some(stack),
        Err(e) => {
            output::warn(format!("{e:#}"));
            None
        }
    };
    // Whether the images exist: only when Docker answers (listing needs nothing else).
    let engine = crate::containers::docker::Engine::connect().await.ok();
    match app {
        Some(a) => output::header(format!("{a} stacks")),
        None => output::header("Stacks"),
    }
    for stack in &STACKS {
        let built = match &engine {
            Some(e) => match e.image_exists(&stack.build_image()).await? && e.image_exists(&stack.run_image()).await? {
                true => "images built".to_string(),
                false => format!("images not built: slipway stack build --stack {}", stack.suite),
            },
            None => String::new(),
        };
        let marker = if current == Some(stack) { "*" } else { " " };
        let default = if stack.is_default() { " (default)" } else { "" };
        println!(
            "{marker} {:<18} {} ({}){default}; {}; {built}",
            stack.name,
            stack.debian,
            stack.suite,
            stack.runtimes_text()
        );
    }
    Ok(())
}

/// `stack:set APP NAME`, `stack:set --global NAME`.
pub fn set(p: &Platform, app: &str, name: &str) -> Result<()> {
    let state = p.state()?;
    let scope = p.scope(&state, app)?;
    let stack: &Stack = settings::set_stack(&state, scope, name)?;
    if app == GLOBAL {
        output::header(format!("Apps without a stack of their own now build on {}", stack.name));
    } else {
        output::header(format!("{app} builds on {} from its next deploy", stack.name));
    }
    Ok(())
}
