//! NATS: JetStream is enabled, by flag or configuration file, and stores on a volume that
//! outlives the pod or container; in Kubernetes and in compose alike.

use serde_norway::Value;

use crate::{
    support::{Deploy, assert_none, load},
    yaml::{
        compose_command, compose_env, flags, k8s_server_args, kind, list, map,
        on_persistent_volume, text, url_host,
    },
};

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

#[test]
fn nats_runs_jetstream_on_persistent_storage() {
    assert_none("nats", check_nats(&load()));
}
