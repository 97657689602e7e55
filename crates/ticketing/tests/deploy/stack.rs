//! `scripts/stack`: the nginx it writes for the distributed stack on one machine must route
//! like the Ingress. It writes one `location = P` and one `location P/` per entry of its
//! `ROUTES` array, and one `location = P` per entry of `EXACT_ROUTES`; this reads those
//! arrays.

use std::collections::BTreeMap;

use crate::support::{Deploy, assert_none, expected_routes, load};

/// The words of the bash array `readonly NAME=(...)`, if the script declares it.
fn bash_array<'a>(script: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let start = format!("readonly {name}=(");
    let line = script.lines().find(|line| line.starts_with(&start))?;
    let inside = line[start.len()..].split(')').next()?;
    Some(inside.split_whitespace().collect())
}

/// The stack's routes as prefix (or `=path`) → component, and the problems met on the way.
fn stack_routes(deploy: &Deploy) -> (BTreeMap<String, String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut routes = BTreeMap::new();
    let components = bash_array(&deploy.stack, "COMPONENTS").unwrap_or_default();
    for (array, exact) in [("ROUTES", false), ("EXACT_ROUTES", true)] {
        let Some(entries) = bash_array(&deploy.stack, array) else {
            problems.push(format!("scripts/stack declares no readonly {array}=(...)"));
            continue;
        };
        for entry in entries {
            let Some((path, component)) = entry.split_once('=') else {
                problems.push(format!(
                    "scripts/stack {array} entry {entry:?} is not PATH=COMPONENT"
                ));
                continue;
            };
            if !components.contains(&component) {
                problems.push(format!(
                    "scripts/stack routes {path} to {component}, which it does not start"
                ));
            }
            let key = if exact {
                format!("={path}")
            } else {
                path.to_owned()
            };
            if routes.insert(key, component.to_owned()).is_some() {
                problems.push(format!("scripts/stack routes {path} twice"));
            }
        }
    }
    (routes, problems)
}

pub(crate) fn check_stack(deploy: &Deploy) -> Vec<String> {
    let (routes, mut problems) = stack_routes(deploy);
    if routes != expected_routes() {
        problems.push(format!(
            "scripts/stack routes {routes:?}, expected {:?}",
            expected_routes()
        ));
    }
    problems
}

#[test]
fn the_stack_routes_like_the_ingress() {
    assert_none("scripts/stack", check_stack(&load()));
}
