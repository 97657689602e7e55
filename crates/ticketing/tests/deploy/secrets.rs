//! Secrets: the workloads reference them, `deploy/README.md` shows how to create every key,
//! and none is committed, neither as a Secret object nor as a literal credential in any file.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    support::{Deploy, assert_none, load},
    yaml::{at, kind, list, name, text},
};

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

pub(crate) fn check_secrets(deploy: &Deploy) -> Vec<String> {
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

pub(crate) fn check_secret_literals(deploy: &Deploy) -> Vec<String> {
    deploy
        .texts
        .iter()
        .flat_map(|(path, content)| secret_literals(path, content))
        .collect()
}

#[test]
fn secrets_are_referenced_documented_and_never_committed() {
    let deploy = load();
    let mut problems = check_secrets(&deploy);
    problems.extend(check_secret_literals(&deploy));
    assert_none("secrets", problems);
}
