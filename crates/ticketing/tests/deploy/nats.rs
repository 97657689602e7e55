//! NATS: JetStream is enabled, by flag or configuration file, and stores on a volume that
//! outlives the pod or container; in Kubernetes and in compose alike. In Kubernetes NATS is
//! a cluster of at least three nodes that route to each other, `NATS_URL` lists every node,
//! and `JETSTREAM_REPLICAS` puts the stream on each of them.

use serde_norway::Value;

use crate::{
    support::{Deploy, assert_none, load},
    yaml::{
        compose_command, compose_env, flags, k8s_server_args, kind, list, map, name,
        on_persistent_volume, text, url_host,
    },
};

/// The workload a `NATS_URL` entry reaches: through a Service by name, or one pod of a
/// StatefulSet through its headless Service (`nats-0.nats`); with the pod's ordinal.
fn nats_node<'a>(deploy: &'a Deploy, url: &str) -> Option<(&'a Value, Option<u64>)> {
    let host = url_host(url)?;
    let host = host.strip_suffix(".svc.cluster.local").unwrap_or(host);
    let host = host.strip_suffix(".ticketing").unwrap_or(host);
    if let Some(workload) = deploy.workload_of_service(host) {
        return Some((workload, None));
    }
    let (pod, service) = host.split_once('.')?;
    let workload = deploy.workload_of_service(service)?;
    let ordinal = pod
        .strip_prefix(&format!("{}-", name(workload)))?
        .parse()
        .ok()?;
    (kind(workload) == "StatefulSet" && text(workload, "spec.serviceName") == Some(service))
        .then_some((workload, Some(ordinal)))
}

/// The `routes` of the `cluster` block of a NATS configuration.
fn cluster_routes(config: &str) -> Vec<String> {
    let Some(start) = config.find("cluster") else {
        return Vec::new();
    };
    let block = &config[start..];
    let Some(routes) = block.find("routes") else {
        return Vec::new();
    };
    let list = &block[routes..];
    let end = list.find(']').unwrap_or(list.len());
    list[..end]
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[')
        .filter(|word| word.contains("://"))
        .map(str::to_owned)
        .collect()
}

/// The Kubernetes NATS as a cluster: every node listed in `NATS_URL`, routes to every node,
/// and a stream replica on each.
fn check_k8s_cluster(deploy: &Deploy, nats: &Value, config: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let url = deploy.config_value("NATS_URL").unwrap_or("");
    let nodes = at_u64(nats, "spec.replicas").unwrap_or(1);
    if nodes < 3 {
        problems.push(format!(
            "k8s: NATS runs {nodes} node(s); a JetStream cluster needs 3 to survive losing one"
        ));
    }
    let mut listed: Vec<u64> = url
        .split(',')
        .filter_map(|entry| nats_node(deploy, entry.trim()))
        .filter(|(workload, _)| name(workload) == name(nats))
        .filter_map(|(_, ordinal)| ordinal)
        .collect();
    listed.sort_unstable();
    listed.dedup();
    if listed != (0..nodes).collect::<Vec<_>>() {
        problems.push(format!(
            "k8s: NATS_URL {url:?} does not list each of the {nodes} NATS pods"
        ));
    }
    let routes: Vec<u64> = config
        .map(cluster_routes)
        .unwrap_or_default()
        .iter()
        .filter_map(|route| nats_node(deploy, route)?.1)
        .collect();
    if (0..nodes).any(|pod| !routes.contains(&pod)) {
        problems.push(format!(
            "k8s: the NATS configuration's cluster routes {routes:?} do not name every pod"
        ));
    }
    if !config.is_some_and(|c| c.contains("server_name: $POD_NAME")) {
        problems.push("k8s: the NATS nodes do not take their pod's name as server_name".into());
    }
    match deploy.config_value("JETSTREAM_REPLICAS") {
        Some(replicas) if replicas.parse() == Ok(nodes) => {}
        other => problems.push(format!(
            "k8s: JETSTREAM_REPLICAS is {other:?}, not one replica per NATS node ({nodes})"
        )),
    }
    problems
}

fn at_u64(value: &Value, path: &str) -> Option<u64> {
    crate::yaml::at(value, path)?.as_u64()
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

pub(crate) fn check_nats(deploy: &Deploy) -> Vec<String> {
    let mut problems = Vec::new();
    let url = deploy.config_value("NATS_URL").unwrap_or("");
    // Every entry of the list reaches the NATS workload; its first names it.
    let first = url.split(',').next().unwrap_or("").trim();
    let server = nats_node(deploy, first).and_then(|(nats, _)| {
        let service = text(nats, "spec.serviceName").unwrap_or(name(nats));
        k8s_server_args(deploy, &format!("nats://{service}:4222"))
    });
    match server {
        Some((nats, args)) => {
            let flags = flags(&args);
            let mut config_text = None;
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
                    config_text = config_map
                        .and_then(|c| deploy.object("ConfigMap", c))
                        .and_then(|c| map(c, "data")?.get(file)?.as_str());
                    config_text.and_then(jetstream_store_dir)
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
            problems.extend(check_k8s_cluster(deploy, nats, config_text));
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

#[test]
fn nats_runs_jetstream_on_persistent_storage_as_a_three_node_cluster() {
    assert_none("nats", check_nats(&load()));
}
