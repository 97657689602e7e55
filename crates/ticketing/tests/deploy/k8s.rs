//! The Kubernetes objects themselves: each is named, in the namespace and applied by the
//! kustomization; each Service reaches pods on a port they expose; each component Deployment
//! is probed, bounded, unprivileged and serves a component the binary knows; the autoscalers
//! scale what takes the load.

use std::collections::BTreeSet;

use serde_norway::Value;

use crate::{
    support::{Binary, Deploy, REPLICATED, assert_none, binary, load},
    yaml::{
        at, container_env_names, is_ticketing_image, kind, list, map, name, scalar, selects,
        strings, text, ticketing_containers,
    },
};

/// The namespace every object lives in.
const NAMESPACE: &str = "ticketing";

pub(crate) fn check_objects(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for doc in &deploy.k8s {
        let v = &doc.value;
        let api = text(v, "apiVersion").unwrap_or("");
        let object = format!("{}: {}/{}", doc.file, kind(v), name(v));
        if api.is_empty() || text(v, "kind").is_none() || text(v, "metadata.name").is_none() {
            problems.push(format!("{object} lacks apiVersion, kind or metadata.name"));
        }
        if kind(v) != "Namespace" && text(v, "metadata.namespace") != Some(NAMESPACE) {
            problems.push(format!("{object} is not in namespace {NAMESPACE}"));
        }
        if !seen.insert((kind(v).to_owned(), name(v).to_owned())) {
            problems.push(format!("{object} is defined twice"));
        }
    }
    if deploy.object("Namespace", NAMESPACE).is_none() {
        problems.push(format!("no Namespace {NAMESPACE}"));
    }
    // The kustomization must apply every file, or `kubectl apply -k` silently skips one.
    let k = &deploy.kustomization;
    if text(k, "namespace") != Some(NAMESPACE) {
        problems.push("kustomization.yaml does not set the namespace".into());
    }
    let resources: BTreeSet<String> = strings(list(k, "resources")).into_iter().collect();
    let files: BTreeSet<String> = deploy
        .k8s_files
        .iter()
        .filter(|f| f.ends_with(".yaml") && f.as_str() != "kustomization.yaml")
        .cloned()
        .collect();
    if resources != files {
        problems.push(format!(
            "kustomization.yaml resources {resources:?} differ from the files {files:?}"
        ));
    }
    let images: Vec<&str> = list(k, "images")
        .iter()
        .filter_map(|i| text(i, "name"))
        .collect();
    if !images.contains(&"ticketing") {
        problems.push("kustomization.yaml has no images entry for ticketing".into());
    }
    for workload in deploy.workloads() {
        let images: BTreeSet<&str> = list(workload, "spec.template.spec.containers")
            .iter()
            .filter_map(|c| text(c, "image"))
            .filter(|i| is_ticketing_image(i))
            .collect();
        if images.iter().any(|i| *i != "ticketing:latest") {
            problems.push(format!(
                "{} uses {images:?}; use ticketing:latest and override it in kustomization.yaml",
                name(workload)
            ));
        }
    }
    problems
}

pub(crate) fn check_services(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    for service in deploy.objects("Service") {
        let service_name = name(service);
        let Some(selector) = map(service, "spec.selector") else {
            problems.push(format!("Service {service_name} has no selector"));
            continue;
        };
        let workloads: Vec<&Value> = deploy.selected_by(selector).collect();
        if workloads.is_empty() {
            problems.push(format!(
                "Service {service_name} selects no Deployment or StatefulSet pods"
            ));
            continue;
        }
        for port in list(service, "spec.ports") {
            let target = at(port, "targetPort").or_else(|| at(port, "port"));
            let Some(target) = target.and_then(scalar) else {
                problems.push(format!(
                    "Service {service_name} has a port without a target"
                ));
                continue;
            };
            let served = workloads.iter().all(|w| {
                list(w, "spec.template.spec.containers").iter().any(|c| {
                    list(c, "ports").iter().any(|p| {
                        text(p, "name") == Some(target.as_str())
                            || at(p, "containerPort").and_then(scalar).as_deref()
                                == Some(target.as_str())
                    })
                })
            });
            if !served {
                problems.push(format!(
                    "Service {service_name} targets port {target}, which its pods do not expose"
                ));
            }
        }
    }
    for workload in deploy.workloads() {
        let labels = map(workload, "spec.template.metadata.labels");
        match map(workload, "spec.selector.matchLabels") {
            Some(selector) if selects(selector, labels) => {}
            _ => problems.push(format!(
                "{} {}: spec.selector does not match its pod template labels",
                kind(workload),
                name(workload)
            )),
        }
        if kind(workload) == "StatefulSet" {
            let governing = text(workload, "spec.serviceName").unwrap_or("");
            if deploy.object("Service", governing).is_none() {
                problems.push(format!(
                    "StatefulSet {} names service {governing:?}, which does not exist",
                    name(workload)
                ));
            }
        }
    }
    for budget in deploy.objects("PodDisruptionBudget") {
        let selected = map(budget, "spec.selector.matchLabels")
            .is_some_and(|s| deploy.selected_by(s).next().is_some());
        if !selected {
            problems.push(format!(
                "PodDisruptionBudget {} selects no pods",
                name(budget)
            ));
        }
    }
    problems
}

fn http_probe<'a>(container: &'a Value, probe: &str) -> (Option<&'a str>, Option<String>) {
    (
        text(container, &format!("{probe}.httpGet.path")),
        at(container, &format!("{probe}.httpGet.port")).and_then(scalar),
    )
}

pub(crate) fn check_components(deploy: &Deploy, binary: &Binary) -> Vec<String> {
    let mut problems = Vec::new();
    let components = deploy.components();
    let deployed: BTreeSet<String> = components.keys().cloned().collect();
    if deployed != binary.components {
        problems.push(format!(
            "Deployments serve {deployed:?}; the binary's components are {:?}",
            binary.components
        ));
    }
    let serving = deploy
        .objects("Deployment")
        .filter(|d| ticketing_containers(d).next().is_some())
        .count();
    if serving != components.len() {
        problems.push("a Deployment runs the ticketing image without `serve <component>`".into());
    }
    for (component, deployment) in &components {
        let pod = at(deployment, "spec.template.spec").unwrap();
        let containers: Vec<&Value> = ticketing_containers(deployment).collect();
        if containers.len() != 1 {
            problems.push(format!("{component}: expected one ticketing container"));
            continue;
        }
        let container = containers[0];
        let http_port = list(container, "ports")
            .iter()
            .find(|p| text(p, "name") == Some("http"));
        if http_port
            .and_then(|p| at(p, "containerPort"))
            .and_then(scalar)
            .as_deref()
            != Some("8080")
        {
            problems.push(format!("{component}: no container port `http` on 8080"));
        }
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            let (probe_path, port) = http_probe(container, probe);
            if probe_path != Some(path) || !matches!(port.as_deref(), Some("http" | "8080")) {
                problems.push(format!(
                    "{component}: {probe} is {probe_path:?} on {port:?}, expected GET {path} on http"
                ));
            }
        }
        for resource in ["requests.cpu", "requests.memory", "limits.memory"] {
            if at(container, &format!("resources.{resource}")).is_none() {
                problems.push(format!("{component}: no resources.{resource}"));
            }
        }
        let non_root = at(container, "securityContext.runAsNonRoot")
            .or_else(|| at(pod, "securityContext.runAsNonRoot"))
            .and_then(Value::as_bool)
            == Some(true);
        let user = at(container, "securityContext.runAsUser")
            .or_else(|| at(pod, "securityContext.runAsUser"))
            .and_then(Value::as_u64);
        if !non_root || user == Some(0) {
            problems.push(format!("{component}: may run as root"));
        }
        if at(container, "securityContext.allowPrivilegeEscalation").and_then(Value::as_bool)
            != Some(false)
        {
            problems.push(format!(
                "{component}: allowPrivilegeEscalation is not false"
            ));
        }
        if at(container, "securityContext.readOnlyRootFilesystem").and_then(Value::as_bool)
            != Some(true)
        {
            problems.push(format!("{component}: root filesystem is writable"));
        }
        let grace = at(pod, "terminationGracePeriodSeconds").and_then(Value::as_u64);
        if !grace.is_some_and(|g| (30..=120).contains(&g)) {
            problems.push(format!(
                "{component}: terminationGracePeriodSeconds {grace:?} does not cover the 20 s drain"
            ));
        }
        let replicas = at(deployment, "spec.replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        if REPLICATED.contains(&component.as_str()) && replicas < 2 {
            problems.push(format!(
                "{component}: {replicas} replica(s), expected at least 2"
            ));
        }
        let names = container_env_names(deploy, container);
        if !names.contains("JWT_KEY") {
            problems.push(format!("{component}: no JWT_KEY (serve refuses to start)"));
        }
        if component == "web" && !names.contains("TICKETING_API_BASE") {
            problems.push("web: no TICKETING_API_BASE (serve web refuses to start)".into());
        }
    }
    problems
}

pub(crate) fn check_hpas(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let mut scaled = BTreeSet::new();
    for hpa in deploy.objects("HorizontalPodAutoscaler") {
        let hpa_name = name(hpa);
        if text(hpa, "apiVersion") != Some("autoscaling/v2") {
            problems.push(format!("HPA {hpa_name} is not autoscaling/v2"));
        }
        let target = text(hpa, "spec.scaleTargetRef.name").unwrap_or("");
        if text(hpa, "spec.scaleTargetRef.kind") != Some("Deployment")
            || deploy.object("Deployment", target).is_none()
        {
            problems.push(format!(
                "HPA {hpa_name} scales {target:?}, which is not a Deployment here"
            ));
        }
        let min = at(hpa, "spec.minReplicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let max = at(hpa, "spec.maxReplicas")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if min < 2 || max < min {
            problems.push(format!("HPA {hpa_name}: replicas {min}..{max}"));
        }
        if list(hpa, "spec.metrics").is_empty() {
            problems.push(format!("HPA {hpa_name} has no metrics"));
        }
        scaled.insert(target.to_owned());
    }
    for wanted in ["tickets", "orders"] {
        if !scaled.contains(wanted) {
            problems.push(format!("no HPA scales {wanted}"));
        }
    }
    problems
}

#[test]
fn every_object_is_named_in_the_namespace_and_applied_by_the_kustomization() {
    assert_none("objects", check_objects(&load()));
}

#[test]
fn every_service_selects_pods_and_targets_a_port_they_expose() {
    assert_none("services", check_services(&load()));
}

#[test]
fn every_component_is_probed_bounded_unprivileged_and_served_by_name() {
    assert_none("components", check_components(&load(), &binary()));
}

#[test]
fn autoscalers_scale_tickets_and_orders() {
    assert_none("autoscalers", check_hpas(&load()));
}
