//! Environment variables: every variable a ticketing container sets, in Kubernetes or in
//! compose, is one the binary reads (or one of the few Kubernetes itself needs), a `$(VAR)`
//! comes after the variable it expands, and no compose value may end up empty.

use std::collections::BTreeSet;

use crate::{
    support::{Binary, Deploy, assert_none, binary, load},
    yaml::{
        at, compose_env, container_env_names, is_ticketing_service, list, name, text,
        ticketing_containers,
    },
};

/// Variables a ticketing container may set although the binary does not read them: they
/// exist for Kubernetes' `$(VAR)` expansion or are read outside clap.
const KUBERNETES_ONLY: [(&str, &str); 2] = [
    (
        "POSTGRES_PASSWORD",
        "expanded into DATABASE_URL by Kubernetes",
    ),
    (
        "RUST_LOG",
        "read by tracing's EnvFilter, not a clap setting",
    ),
];

pub(crate) fn check_env(deploy: &Deploy, binary: &Binary) -> Vec<String> {
    let mut problems = Vec::new();
    let allowed =
        |n: &str| binary.settings.contains(n) || KUBERNETES_ONLY.iter().any(|(k, _)| *k == n);
    for workload in deploy.workloads() {
        for container in ticketing_containers(workload) {
            let owner = name(workload);
            for source in list(container, "envFrom") {
                if let Some(config) = text(source, "configMapRef.name") {
                    if deploy.object("ConfigMap", config).is_none() {
                        problems.push(format!(
                            "{owner}: envFrom ConfigMap {config} does not exist"
                        ));
                    }
                } else {
                    // A Secret's keys are not in the repository, so they could not be checked.
                    problems.push(format!(
                        "{owner}: envFrom other than a ConfigMap; reference secrets key by key"
                    ));
                }
            }
            for variable in container_env_names(deploy, container) {
                if !allowed(&variable) {
                    problems.push(format!(
                        "{owner}: sets {variable}, which the binary does not read"
                    ));
                }
            }
            // Kubernetes expands $(VAR) only for variables defined earlier in `env`.
            let mut defined: BTreeSet<String> = BTreeSet::new();
            for variable in list(container, "env") {
                let variable_name = text(variable, "name").unwrap_or("");
                let value = text(variable, "value").unwrap_or("");
                for (i, _) in value.match_indices("$(") {
                    let referenced = value[i + 2..].split(')').next().unwrap_or("");
                    if !defined.contains(referenced) {
                        problems.push(format!(
                            "{owner}: {variable_name} uses $({referenced}) before it is defined"
                        ));
                    }
                }
                if variable_name == "JWT_KEY" && at(variable, "valueFrom.secretKeyRef").is_none() {
                    problems.push(format!("{owner}: JWT_KEY does not come from a Secret"));
                }
                defined.insert(variable_name.to_owned());
            }
        }
    }
    let services = deploy.compose_services();
    for (service_name, service) in services {
        if !is_ticketing_service(service) {
            continue;
        }
        let service_name = service_name.as_str().unwrap_or("?");
        for (variable, value) in compose_env(service) {
            if !binary.settings.contains(&variable) {
                problems.push(format!(
                    "compose {service_name}: sets {variable}, which the binary does not read"
                ));
            }
            // An empty variable would hide a missing value: the binary counts it as unset, so a
            // required secret left empty only fails at start-up, far from the file.
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.ends_with(":-}"))
            {
                problems.push(format!(
                    "compose {service_name}: {variable} may be set to an empty value"
                ));
            }
        }
    }
    problems
}

#[test]
fn containers_set_only_variables_the_binary_reads() {
    assert_none("environment", check_env(&load(), &binary()));
}
