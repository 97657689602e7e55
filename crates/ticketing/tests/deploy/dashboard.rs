//! The Grafana dashboard (`deploy/grafana/ticketing-dashboard.json`): every metric its
//! queries read is one the code exports (found in the sources' `counter!`, `gauge!` and
//! `histogram!` calls, directly or through a named constant), a `_bucket` series belongs to a
//! histogram the recorder gives buckets, and each panel has the structure Grafana needs (an
//! id, a place on the 24-column grid, the Prometheus data source variable, queries with
//! distinct refIds). The README points operators to it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde_json::Value;

use crate::support::assert_none;

const DASHBOARD: &str = "deploy/grafana/ticketing-dashboard.json";

/// Panel types the dashboard may use.
const PANEL_TYPES: [&str; 5] = ["row", "timeseries", "stat", "gauge", "bargauge"];

/// What kind of series a metric is, as the code records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

fn load_dashboard() -> Value {
    let path = repo_root().join(DASHBOARD);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

fn rust_sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(std::fs::read_to_string(&path).expect("readable source"));
        }
    }
}

/// The source of every crate's library and binary code (`crates/*/src`), tests excluded: a
/// metric only a test records is not exported.
fn sources() -> Vec<String> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("crates")).expect("crates/") {
        let src = entry.expect("readable entry").path().join("src");
        if src.is_dir() {
            rust_sources(&src, &mut texts);
        }
    }
    texts
}

/// The quoted string at the start of `s` (after spaces), if any.
fn leading_literal(s: &str) -> Option<&str> {
    let rest = s.trim_start().strip_prefix('"')?;
    rest.split_once('"').map(|(literal, _)| literal)
}

/// The identifier path at the start of `s` (`m::HTTP_REQUESTS`), by its last segment.
fn leading_constant(s: &str) -> Option<&str> {
    let path: &str = s
        .trim_start()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .next()?;
    let name = path.rsplit("::").next()?;
    (!name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
    .then_some(name)
}

/// Every metric the sources record, with its kind: the first argument of each `counter!`,
/// `gauge!` and `histogram!`, a string literal or a constant defined as one.
fn exported_metrics(sources: &[String]) -> BTreeMap<String, Kind> {
    let mut constants: BTreeMap<&str, &str> = BTreeMap::new();
    for source in sources {
        for (i, _) in source.match_indices("const ") {
            let rest = &source[i + 6..];
            let Some((name, definition)) = rest.split_once(':') else {
                continue;
            };
            let Some(value) = definition
                .trim_start()
                .strip_prefix("&str")
                .and_then(|d| d.trim_start().strip_prefix('='))
                .and_then(leading_literal)
            else {
                continue;
            };
            constants.insert(name.trim(), value);
        }
    }
    let mut metrics = BTreeMap::new();
    for source in sources {
        for (call, kind) in [
            ("counter!(", Kind::Counter),
            ("gauge!(", Kind::Gauge),
            ("histogram!(", Kind::Histogram),
        ] {
            for (i, _) in source.match_indices(call) {
                let argument = &source[i + call.len()..];
                let name = leading_literal(argument)
                    .or_else(|| leading_constant(argument).and_then(|c| constants.get(c).copied()));
                if let Some(name) = name {
                    metrics.insert(name.to_owned(), kind);
                }
            }
        }
    }
    metrics
}

/// Words of PromQL that are not metric names: keywords, and the aggregation operators
/// (which may be followed by `by (...)` instead of their parenthesis).
const PROMQL_WORDS: [&str; 26] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
];

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// keywords, label names (inside `{}` or a `by (...)` list), strings, or range durations.
fn selected_metrics(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    // Inside {...}, [...] or "..." nothing is a metric name.
    let (mut braces, mut brackets, mut quoted) = (0usize, 0usize, false);
    // Parentheses opened right after a grouping keyword hold label names.
    let mut labels_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut last_word = String::new();
    while i < chars.len() {
        let c = chars[i];
        if quoted {
            if c == '\\' {
                i += 1;
            } else if c == '"' {
                quoted = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            '(' => {
                depth += 1;
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&last_word.as_str())
                {
                    labels_depth = Some(depth);
                }
            }
            ')' => {
                if labels_depth == Some(depth) {
                    labels_depth = None;
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // A number or a duration (`0.99`, `1e3`, `5m`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            last_word.clear();
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':' | '$'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let is_call = next == Some(&'(');
            let plain = braces == 0 && brackets == 0 && labels_depth.is_none();
            if plain
                && !is_call
                && !word.starts_with('$')
                && !PROMQL_WORDS.contains(&word.to_ascii_lowercase().as_str())
            {
                names.push(word.clone());
            }
            last_word = word.to_ascii_lowercase();
            continue;
        }
        if !c.is_whitespace() {
            last_word.clear();
        }
        i += 1;
    }
    names
}

/// Problems with one metric a query selects.
fn metric_problem(name: &str, exported: &BTreeMap<String, Kind>) -> Option<String> {
    if exported.contains_key(name) {
        return None;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            return match exported.get(base) {
                // The recorder gives buckets only to histograms named `*_seconds`
                // (common::metrics); others render as summaries, without `_bucket`.
                Some(Kind::Histogram) if suffix != "_bucket" || base.ends_with("_seconds") => None,
                Some(Kind::Histogram) => Some(format!(
                    "{name}: {base} is rendered as a summary (only *_seconds histograms have buckets)"
                )),
                Some(kind) => Some(format!("{name}: {base} is a {kind:?}, not a histogram")),
                None => Some(format!("{name}: no such metric in the code")),
            };
        }
    }
    Some(format!("{name}: no such metric in the code"))
}

fn number(value: &Value, key: &str) -> Option<i64> {
    value.get(key).and_then(Value::as_i64)
}

pub(crate) fn check_dashboard(
    dashboard: &Value,
    exported: &BTreeMap<String, Kind>,
    readme: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for key in ["title", "uid"] {
        if dashboard[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("the dashboard has no {key}"));
        }
    }
    if number(dashboard, "schemaVersion").is_none() {
        problems.push("the dashboard has no schemaVersion".into());
    }
    let datasource = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["type"] == "datasource" && v["query"] == "prometheus")
        .and_then(|v| v["name"].as_str());
    let Some(datasource) = datasource else {
        problems.push("no data source variable of type prometheus in templating.list".into());
        return problems;
    };
    let datasource_ref = format!("${{{datasource}}}");
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    if panels.iter().filter(|p| p["type"] != "row").count() == 0 {
        problems.push("the dashboard has no panels".into());
    }
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or_default();
        let place = format!("panel {title:?}");
        if title.is_empty() {
            problems.push(format!("{place}: no title"));
        }
        match number(panel, "id") {
            Some(id) if ids.insert(id) => {}
            Some(id) => problems.push(format!("{place}: id {id} is used twice")),
            None => problems.push(format!("{place}: no id")),
        }
        let kind = panel["type"].as_str().unwrap_or_default();
        if !PANEL_TYPES.contains(&kind) {
            problems.push(format!("{place}: unknown type {kind:?}"));
        }
        let grid = &panel["gridPos"];
        match (
            number(grid, "x"),
            number(grid, "y"),
            number(grid, "w"),
            number(grid, "h"),
        ) {
            (Some(x), Some(y), Some(w), Some(h))
                if x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24 => {}
            _ => problems.push(format!(
                "{place}: gridPos {grid} is not inside the 24 columns"
            )),
        }
        if kind == "row" {
            continue;
        }
        if panel["datasource"]["uid"] != datasource_ref.as_str() {
            problems.push(format!("{place}: its data source is not {datasource_ref}"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{place}: no queries"));
        }
        let mut ref_ids = BTreeSet::new();
        for target in &targets {
            let ref_id = target["refId"].as_str().unwrap_or_default();
            if ref_id.is_empty() || !ref_ids.insert(ref_id) {
                problems.push(format!("{place}: a query without a distinct refId"));
            }
            let expr = target["expr"].as_str().unwrap_or_default();
            let metrics = selected_metrics(expr);
            if metrics.is_empty() {
                problems.push(format!("{place}: query {expr:?} reads no metric"));
            }
            for metric in metrics {
                if let Some(problem) = metric_problem(&metric, exported) {
                    problems.push(format!("{place}: {problem}"));
                }
                used.insert(metric);
            }
        }
    }
    // The panels an operator opens first must be there.
    for wanted in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "expiration_jobs_pending",
        "expiration_jobs_leased",
        "expiration_jobs_dead",
        "expiration_lateness_seconds_bucket",
        "outbox_backlog",
        "events_consumed_total",
        "events_redelivered_total",
        "cache_hit_ratio",
    ] {
        if !used.contains(wanted) {
            problems.push(format!("no panel shows {wanted}"));
        }
    }
    if !readme.contains(DASHBOARD.trim_start_matches("deploy/")) {
        problems.push(format!("deploy/README.md does not mention {DASHBOARD}"));
    }
    problems
}

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("deploy/README.md")).expect("deploy/README.md")
}

#[test]
fn the_dashboard_reads_only_metrics_the_code_exports_in_well_formed_panels() {
    let exported = exported_metrics(&sources());
    // The source scan is what the check stands on: make sure it finds each way of naming.
    assert_eq!(exported.get("http_requests_total"), Some(&Kind::Counter));
    assert_eq!(exported.get("expiration_jobs_pending"), Some(&Kind::Gauge));
    assert_eq!(
        exported.get("http_request_duration_seconds"),
        Some(&Kind::Histogram)
    );
    assert_eq!(exported.get("orders_swept_total"), Some(&Kind::Counter));
    assert_none(
        "dashboard",
        check_dashboard(&load_dashboard(), &exported, &readme()),
    );
}

#[test]
fn promql_metric_names_are_told_apart_from_functions_labels_and_keywords() {
    assert_eq!(
        selected_metrics(
            r#"sum by (le, route) (rate(http_request_duration_seconds_bucket{status=~"5..", route!="x y"}[$__rate_interval]))"#
        ),
        ["http_request_duration_seconds_bucket"]
    );
    assert_eq!(
        selected_metrics("max(a_total) / on (service) group_left(subject) b_total offset 5m"),
        ["a_total", "b_total"]
    );
    assert_eq!(
        selected_metrics(
            "histogram_quantile(0.99, sum without (pod) (rate(x_seconds_bucket[5m])))"
        ),
        ["x_seconds_bucket"]
    );
}

/// The first panel that is not a row.
fn first_panel(dashboard: &mut Value) -> &mut Value {
    dashboard["panels"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["type"] != "row")
        .unwrap()
}

/// Every check above must be able to fail: break a copy of the dashboard in one way each.
#[test]
fn the_dashboard_check_catches_a_broken_copy() {
    let exported = exported_metrics(&sources());
    let original = load_dashboard();
    let readme = readme();
    let broken = |describe: &str, mutate: &dyn Fn(&mut Value), readme: &str| {
        let mut dashboard = original.clone();
        mutate(&mut dashboard);
        assert!(
            !check_dashboard(&dashboard, &exported, readme).is_empty(),
            "not caught: {describe}"
        );
    };
    broken(
        "a misspelt metric",
        &|d| {
            first_panel(d)["targets"][0]["expr"] =
                "sum(rate(http_request_total[$__rate_interval]))".into()
        },
        &readme,
    );
    broken(
        "buckets of a counter",
        &|d| {
            first_panel(d)["targets"][0]["expr"] =
                "sum(rate(http_requests_total_bucket[5m]))".into()
        },
        &readme,
    );
    broken(
        "buckets of a histogram rendered as a summary",
        &|d| {
            first_panel(d)["targets"][0]["expr"] =
                "sum(rate(expiration_lateness_bucket[5m]))".into()
        },
        &readme,
    );
    broken(
        "a metric no panel shows any more",
        &|d| {
            for panel in d["panels"].as_array_mut().unwrap() {
                for target in panel["targets"].as_array_mut().into_iter().flatten() {
                    let expr = target["expr"]
                        .as_str()
                        .unwrap()
                        .replace("cache_hit_ratio", "cache_hits_total");
                    target["expr"] = expr.into();
                }
            }
        },
        &readme,
    );
    broken(
        "a panel without queries",
        &|d| first_panel(d)["targets"] = Value::Array(vec![]),
        &readme,
    );
    broken(
        "two queries with one refId",
        &|d| {
            let panel = first_panel(d);
            let copy = panel["targets"][0].clone();
            panel["targets"].as_array_mut().unwrap().push(copy);
        },
        &readme,
    );
    broken(
        "a panel past the grid's 24 columns",
        &|d| first_panel(d)["gridPos"]["x"] = 20.into(),
        &readme,
    );
    broken(
        "two panels with one id",
        &|d| {
            let id = d["panels"][0]["id"].clone();
            d["panels"][1]["id"] = id;
        },
        &readme,
    );
    broken(
        "a panel on another data source",
        &|d| first_panel(d)["datasource"]["uid"] = "prometheus-prod".into(),
        &readme,
    );
    broken(
        "no data source variable",
        &|d| d["templating"]["list"] = Value::Array(vec![]),
        &readme,
    );
    broken(
        "a README that does not mention it",
        &|_| {},
        "no dashboard here",
    );
}
