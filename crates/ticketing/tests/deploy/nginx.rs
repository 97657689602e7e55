//! The compose file's nginx ingress: a small tokenizer and parser for `nginx.conf`, enough to
//! read its upstreams and locations, and the check that it routes like the Ingress and is
//! published on 8088.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use crate::{
    support::{Deploy, expected_routes},
    yaml::{compose_command, list, strings},
};

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
        // is the Ingress's Prefix `/api/users`; a `location =` alone is an Exact path, and
        // `location /api/users/` alone misses `/api/users` itself.
        let prefixes: BTreeSet<String> = locations
            .iter()
            .filter_map(|l| match l.args.as_slice() {
                [path] => Some(path.trim_end_matches('/').to_owned()),
                _ => None,
            })
            .collect();
        let exacts: BTreeSet<&str> = locations
            .iter()
            .filter_map(|l| match l.args.as_slice() {
                [modifier, path] if modifier == "=" => Some(path.as_str()),
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
            } else if !exact && path.ends_with('/') && !exacts.contains(path.trim_end_matches('/'))
            {
                // Routes what is under the prefix only: not the Ingress's Prefix.
                path.clone()
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

pub(crate) fn check_nginx(deploy: &Deploy) -> Vec<String> {
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
