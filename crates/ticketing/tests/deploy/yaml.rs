//! Reading the parsed YAML: dotted-path lookups on a value, and the questions several checks
//! ask of the manifests and the compose file (which pods a Service selects, which component a
//! Deployment serves, what a container's environment holds, where a server keeps its data).

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::{Mapping, Value};

use crate::support::Deploy;

pub(crate) fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

pub(crate) fn text<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    at(value, path)?.as_str()
}

pub(crate) fn list<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn map<'a>(value: &'a Value, path: &str) -> Option<&'a Mapping> {
    at(value, path)?.as_mapping()
}

/// A scalar as text (`8080` and `"8080"` alike).
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn name(object: &Value) -> &str {
    text(object, "metadata.name").unwrap_or("<unnamed>")
}

pub(crate) fn kind(object: &Value) -> &str {
    text(object, "kind").unwrap_or("<no kind>")
}

/// Whether every label of `selector` is on `labels`.
pub(crate) fn selects(selector: &Mapping, labels: Option<&Mapping>) -> bool {
    let Some(labels) = labels else { return false };
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub(crate) fn strings(values: &[Value]) -> Vec<String> {
    values.iter().filter_map(scalar).collect()
}

/// `--flag value` pairs of a command line (`redis-server --appendonly yes ...`).
pub(crate) fn flags(args: &[String]) -> BTreeMap<String, String> {
    args.windows(2)
        .filter(|pair| pair[0].starts_with("--"))
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

/// The host of a `scheme://host:port` URL.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    host_port.split(':').next()
}

impl Deploy {
    pub(crate) fn objects<'a>(&'a self, wanted: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.k8s
            .iter()
            .map(|d| &d.value)
            .filter(move |v| kind(v) == wanted)
    }

    pub(crate) fn object<'a>(&'a self, wanted: &'a str, object_name: &str) -> Option<&'a Value> {
        self.objects(wanted).find(|v| name(v) == object_name)
    }

    pub(crate) fn object_mut(&mut self, wanted: &str, object_name: &str) -> &mut Value {
        &mut self
            .k8s
            .iter_mut()
            .find(|d| kind(&d.value) == wanted && name(&d.value) == object_name)
            .unwrap_or_else(|| panic!("{wanted}/{object_name} exists"))
            .value
    }

    /// Deployments and StatefulSets.
    pub(crate) fn workloads(&self) -> impl Iterator<Item = &Value> {
        self.k8s
            .iter()
            .map(|d| &d.value)
            .filter(|v| matches!(kind(v), "Deployment" | "StatefulSet"))
    }

    /// Workloads whose pods a Service (or budget) with this selector picks.
    pub(crate) fn selected_by<'a>(
        &'a self,
        selector: &'a Mapping,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.workloads()
            .filter(move |w| selects(selector, map(w, "spec.template.metadata.labels")))
    }

    /// `serve <component>` Deployments running the ticketing image: component → Deployment.
    pub(crate) fn components(&self) -> BTreeMap<String, &Value> {
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
    pub(crate) fn component_of_service(&self, service: &str) -> Option<String> {
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
    pub(crate) fn workload_of_service(&self, service: &str) -> Option<&Value> {
        let selector = map(self.object("Service", service)?, "spec.selector")?;
        self.selected_by(selector).next()
    }

    pub(crate) fn config_value(&self, key: &str) -> Option<&str> {
        self.objects("ConfigMap")
            .find_map(|c| text(c, &format!("data.{key}")))
    }

    pub(crate) fn compose_services(&self) -> &Mapping {
        map(&self.compose, "services").expect("compose.yaml has services")
    }

    pub(crate) fn compose_service(&self, service: &str) -> Option<&Value> {
        self.compose_services().get(service)
    }
}

/// The containers of a workload that run the ticketing image.
pub(crate) fn ticketing_containers(workload: &Value) -> impl Iterator<Item = &Value> {
    list(workload, "spec.template.spec.containers")
        .iter()
        .filter(|c| text(c, "image").is_some_and(is_ticketing_image))
}

/// `ticketing`, `ticketing:tag` or `registry/.../ticketing:tag`.
pub(crate) fn is_ticketing_image(image: &str) -> bool {
    // The tag follows the last ':', unless that ':' is a registry's port.
    let repository = match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => image,
    };
    repository.rsplit('/').next() == Some("ticketing")
}

/// A compose service built from deploy/Dockerfile or running the ticketing image.
pub(crate) fn is_ticketing_service(service: &Value) -> bool {
    text(service, "build.dockerfile") == Some("deploy/Dockerfile")
        || text(service, "image").is_some_and(|i| i.contains("ticketing"))
}

pub(crate) fn compose_command(service: &Value) -> Vec<String> {
    match at(service, "command") {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Sequence(items)) => strings(items),
        _ => Vec::new(),
    }
}

/// A compose service's environment as name → value (`None`: passed through from the shell).
pub(crate) fn compose_env(service: &Value) -> BTreeMap<String, Option<String>> {
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

/// Every variable a container gets: its `env` and the keys of ConfigMaps in `envFrom`.
pub(crate) fn container_env_names(deploy: &Deploy, container: &Value) -> BTreeSet<String> {
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

/// The container args of the workload behind a URL's host, when it runs one container.
pub(crate) fn k8s_server_args<'a>(
    deploy: &'a Deploy,
    url: &str,
) -> Option<(&'a Value, Vec<String>)> {
    let workload = deploy.workload_of_service(url_host(url)?)?;
    let container = list(workload, "spec.template.spec.containers").first()?;
    let mut args = strings(list(container, "command"));
    args.extend(strings(list(container, "args")));
    Some((workload, args))
}

/// Whether `path` lies on a volume that outlives the pod (a volumeClaimTemplate or PVC).
pub(crate) fn on_persistent_volume(workload: &Value, path: &str) -> bool {
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
