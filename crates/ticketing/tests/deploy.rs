//! Offline checks of the deployment files in `deploy/`: the Kubernetes manifests
//! (`deploy/k8s`), the single-host compose file and its nginx ingress, and the Dockerfile.
//!
//! Nothing here talks to a cluster or a Docker engine. Each check reads the files, asserts a
//! property an operator relies on (a Service reaches its pods, the ingress routes each prefix
//! to the right component, the queue's Redis cannot evict, no secret is committed, every
//! variable a container sets is one the binary reads, ...) and returns the problems it
//! found. The settings and component names come from the built binary's own `--help`, so a
//! renamed setting fails here instead of being silently ignored in production.
//!
//! The last test breaks a copy of the real files in one way per check and asserts that the
//! check notices, so none of them can pass vacuously.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize;
use serde_norway::{Mapping, Value};

/// The namespace every object lives in.
const NAMESPACE: &str = "ticketing";

/// What the ingress (and the compose nginx) must route: path prefix → component.
/// Path → component; a path starting with `=` is matched exactly (the Ingress's `Exact`,
/// nginx's `location =` alone), the others as whole-segment prefixes.
const ROUTES: [(&str, &str); 6] = [
    ("/api/users", "auth"),
    ("/api/tickets", "tickets"),
    // The seed report's clients list tickets at the singular path.
    ("=/api/ticket", "tickets"),
    ("/api/orders", "orders"),
    ("/api/payments", "payments"),
    ("/", "web"),
];

/// Components that take the load of a sale and must not run as a single pod.
const REPLICATED: [&str; 3] = ["tickets", "orders", "expiration"];

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

// ---------------------------------------------------------------------------------------
// Loading

/// One YAML document and the file it came from.
#[derive(Clone)]
struct Doc {
    file: String,
    value: Value,
}

/// Everything under `deploy/`, parsed.
#[derive(Clone)]
struct Deploy {
    /// Every Kubernetes object of `deploy/k8s` (the kustomization apart).
    k8s: Vec<Doc>,
    kustomization: Value,
    /// The file names in `deploy/k8s`.
    k8s_files: BTreeSet<String>,
    compose: Value,
    nginx: String,
    dockerfile: String,
    dockerignore: String,
    readme: String,
    /// Every text file under `deploy/` (path relative to the repository, content).
    texts: Vec<(String, String)>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every document of a YAML stream; empty documents (comments only) are skipped.
fn parse_yaml_stream(file: &str, text: &str) -> Vec<Doc> {
    serde_norway::Deserializer::from_str(text)
        .enumerate()
        .filter_map(|(i, document)| {
            let value = Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{file}: document {} is not valid YAML: {e}", i + 1));
            (!value.is_null()).then(|| Doc {
                file: file.to_owned(),
                value,
            })
        })
        .collect()
}

fn load() -> Deploy {
    let root = repo_root();
    let deploy = root.join("deploy");
    let k8s_dir = deploy.join("k8s");
    let mut k8s = Vec::new();
    let mut k8s_files = BTreeSet::new();
    let mut kustomization = None;
    let mut entries: Vec<_> = std::fs::read_dir(&k8s_dir)
        .expect("deploy/k8s exists")
        .map(|e| e.expect("readable entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        k8s_files.insert(name.clone());
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let docs = parse_yaml_stream(&format!("deploy/k8s/{name}"), &read(&path));
        if name == "kustomization.yaml" {
            assert_eq!(docs.len(), 1, "kustomization.yaml holds one document");
            kustomization = Some(docs.into_iter().next().unwrap().value);
        } else {
            k8s.extend(docs);
        }
    }
    let mut compose = parse_yaml_stream("deploy/compose.yaml", &read(&deploy.join("compose.yaml")));
    assert_eq!(compose.len(), 1, "compose.yaml holds one document");
    let mut compose = compose.remove(0).value;
    compose
        .apply_merge()
        .expect("compose.yaml merge keys (<<) resolve");
    let mut texts = Vec::new();
    collect_texts(&root, &deploy, &mut texts);
    Deploy {
        k8s,
        kustomization: kustomization.expect("deploy/k8s/kustomization.yaml exists"),
        k8s_files,
        compose,
        nginx: read(&deploy.join("nginx.conf")),
        dockerfile: read(&deploy.join("Dockerfile")),
        dockerignore: read(&root.join(".dockerignore")),
        readme: read(&deploy.join("README.md")),
        texts,
    }
}

fn collect_texts(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            collect_texts(root, &path, out);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            out.push((relative, text));
        }
    }
}

/// What the built binary says about itself.
struct Binary {
    /// Every `[env: NAME]` of `ticketing --help` and `ticketing serve --help`.
    settings: BTreeSet<String>,
    /// The `serve` components.
    components: BTreeSet<String>,
}

fn help(args: &[&str]) -> String {
    // A clean environment: clap prints the current value of each variable in the help.
    let output = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .args(args)
        .env_clear()
        .output()
        .expect("the ticketing binary runs");
    assert!(output.status.success(), "ticketing {args:?} failed");
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

fn binary() -> Binary {
    let mut settings = BTreeSet::new();
    let serve = help(&["serve", "--help"]);
    for text in [help(&["--help"]), serve.clone()] {
        for (i, _) in text.match_indices("[env: ") {
            let name: String = text[i + 6..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            settings.insert(name);
        }
    }
    let marker = "[possible values: ";
    let start = serve
        .find(marker)
        .expect("serve --help lists the components")
        + marker.len();
    let end = start + serve[start..].find(']').unwrap();
    let components = serve[start..end]
        .split(',')
        .map(|c| c.trim().to_owned())
        .collect();
    let binary = Binary {
        settings,
        components,
    };
    // The parsing above is what every env check stands on: make sure it found something.
    for name in [
        "JWT_KEY",
        "DATABASE_URL",
        "REDIS_QUEUE_URL",
        "TICKETING_ADDR",
    ] {
        assert!(
            binary.settings.contains(name),
            "{name} not found in --help: {:?}",
            binary.settings
        );
    }
    assert!(binary.components.contains("tickets") && binary.components.contains("web"));
    binary
}

// ---------------------------------------------------------------------------------------
// YAML helpers

fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn text<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    at(value, path)?.as_str()
}

fn list<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

fn map<'a>(value: &'a Value, path: &str) -> Option<&'a Mapping> {
    at(value, path)?.as_mapping()
}

/// A scalar as text (`8080` and `"8080"` alike).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn name(object: &Value) -> &str {
    text(object, "metadata.name").unwrap_or("<unnamed>")
}

fn kind(object: &Value) -> &str {
    text(object, "kind").unwrap_or("<no kind>")
}

/// Whether every label of `selector` is on `labels`.
fn selects(selector: &Mapping, labels: Option<&Mapping>) -> bool {
    let Some(labels) = labels else { return false };
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn strings(values: &[Value]) -> Vec<String> {
    values.iter().filter_map(scalar).collect()
}

/// `--flag value` pairs of a command line (`redis-server --appendonly yes ...`).
fn flags(args: &[String]) -> BTreeMap<String, String> {
    args.windows(2)
        .filter(|pair| pair[0].starts_with("--"))
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// The host of a `scheme://host:port` URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    host_port.split(':').next()
}

impl Deploy {
    fn objects<'a>(&'a self, wanted: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.k8s
            .iter()
            .map(|d| &d.value)
            .filter(move |v| kind(v) == wanted)
    }

    fn object<'a>(&'a self, wanted: &'a str, object_name: &str) -> Option<&'a Value> {
        self.objects(wanted).find(|v| name(v) == object_name)
    }

    fn object_mut(&mut self, wanted: &str, object_name: &str) -> &mut Value {
        &mut self
            .k8s
            .iter_mut()
            .find(|d| kind(&d.value) == wanted && name(&d.value) == object_name)
            .unwrap_or_else(|| panic!("{wanted}/{object_name} exists"))
            .value
    }

    /// Deployments and StatefulSets.
    fn workloads(&self) -> impl Iterator<Item = &Value> {
        self.k8s
            .iter()
            .map(|d| &d.value)
            .filter(|v| matches!(kind(v), "Deployment" | "StatefulSet"))
    }

    /// Workloads whose pods a Service (or budget) with this selector picks.
    fn selected_by<'a>(&'a self, selector: &'a Mapping) -> impl Iterator<Item = &'a Value> + 'a {
        self.workloads()
            .filter(move |w| selects(selector, map(w, "spec.template.metadata.labels")))
    }

    /// `serve <component>` Deployments running the ticketing image: component → Deployment.
    fn components(&self) -> BTreeMap<String, &Value> {
        self.objects("Deployment")
            .filter_map(|d| {
                let container = ticketing_containers(d).next()?;
                let args = strings(list(container, "args"));
                match args.as_slice() {
                    [serve, component] if serve == "serve" => Some((component.clone(), d)),
                    _ => None,
                }
            })
            .collect()
    }

    /// The component behind a Service: the `serve` argument of the pods it selects.
    fn component_of_service(&self, service: &str) -> Option<String> {
        let selector = map(self.object("Service", service)?, "spec.selector")?;
        let components: BTreeSet<String> = self
            .selected_by(selector)
            .filter_map(|w| {
                let args = strings(list(ticketing_containers(w).next()?, "args"));
                (args.len() == 2 && args[0] == "serve").then(|| args[1].clone())
            })
            .collect();
        (components.len() == 1).then(|| components.into_iter().next().unwrap())
    }

    /// The workload behind a Service name (the first one it selects).
    fn workload_of_service(&self, service: &str) -> Option<&Value> {
        let selector = map(self.object("Service", service)?, "spec.selector")?;
        self.selected_by(selector).next()
    }

    fn config_value(&self, key: &str) -> Option<&str> {
        self.objects("ConfigMap")
            .find_map(|c| text(c, &format!("data.{key}")))
    }

    fn compose_services(&self) -> &Mapping {
        map(&self.compose, "services").expect("compose.yaml has services")
    }

    fn compose_service(&self, service: &str) -> Option<&Value> {
        self.compose_services().get(service)
    }
}

/// The containers of a workload that run the ticketing image.
fn ticketing_containers(workload: &Value) -> impl Iterator<Item = &Value> {
    list(workload, "spec.template.spec.containers")
        .iter()
        .filter(|c| text(c, "image").is_some_and(is_ticketing_image))
}

/// `ticketing`, `ticketing:tag` or `registry/.../ticketing:tag`.
fn is_ticketing_image(image: &str) -> bool {
    // The tag follows the last ':', unless that ':' is a registry's port.
    let repository = match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => image,
    };
    repository.rsplit('/').next() == Some("ticketing")
}

/// A compose service built from deploy/Dockerfile or running the ticketing image.
fn is_ticketing_service(service: &Value) -> bool {
    text(service, "build.dockerfile") == Some("deploy/Dockerfile")
        || text(service, "image").is_some_and(|i| i.contains("ticketing"))
}

fn compose_command(service: &Value) -> Vec<String> {
    match at(service, "command") {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Sequence(items)) => strings(items),
        _ => Vec::new(),
    }
}

/// A compose service's environment as name → value (`None`: passed through from the shell).
fn compose_env(service: &Value) -> BTreeMap<String, Option<String>> {
    match at(service, "environment") {
        Some(Value::Mapping(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v))))
            .collect(),
        Some(Value::Sequence(items)) => strings(items)
            .into_iter()
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (item, None),
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Checks: each returns the problems it found.

fn check_objects(deploy: &Deploy) -> Vec<String> {
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

fn check_services(deploy: &Deploy) -> Vec<String> {
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

fn expected_routes() -> BTreeMap<String, String> {
    ROUTES
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect()
}

fn check_ingress(deploy: &Deploy) -> Vec<String> {
    let (routes, mut problems) = ingress_routes(deploy);
    if routes != expected_routes() {
        problems.push(format!(
            "the Ingress routes {routes:?}, expected {:?}",
            expected_routes()
        ));
    }
    problems
}

fn http_probe<'a>(container: &'a Value, probe: &str) -> (Option<&'a str>, Option<String>) {
    (
        text(container, &format!("{probe}.httpGet.path")),
        at(container, &format!("{probe}.httpGet.port")).and_then(scalar),
    )
}

fn check_components(deploy: &Deploy, binary: &Binary) -> Vec<String> {
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

fn check_hpas(deploy: &Deploy) -> Vec<String> {
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

/// Every variable a container gets: its `env` and the keys of ConfigMaps in `envFrom`.
fn container_env_names(deploy: &Deploy, container: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = list(container, "env")
        .iter()
        .filter_map(|e| text(e, "name").map(str::to_owned))
        .collect();
    for source in list(container, "envFrom") {
        if let Some(config) = text(source, "configMapRef.name")
            && let Some(data) = deploy
                .object("ConfigMap", config)
                .and_then(|c| map(c, "data"))
        {
            names.extend(data.keys().filter_map(|k| k.as_str().map(str::to_owned)));
        }
    }
    names
}

fn check_env(deploy: &Deploy, binary: &Binary) -> Vec<String> {
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
            // The binary takes an empty variable as set (an empty Stripe key selects Stripe).
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

/// Secrets referenced by the manifests: name → keys.
fn referenced_secrets(deploy: &Deploy) -> BTreeMap<String, BTreeSet<String>> {
    let mut secrets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for workload in deploy.workloads() {
        let pod = at(workload, "spec.template.spec").unwrap();
        let containers = list(pod, "containers")
            .iter()
            .chain(list(pod, "initContainers"));
        for container in containers {
            for variable in list(container, "env") {
                if let (Some(secret), Some(key)) = (
                    text(variable, "valueFrom.secretKeyRef.name"),
                    text(variable, "valueFrom.secretKeyRef.key"),
                ) {
                    secrets.entry(secret.into()).or_default().insert(key.into());
                }
            }
            for source in list(container, "envFrom") {
                if let Some(secret) = text(source, "secretRef.name") {
                    secrets.entry(secret.into()).or_default();
                }
            }
        }
        for volume in list(pod, "volumes") {
            if let Some(secret) = text(volume, "secret.secretName") {
                secrets.entry(secret.into()).or_default();
            }
        }
    }
    secrets
}

fn check_secrets(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let secrets = referenced_secrets(deploy);
    for wanted in ["ticketing-secrets", "ticketing-postgres"] {
        if !secrets.contains_key(wanted) {
            problems.push(format!("no workload references Secret {wanted}"));
        }
    }
    for (secret, keys) in &secrets {
        let command = format!("create secret generic {secret}");
        if !deploy.readme.contains(&command) {
            problems.push(format!(
                "deploy/README.md does not show `kubectl ... {command}`"
            ));
        }
        for key in keys {
            if !deploy.readme.contains(&format!("--from-literal={key}="))
                && !deploy.readme.contains(&format!("--from-file={key}="))
            {
                problems.push(format!(
                    "deploy/README.md does not show how to set {key} in {secret}"
                ));
            }
        }
    }
    for doc in &deploy.k8s {
        if kind(&doc.value) == "Secret"
            && (at(&doc.value, "data").is_some() || at(&doc.value, "stringData").is_some())
        {
            problems.push(format!(
                "{}: commits Secret {} with data",
                doc.file,
                name(&doc.value)
            ));
        }
    }
    // The same for any YAML elsewhere under deploy/ (a stray secret.yaml).
    for (path, content) in &deploy.texts {
        if (path.ends_with(".yaml") || path.ends_with(".yml"))
            && content.lines().any(|l| l.trim() == "kind: Secret")
        {
            problems.push(format!("{path} holds a Secret object"));
        }
    }
    problems
}

/// Text that looks like a real credential rather than a placeholder.
fn secret_literals(path: &str, content: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for prefix in ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"] {
        for (i, _) in content.match_indices(prefix) {
            let tail = content[i + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .count();
            if tail >= 8 {
                problems.push(format!("{path}: a {prefix}... key"));
            }
        }
    }
    if content.contains("PRIVATE KEY-----") {
        problems.push(format!("{path}: a private key"));
    }
    // JWT_KEY set to anything but an expansion of the environment or a command.
    for marker in ["JWT_KEY=", "JWT_KEY: "] {
        for (i, _) in content.match_indices(marker) {
            let value = content[i + marker.len()..]
                .trim_start_matches(['"', '\''])
                .chars()
                .next();
            if value.is_some_and(|c| !matches!(c, '$' | '<' | '\n' | ' ' | '`' | '"' | '\'')) {
                problems.push(format!("{path}: JWT_KEY is given a literal value"));
            }
        }
    }
    problems
}

fn check_secret_literals(deploy: &Deploy) -> Vec<String> {
    deploy
        .texts
        .iter()
        .flat_map(|(path, content)| secret_literals(path, content))
        .collect()
}

/// The container args of the workload behind a URL's host, when it runs one container.
fn k8s_server_args<'a>(deploy: &'a Deploy, url: &str) -> Option<(&'a Value, Vec<String>)> {
    let workload = deploy.workload_of_service(url_host(url)?)?;
    let container = list(workload, "spec.template.spec.containers").first()?;
    let mut args = strings(list(container, "command"));
    args.extend(strings(list(container, "args")));
    Some((workload, args))
}

/// Whether `path` lies on a volume that outlives the pod (a volumeClaimTemplate or PVC).
fn on_persistent_volume(workload: &Value, path: &str) -> bool {
    let claims: BTreeSet<&str> = list(workload, "spec.volumeClaimTemplates")
        .iter()
        .filter_map(|c| text(c, "metadata.name"))
        .chain(
            list(workload, "spec.template.spec.volumes")
                .iter()
                .filter(|v| at(v, "persistentVolumeClaim").is_some())
                .filter_map(|v| text(v, "name")),
        )
        .collect();
    list(workload, "spec.template.spec.containers")
        .iter()
        .flat_map(|c| list(c, "volumeMounts"))
        .any(|m| {
            text(m, "name").is_some_and(|n| claims.contains(n))
                && text(m, "mountPath").is_some_and(|mount| {
                    let mount = mount.trim_end_matches('/');
                    path == mount || path.starts_with(&format!("{mount}/"))
                })
        })
}

/// Problems with a queue Redis command line and a cache one.
fn redis_flag_problems(place: &str, queue: &[String], cache: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let queue = flags(queue);
    if queue.get("--appendonly").map(String::as_str) != Some("yes") {
        problems.push(format!(
            "{place}: the queue Redis does not run with --appendonly yes"
        ));
    }
    if !matches!(
        queue.get("--appendfsync").map(String::as_str),
        None | Some("everysec" | "always")
    ) {
        problems.push(format!("{place}: the queue Redis' appendfsync is too lax"));
    }
    if queue.get("--maxmemory-policy").map(String::as_str) != Some("noeviction") {
        problems.push(format!(
            "{place}: the queue Redis does not run with --maxmemory-policy noeviction"
        ));
    }
    let cache = flags(cache);
    if !cache.contains_key("--maxmemory") || !cache.contains_key("--maxmemory-policy") {
        problems.push(format!(
            "{place}: the cache Redis has no memory bound and policy"
        ));
    }
    problems
}

fn check_redis(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let queue_url = deploy.config_value("REDIS_QUEUE_URL").unwrap_or("");
    let cache_url = deploy.config_value("REDIS_CACHE_URL").unwrap_or("");
    if url_host(queue_url).is_none() || url_host(queue_url) == url_host(cache_url) {
        problems.push(format!(
            "k8s: the queue Redis ({queue_url:?}) must be its own instance, apart from the cache ({cache_url:?})"
        ));
    }
    match (
        k8s_server_args(deploy, queue_url),
        k8s_server_args(deploy, cache_url),
    ) {
        (Some((queue, queue_args)), Some((_, cache_args))) => {
            problems.extend(redis_flag_problems("k8s", &queue_args, &cache_args));
            if kind(queue) != "StatefulSet" || !on_persistent_volume(queue, "/data") {
                problems.push("k8s: the queue Redis' /data is not on a persistent volume".into());
            }
        }
        _ => problems.push("k8s: REDIS_QUEUE_URL or REDIS_CACHE_URL names no Redis here".into()),
    }
    // compose: the same rules, by service name.
    let env = deploy
        .compose_service("expiration")
        .map(compose_env)
        .unwrap_or_default();
    let tickets_env = deploy
        .compose_service("tickets")
        .map(compose_env)
        .unwrap_or_default();
    let host = |env: &BTreeMap<String, Option<String>>, key: &str| {
        env.get(key)
            .cloned()
            .flatten()
            .and_then(|u| url_host(&u).map(str::to_owned))
    };
    let queue_host = host(&env, "REDIS_QUEUE_URL");
    let cache_host = host(&tickets_env, "REDIS_CACHE_URL");
    match (
        queue_host.as_deref().and_then(|h| deploy.compose_service(h)),
        cache_host.as_deref().and_then(|h| deploy.compose_service(h)),
    ) {
        (Some(queue), Some(cache)) if queue_host != cache_host => {
            problems.extend(redis_flag_problems(
                "compose",
                &compose_command(queue),
                &compose_command(cache),
            ));
            if !compose_named_volume_at(queue, "/data") {
                problems.push("compose: the queue Redis' /data is not a named volume".into());
            }
        }
        _ => problems.push(format!(
            "compose: the queue Redis ({queue_host:?}) and the cache Redis ({cache_host:?}) must be two services"
        )),
    }
    problems
}

/// Whether a compose service mounts a named volume (not a bind mount) at `path`.
fn compose_named_volume_at(service: &Value, path: &str) -> bool {
    list(service, "volumes").iter().any(|v| match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            parts.len() >= 2
                && !parts[0].starts_with(['.', '/'])
                && parts[1].trim_end_matches('/') == path
        }
        _ => text(v, "type") == Some("volume") && text(v, "target") == Some(path),
    })
}

/// The `store_dir` of a NATS configuration that enables JetStream.
fn jetstream_store_dir(config: &str) -> Option<String> {
    let start = config.find("jetstream")?;
    let block = &config[start..];
    if !block
        .trim_start_matches("jetstream")
        .trim_start()
        .starts_with(['{', ':'])
    {
        return None;
    }
    block.lines().find_map(|line| {
        let value = line.trim().strip_prefix("store_dir")?;
        Some(
            value
                .trim_start_matches([':', '=', ' '])
                .trim_matches(['"', ' '])
                .to_owned(),
        )
    })
}

fn check_nats(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let url = deploy.config_value("NATS_URL").unwrap_or("");
    match k8s_server_args(deploy, url) {
        Some((nats, args)) => {
            let flags = flags(&args);
            let store = match flags.get("--config").or_else(|| flags.get("-c")) {
                Some(path) => {
                    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
                    let container = &list(nats, "spec.template.spec.containers")[0];
                    let volume = list(container, "volumeMounts")
                        .iter()
                        .find(|m| {
                            text(m, "mountPath").map(|p| p.trim_end_matches('/')) == Some(dir)
                        })
                        .and_then(|m| text(m, "name"));
                    let config_map = list(nats, "spec.template.spec.volumes")
                        .iter()
                        .find(|v| text(v, "name") == volume)
                        .and_then(|v| text(v, "configMap.name"));
                    config_map
                        .and_then(|c| deploy.object("ConfigMap", c))
                        .and_then(|c| map(c, "data")?.get(file)?.as_str())
                        .and_then(jetstream_store_dir)
                }
                None if args.iter().any(|a| a == "-js" || a == "--jetstream") => flags
                    .get("-sd")
                    .or_else(|| flags.get("--store_dir"))
                    .cloned(),
                None => None,
            };
            match store {
                Some(dir) if kind(nats) == "StatefulSet" && on_persistent_volume(nats, &dir) => {}
                Some(dir) => problems.push(format!(
                    "k8s: JetStream stores in {dir}, which is not on a persistent volume"
                )),
                None => {
                    problems.push("k8s: NATS does not enable JetStream with a store_dir".into())
                }
            }
        }
        None => problems.push(format!("k8s: NATS_URL {url:?} names no NATS here")),
    }
    let host = deploy
        .compose_service("orders")
        .map(compose_env)
        .and_then(|env| env.get("NATS_URL").cloned().flatten())
        .and_then(|u| url_host(&u).map(str::to_owned));
    let Some(nats) = host.as_deref().and_then(|h| deploy.compose_service(h)) else {
        problems.push(format!("compose: NATS_URL host {host:?} is not a service"));
        return problems;
    };
    let command = compose_command(nats);
    let flags = flags(&command);
    let store = match flags.get("--config").or_else(|| flags.get("-c")) {
        Some(path) => list(nats, "configs")
            .iter()
            .find(|c| text(c, "target") == Some(path.as_str()))
            .and_then(|c| text(c, "source"))
            .and_then(|source| text(&deploy.compose, &format!("configs.{source}.content")))
            .and_then(jetstream_store_dir),
        None if command.iter().any(|a| a == "-js" || a == "--jetstream") => flags
            .get("-sd")
            .or_else(|| flags.get("--store_dir"))
            .cloned(),
        None => None,
    };
    match store {
        Some(dir) => {
            let persisted = list(nats, "volumes")
                .iter()
                .filter_map(Value::as_str)
                .any(|v| {
                    let mut parts = v.split(':');
                    let source = parts.next().unwrap_or("");
                    let target = parts.next().unwrap_or("").trim_end_matches('/');
                    !source.starts_with(['.', '/'])
                        && (dir == target || dir.starts_with(&format!("{target}/")))
                });
            if !persisted {
                problems.push(format!(
                    "compose: JetStream stores in {dir}, not on a named volume"
                ));
            }
        }
        None => problems.push("compose: NATS does not enable JetStream with a store_dir".into()),
    }
    problems
}

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

fn check_compose(deploy: &Deploy, binary: &Binary) -> Vec<String> {
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

/// An nginx directive: its name, its arguments and, for blocks, what is inside.
#[derive(Debug)]
struct Directive {
    name: String,
    args: Vec<String>,
    block: Vec<Directive>,
}

fn nginx_tokens(config: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = config.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' | '}' | ';' => tokens.push(c.to_string()),
            '"' | '\'' => {
                let mut token = String::new();
                for next in chars.by_ref() {
                    if next == c {
                        break;
                    }
                    token.push(next);
                }
                tokens.push(token);
            }
            c if c.is_whitespace() => {}
            c => {
                let mut token = c.to_string();
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || matches!(next, '{' | '}' | ';') {
                        break;
                    }
                    token.push(next);
                    chars.next();
                }
                tokens.push(token);
            }
        }
    }
    tokens
}

fn nginx_parse(tokens: &mut std::iter::Peekable<std::vec::IntoIter<String>>) -> Vec<Directive> {
    let mut directives = Vec::new();
    while let Some(token) = tokens.next() {
        if token == "}" {
            break;
        }
        let mut args = Vec::new();
        let mut block = Vec::new();
        for next in tokens.by_ref() {
            match next.as_str() {
                ";" => break,
                "{" => {
                    block = nginx_parse(tokens);
                    break;
                }
                _ => args.push(next),
            }
        }
        directives.push(Directive {
            name: token,
            args,
            block,
        });
    }
    directives
}

/// nginx's routes as normalised prefix → component, and the problems met on the way.
fn nginx_routes(deploy: &Deploy) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let mut problems = Vec::new();
    let mut tokens = nginx_tokens(&deploy.nginx).into_iter().peekable();
    let top = nginx_parse(&mut tokens);
    let Some(http) = top.iter().find(|d| d.name == "http") else {
        return (BTreeMap::new(), vec!["nginx.conf has no http block".into()]);
    };
    let upstreams: BTreeMap<&str, Vec<&str>> = http
        .block
        .iter()
        .filter(|d| d.name == "upstream")
        .map(|u| {
            let servers = u
                .block
                .iter()
                .filter(|d| d.name == "server")
                .filter_map(|d| d.args.first().map(String::as_str))
                .collect();
            (u.args.first().map_or("", String::as_str), servers)
        })
        .collect();
    let component_of = |host_port: &str| -> Option<String> {
        let (host, port) = host_port.split_once(':').unwrap_or((host_port, "80"));
        let service = deploy.compose_service(host)?;
        let command = compose_command(service);
        (port == "8080" && command.len() == 2 && command[0] == "serve").then(|| command[1].clone())
    };
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for server in http.block.iter().filter(|d| d.name == "server") {
        let locations: Vec<&Directive> = server
            .block
            .iter()
            .filter(|d| d.name == "location")
            .collect();
        // Paths of the prefix locations: `location = /api/users` beside `location /api/users/`
        // is the Ingress's Prefix `/api/users`; a `location =` alone is an Exact path.
        let prefixes: BTreeSet<String> = locations
            .iter()
            .filter_map(|l| match l.args.as_slice() {
                [path] => Some(path.trim_end_matches('/').to_owned()),
                _ => None,
            })
            .collect();
        for location in locations {
            let (exact, path) = match location.args.as_slice() {
                [path] => (false, path.clone()),
                [modifier, path] if modifier == "=" => (true, path.clone()),
                [modifier, path] if modifier == "^~" => (false, path.clone()),
                other => {
                    problems.push(format!("nginx location {other:?} is not a plain prefix"));
                    continue;
                }
            };
            let prefix = if path == "/" {
                path.clone()
            } else if exact && !prefixes.contains(&path) {
                format!("={path}")
            } else {
                path.trim_end_matches('/').to_owned()
            };
            let Some(target) = location
                .block
                .iter()
                .find(|d| d.name == "proxy_pass")
                .and_then(|d| d.args.first())
            else {
                problems.push(format!("nginx location {path} proxies nowhere"));
                continue;
            };
            let host = target.trim_start_matches("http://").trim_end_matches('/');
            let servers = upstreams.get(host).cloned().unwrap_or_else(|| vec![host]);
            for server in servers {
                match component_of(server) {
                    Some(component) => {
                        routes.entry(prefix.clone()).or_default().insert(component);
                    }
                    None => problems.push(format!(
                        "nginx location {path} goes to {server}, which is no component's port 8080"
                    )),
                }
            }
        }
    }
    (routes, problems)
}

fn check_nginx(deploy: &Deploy) -> Vec<String> {
    let (routes, mut problems) = nginx_routes(deploy);
    let expected: BTreeMap<String, BTreeSet<String>> = expected_routes()
        .into_iter()
        .map(|(p, c)| (p, BTreeSet::from([c])))
        .collect();
    if routes != expected {
        problems.push(format!(
            "nginx.conf routes {routes:?}, expected {expected:?}"
        ));
    }
    // The compose ingress uses this very file and publishes it on 8088.
    let ingress = deploy.compose_services().iter().find(|(_, s)| {
        list(s, "volumes")
            .iter()
            .filter_map(Value::as_str)
            .any(|v| v.starts_with("./nginx.conf:"))
    });
    match ingress {
        Some((_, service)) => {
            let ports = strings(list(service, "ports"));
            if !ports
                .iter()
                .any(|p| p.contains("8088") && p.ends_with(":80"))
            {
                problems.push(format!(
                    "compose ingress publishes {ports:?}, not 8088 -> 80"
                ));
            }
        }
        None => problems.push("no compose service mounts ./nginx.conf".into()),
    }
    problems
}

/// Dockerfile instructions, continuation lines joined, comments dropped.
fn dockerfile_instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (word, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        instructions.push((word.to_ascii_uppercase(), rest.trim().to_owned()));
        current.clear();
    }
    instructions
}

fn check_dockerfile(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let instructions = dockerfile_instructions(&deploy.dockerfile);
    let stages: Vec<usize> = instructions
        .iter()
        .enumerate()
        .filter(|(_, (word, _))| word == "FROM")
        .map(|(i, _)| i)
        .collect();
    if stages.len() < 2 {
        problems.push("the Dockerfile is not multi-stage".into());
        return problems;
    }
    let last = *stages.last().unwrap();
    let (build, run) = instructions.split_at(last);
    let builds = build.iter().any(|(word, args)| {
        word == "RUN"
            && args.contains("cargo build")
            && args.contains("--release")
            && args.contains("--locked")
            && args.contains("-p ticketing")
    });
    if !builds {
        problems.push("no build stage runs `cargo build --release --locked -p ticketing`".into());
    }
    if !run
        .iter()
        .any(|(word, args)| word == "COPY" && args.starts_with("--from="))
    {
        problems.push("the final stage does not copy the binary from the build stage".into());
    }
    match run.iter().rev().find(|(word, _)| word == "USER") {
        Some((_, user)) => {
            let who = user.split(':').next().unwrap_or("");
            if who == "root" || who == "0" || who.is_empty() {
                problems.push(format!("the final stage runs as {user}"));
            }
        }
        None => problems.push("the final stage has no USER (it would run as root)".into()),
    }
    if !run
        .iter()
        .any(|(word, args)| word == "ENTRYPOINT" && args.contains("ticketing"))
    {
        problems.push("the final stage's ENTRYPOINT is not the ticketing binary".into());
    }
    if !run
        .iter()
        .any(|(word, args)| word == "ENV" && args.contains("TICKETING_ADDR=0.0.0.0:"))
    {
        problems.push("the image does not listen on every interface (TICKETING_ADDR)".into());
    }
    let ignored: Vec<&str> = deploy.dockerignore.lines().map(str::trim).collect();
    for wanted in ["target/", ".git/"] {
        if !ignored.contains(&wanted) {
            problems.push(format!(".dockerignore does not exclude {wanted}"));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// Tests

fn assert_none(check: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{check}:\n  {}", problems.join("\n  "));
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
fn the_ingress_routes_the_four_api_prefixes_and_the_rest_to_their_components() {
    assert_none("ingress", check_ingress(&load()));
}

#[test]
fn every_component_is_probed_bounded_unprivileged_and_served_by_name() {
    assert_none("components", check_components(&load(), &binary()));
}

#[test]
fn autoscalers_scale_tickets_and_orders() {
    assert_none("autoscalers", check_hpas(&load()));
}

#[test]
fn containers_set_only_variables_the_binary_reads() {
    assert_none("environment", check_env(&load(), &binary()));
}

#[test]
fn secrets_are_referenced_documented_and_never_committed() {
    let deploy = load();
    let mut problems = check_secrets(&deploy);
    problems.extend(check_secret_literals(&deploy));
    assert_none("secrets", problems);
}

#[test]
fn the_queue_redis_persists_and_never_evicts_and_is_not_the_cache() {
    assert_none("redis", check_redis(&load()));
}

#[test]
fn nats_runs_jetstream_on_persistent_storage() {
    assert_none("nats", check_nats(&load()));
}

#[test]
fn compose_runs_every_component_and_its_nginx_routes_like_the_ingress() {
    let deploy = load();
    let mut problems = check_compose(&deploy, &binary());
    problems.extend(check_nginx(&deploy));
    assert_none("compose and nginx", problems);
}

#[test]
fn the_image_is_built_in_one_stage_and_runs_unprivileged_in_another() {
    assert_none("Dockerfile", check_dockerfile(&load()));
}

/// Breaks a copy of the real files in one way per check; every check must notice.
#[test]
fn each_check_catches_a_broken_copy() {
    let binary = binary();
    let original = load();
    let broken =
        |describe: &str, mutate: &dyn Fn(&mut Deploy), check: &dyn Fn(&Deploy) -> Vec<String>| {
            let mut deploy = original.clone();
            mutate(&mut deploy);
            assert!(!check(&deploy).is_empty(), "not caught: {describe}");
        };

    broken(
        "a Service targeting a port name the pods do not have",
        &|d| d.object_mut("Service", "auth")["spec"]["ports"][0]["targetPort"] = "htttp".into(),
        &check_services,
    );
    broken(
        "a Service selecting no pods",
        &|d| {
            d.object_mut("Service", "orders")["spec"]["selector"]["app.kubernetes.io/component"] =
                "order".into()
        },
        &check_services,
    );
    broken(
        "an object outside the namespace",
        &|d| {
            d.object_mut("ConfigMap", "ticketing-config")["metadata"]["namespace"] =
                "default".into()
        },
        &check_objects,
    );
    broken(
        "/api/orders routed to tickets",
        &|d| {
            let ingress = d.object_mut("Ingress", "ticketing");
            for path in ingress["spec"]["rules"][0]["http"]["paths"]
                .as_sequence_mut()
                .unwrap()
            {
                if path["path"] == "/api/orders" {
                    path["backend"]["service"]["name"] = "tickets".into();
                }
            }
        },
        &check_ingress,
    );
    broken(
        "an Ingress backend port the Service does not expose",
        &|d| {
            d.object_mut("Ingress", "ticketing")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
                ["service"]["port"]["number"] = 8080.into()
        },
        &check_ingress,
    );
    broken(
        "web's readiness probe on /healthz",
        &|d| {
            d.object_mut("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
                ["httpGet"]["path"] = "/healthz".into()
        },
        &|d| check_components(d, &binary),
    );
    broken(
        "a component the binary does not know",
        &|d| {
            d.object_mut("Deployment", "payments")["spec"]["template"]["spec"]["containers"][0]["args"]
                [1] = "payment".into()
        },
        &|d| check_components(d, &binary),
    );
    broken(
        "orders as a single replica",
        &|d| d.object_mut("Deployment", "orders")["spec"]["replicas"] = 1.into(),
        &|d| check_components(d, &binary),
    );
    broken(
        "an HPA scaling a missing Deployment",
        &|d| {
            d.object_mut("HorizontalPodAutoscaler", "orders")["spec"]["scaleTargetRef"]["name"] =
                "order".into()
        },
        &check_hpas,
    );
    broken(
        "a misspelt setting in the ConfigMap",
        &|d| {
            let config = d.object_mut("ConfigMap", "ticketing-config");
            let data = config["data"].as_mapping_mut().unwrap();
            let url = data.remove("REDIS_QUEUE_URL").unwrap();
            data.insert("REDIS_QUEUE_URI".into(), url);
        },
        &|d| check_env(d, &binary),
    );
    broken(
        "a misspelt setting in compose",
        &|d| d.compose["services"]["orders"]["environment"]["EXPIRATION_WINDOW"] = "900".into(),
        &|d| check_env(d, &binary),
    );
    broken(
        "an empty Stripe key in compose",
        &|d| d.compose["services"]["payments"]["environment"]["STRIPE_SECRET_KEY"] = "".into(),
        &|d| check_env(d, &binary),
    );
    broken(
        "a committed Secret",
        &|d| {
            let secret: Value = serde_norway::from_str(
                "apiVersion: v1\nkind: Secret\nmetadata: {name: ticketing-secrets, namespace: ticketing}\nstringData: {JWT_KEY: x}\n",
            )
            .unwrap();
            d.k8s.push(Doc {
                file: "deploy/k8s/secret.yaml".into(),
                value: secret,
            });
        },
        &check_secrets,
    );
    broken(
        "a Secret the README does not explain",
        &|d| {
            d.object_mut("Deployment", "auth")["spec"]["template"]["spec"]["containers"][0]["env"]
                [0]["valueFrom"]["secretKeyRef"]["name"] = "auth-secrets".into()
        },
        &check_secrets,
    );
    broken(
        "a Stripe webhook secret in a file",
        &|d| {
            d.texts.push((
                "deploy/compose.override.yaml".into(),
                "STRIPE_WEBHOOK_SECRET: whsec_0123456789abcdef\n".into(),
            ))
        },
        &check_secret_literals,
    );
    broken(
        "a literal JWT key",
        &|d| {
            d.texts.push((
                "deploy/README.md".into(),
                "export JWT_KEY=hunter2hunter2hunter2hunter2hunter2\n".into(),
            ))
        },
        &check_secret_literals,
    );
    broken(
        "a queue Redis that may evict",
        &|d| {
            let args = d.object_mut("StatefulSet", "redis-queue")["spec"]["template"]["spec"]
                ["containers"][0]["args"]
                .as_sequence_mut()
                .unwrap();
            for arg in args.iter_mut() {
                if *arg == "noeviction" {
                    *arg = "allkeys-lru".into();
                }
            }
        },
        &check_redis,
    );
    broken(
        "the queue sharing the cache's Redis",
        &|d| {
            d.object_mut("ConfigMap", "ticketing-config")["data"]["REDIS_QUEUE_URL"] =
                "redis://redis-cache:6379".into()
        },
        &check_redis,
    );
    broken(
        "a compose queue Redis without AOF",
        &|d| {
            d.compose["services"]["redis-queue"]["command"] =
                Value::Sequence(vec!["redis-server".into()])
        },
        &check_redis,
    );
    broken(
        "JetStream on a throw-away volume",
        &|d| {
            d.object_mut("StatefulSet", "nats")["spec"]["volumeClaimTemplates"] =
                Value::Sequence(Vec::new())
        },
        &check_nats,
    );
    broken(
        "compose NATS without JetStream",
        &|d| {
            d.compose["services"]["nats"]["command"] = Value::Sequence(Vec::new());
        },
        &check_nats,
    );
    broken(
        "a compose dependency on a missing service",
        &|d| d.compose["services"]["ingress"]["depends_on"] = Value::Sequence(vec!["webb".into()]),
        &|d| check_compose(d, &binary),
    );
    broken(
        "a literal JWT_KEY in compose",
        &|d| d.compose["services"]["web"]["environment"]["JWT_KEY"] = "secret".into(),
        &|d| check_compose(d, &binary),
    );
    broken(
        "nginx sending /api/orders to tickets",
        &|d| {
            d.nginx = d.nginx.replace(
                "location /api/orders/ { proxy_pass http://orders; }",
                "location /api/orders/ { proxy_pass http://tickets; }",
            )
        },
        &check_nginx,
    );
    broken(
        "nginx sending /api/ticket nowhere",
        &|d| {
            d.nginx = d
                .nginx
                .replace("location = /api/ticket {", "location = /api/tickts {")
        },
        &check_nginx,
    );
    broken(
        "the Ingress's /api/ticket as a prefix",
        &|d| {
            let ingress = d.object_mut("Ingress", "ticketing");
            for path in ingress["spec"]["rules"][0]["http"]["paths"]
                .as_sequence_mut()
                .unwrap()
            {
                if path["path"] == "/api/ticket" {
                    path["pathType"] = "Prefix".into();
                }
            }
        },
        &check_ingress,
    );
    broken(
        "nginx missing /api/payments",
        &|d| d.nginx = d.nginx.replace("/api/payments", "/api/payment"),
        &check_nginx,
    );
    broken(
        "an image that ends as root",
        &|d| d.dockerfile.push_str("\nUSER root\n"),
        &check_dockerfile,
    );
    broken(
        "a single-stage image",
        &|d| {
            d.dockerfile = d
                .dockerfile
                .lines()
                .filter(|l| !l.starts_with("FROM debian"))
                .collect::<Vec<_>>()
                .join("\n")
        },
        &check_dockerfile,
    );
}
