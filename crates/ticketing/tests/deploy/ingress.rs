//! The Ingress: one nginx-class Ingress routing each path the platform serves to the Service
//! of the component behind it, through a port that Service exposes.

use std::collections::BTreeMap;

use serde_norway::Value;

use crate::{
    support::{Deploy, assert_none, expected_routes, load},
    yaml::{at, list, name, scalar, text},
};

/// The Ingress's routes as prefix → component, and the problems met on the way.
fn ingress_routes(deploy: &Deploy) -> (BTreeMap<String, String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut routes = BTreeMap::new();
    let ingresses: Vec<&Value> = deploy.objects("Ingress").collect();
    if ingresses.len() != 1 {
        problems.push(format!("expected one Ingress, found {}", ingresses.len()));
    }
    for ingress in ingresses {
        if text(ingress, "spec.ingressClassName") != Some("nginx") {
            problems.push(format!(
                "Ingress {} has no ingressClassName nginx",
                name(ingress)
            ));
        }
        for rule in list(ingress, "spec.rules") {
            for path in list(rule, "http.paths") {
                let prefix = match text(path, "pathType") {
                    Some("Prefix") => text(path, "path").unwrap_or("").to_owned(),
                    Some("Exact") => format!("={}", text(path, "path").unwrap_or("")),
                    other => {
                        let path = text(path, "path").unwrap_or("");
                        problems.push(format!(
                            "Ingress path {path} is pathType {other:?}, not Prefix or Exact"
                        ));
                        path.to_owned()
                    }
                };
                let service_name = text(path, "backend.service.name").unwrap_or("");
                let Some(service) = deploy.object("Service", service_name) else {
                    problems.push(format!(
                        "Ingress path {prefix} goes to Service {service_name:?}, which does not exist"
                    ));
                    continue;
                };
                let port_number = at(path, "backend.service.port.number").and_then(scalar);
                let port_name = text(path, "backend.service.port.name");
                let exposed = list(service, "spec.ports").iter().any(|p| {
                    (port_number.is_some() && at(p, "port").and_then(scalar) == port_number)
                        || (port_name.is_some() && text(p, "name") == port_name)
                });
                if !exposed {
                    problems.push(format!(
                        "Ingress path {prefix} uses a port Service {service_name} does not expose"
                    ));
                }
                let component = deploy
                    .component_of_service(service_name)
                    .unwrap_or_else(|| {
                        format!("<Service {service_name} runs no single component>")
                    });
                if routes.insert(prefix.clone(), component).is_some() {
                    problems.push(format!("Ingress routes {prefix} twice"));
                }
            }
        }
    }
    (routes, problems)
}

pub(crate) fn check_ingress(deploy: &Deploy) -> Vec<String> {
    let (routes, mut problems) = ingress_routes(deploy);
    if routes != expected_routes() {
        problems.push(format!(
            "the Ingress routes {routes:?}, expected {:?}",
            expected_routes()
        ));
    }
    problems
}

#[test]
fn the_ingress_routes_each_api_prefix_and_the_rest_to_their_components() {
    assert_none("ingress", check_ingress(&load()));
}
