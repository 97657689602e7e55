//! The container image: a multi-stage Dockerfile that builds the locked release binary and runs
//! it unprivileged, and a `.dockerignore` that keeps `target/` and `.git/` out of the build.

use crate::support::{Deploy, assert_none, load};

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

pub(crate) fn check_dockerfile(deploy: &Deploy) -> Vec<String> {
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

#[test]
fn the_image_is_built_in_one_stage_and_runs_unprivileged_in_another() {
    assert_none("Dockerfile", check_dockerfile(&load()));
}
