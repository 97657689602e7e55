//! What the checks read: every file under `deploy/` (and `scripts/stack`) parsed once into a
//! [`Deploy`], the built binary's own settings and components ([`Binary`]), the routes every
//! ingress must serve, and how a test reports the problems a check found.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

use serde::Deserialize;
use serde_norway::Value;

/// What the ingress (and the compose nginx) must route: path prefix → component.
/// Path → component; a path starting with `=` is matched exactly (the Ingress's `Exact`,
/// nginx's `location =` alone), the others as whole-segment prefixes.
const ROUTES: [(&str, &str); 8] = [
    ("/api/users", "auth"),
    ("/api/tickets", "tickets"),
    // The seed report's clients list tickets at the singular path.
    ("=/api/ticket", "tickets"),
    // Events with many seats.
    ("/api/events", "tickets"),
    ("/api/orders", "orders"),
    ("/api/payments", "payments"),
    // The operators' queue board.
    ("/api/queues", "expiration"),
    ("/", "web"),
];

pub(crate) fn expected_routes() -> BTreeMap<String, String> {
    ROUTES
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect()
}

/// Components that take the load of a sale and must not run as a single pod.
pub(crate) const REPLICATED: [&str; 3] = ["tickets", "orders", "expiration"];

/// One YAML document and the file it came from.
#[derive(Clone)]
pub(crate) struct Doc {
    pub(crate) file: String,
    pub(crate) value: Value,
}

/// Everything under `deploy/`, parsed.
#[derive(Clone)]
pub(crate) struct Deploy {
    /// Every Kubernetes object of `deploy/k8s` (the kustomization apart).
    pub(crate) k8s: Vec<Doc>,
    pub(crate) kustomization: Value,
    /// The file names in `deploy/k8s`.
    pub(crate) k8s_files: BTreeSet<String>,
    pub(crate) compose: Value,
    pub(crate) nginx: String,
    pub(crate) dockerfile: String,
    pub(crate) dockerignore: String,
    pub(crate) readme: String,
    /// `scripts/stack`, whose nginx routes like the Ingress.
    pub(crate) stack: String,
    /// Every text file under `deploy/` (path relative to the repository, content).
    pub(crate) texts: Vec<(String, String)>,
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

pub(crate) fn load() -> Deploy {
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
        stack: read(&root.join("scripts/stack")),
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
pub(crate) struct Binary {
    /// Every `[env: NAME]` of `ticketing --help` and `ticketing serve --help`.
    pub(crate) settings: BTreeSet<String>,
    /// The `serve` components.
    pub(crate) components: BTreeSet<String>,
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

pub(crate) fn binary() -> Binary {
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

pub(crate) fn assert_none(check: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{check}:\n  {}", problems.join("\n  "));
}
