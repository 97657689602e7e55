//! Redis: the queue instance persists (AOF on a volume that outlives the pod), never evicts and
//! is not the cache instance, which has a memory bound; in Kubernetes and in compose alike.

use std::collections::BTreeMap;

use serde_norway::Value;

use crate::{
    support::{Deploy, assert_none, load},
    yaml::{
        compose_command, compose_env, flags, k8s_server_args, kind, list, on_persistent_volume,
        text, url_host,
    },
};

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

pub(crate) fn check_redis(deploy: &Deploy) -> Vec<String> {
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

#[test]
fn the_queue_redis_persists_and_never_evicts_and_is_not_the_cache() {
    assert_none("redis", check_redis(&load()));
}
