//! Offline checks of the deployment files in `deploy/`: the Kubernetes manifests
//! (`deploy/k8s`), the single-host compose file and its nginx ingress, the Dockerfile, and
//! the Grafana dashboard (`deploy/grafana`), whose queries may read only metrics the code
//! exports; and the routes `scripts/stack` gives the nginx of the distributed stack.
//!
//! Nothing here talks to a cluster or a Docker engine. Each check reads the files, asserts a
//! property an operator relies on (a Service reaches its pods, the ingress routes each prefix
//! to the right component, the queue's Redis cannot evict, no secret is committed, every
//! variable a container sets is one the binary reads, ...) and returns the problems it
//! found. The settings and component names come from the built binary's own `--help`, so a
//! renamed setting fails here instead of being silently ignored in production.
//!
//! `support` loads the files and the binary's help, `yaml` reads values out of them, and each
//! other module holds the checks for one part of the deployment with their tests.
//! `broken_copy` breaks a copy of the real files in one way per check and asserts that the
//! check notices, so none of them can pass vacuously.

mod broken_copy;
mod compose;
mod dashboard;
mod env;
mod image;
mod ingress;
mod k8s;
mod nats;
mod nginx;
mod redis;
mod secrets;
mod stack;
mod support;
mod yaml;
