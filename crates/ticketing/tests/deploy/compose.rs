//! The single-host compose file: every component runs by name, with its replicas and a JWT_KEY
//! required from the environment, and every dependency is a service. Its test also runs the
//! nginx check, since compose's ingress is that nginx.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use crate::{
    nginx::check_nginx,
    support::{Binary, Deploy, REPLICATED, assert_none, binary, load},
    yaml::{at, compose_command, compose_env, is_ticketing_service, strings},
};

fn depends_on(service: &Value) -> Vec<String> {
    match at(service, "depends_on") {
        Some(Value::Sequence(items)) => strings(items),
        Some(Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn check_compose(deploy: &Deploy, binary: &Binary) -> Vec<String> {
    let mut problems = Vec::new();
    let services = deploy.compose_services();
    let mut components = BTreeMap::new();
    for (service_name, service) in services {
        let service_name = service_name.as_str().unwrap_or("?").to_owned();
        for dependency in depends_on(service) {
            if !services.contains_key(dependency.as_str()) {
                problems.push(format!(
                    "compose {service_name}: depends on {dependency}, which is not a service"
                ));
            }
        }
        if !is_ticketing_service(service) {
            continue;
        }
        match compose_command(service).as_slice() {
            [serve, component] if serve == "serve" && binary.components.contains(component) => {
                components.insert(component.clone(), service_name.clone());
            }
            other => problems.push(format!(
                "compose {service_name}: command {other:?} is not `serve <component>`"
            )),
        }
        let jwt = compose_env(service).get("JWT_KEY").cloned().flatten();
        if !jwt.as_deref().is_some_and(|v| v.starts_with("${JWT_KEY:?")) {
            problems.push(format!(
                "compose {service_name}: JWT_KEY is {jwt:?}, not required from the environment"
            ));
        }
        let replicas = at(service, "deploy.replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        if REPLICATED
            .iter()
            .any(|c| compose_command(service).get(1).map(String::as_str) == Some(*c))
            && replicas < 2
        {
            problems.push(format!(
                "compose {service_name}: {replicas} replica(s), expected 2"
            ));
        }
    }
    let deployed: BTreeSet<String> = components.keys().cloned().collect();
    if deployed != binary.components {
        problems.push(format!(
            "compose runs {deployed:?}; the binary's components are {:?}",
            binary.components
        ));
    }
    problems
}

#[test]
fn compose_runs_every_component_and_its_nginx_routes_like_the_ingress() {
    let deploy = load();
    let mut problems = check_compose(&deploy, &binary());
    problems.extend(check_nginx(&deploy));
    assert_none("compose and nginx", problems);
}
