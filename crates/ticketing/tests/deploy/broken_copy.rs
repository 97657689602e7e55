//! Every check must be able to fail: one test breaks a copy of the real files in one way per
//! check and asserts that the check notices, so none of them can pass vacuously.

use serde_norway::Value;

use crate::{
    compose::check_compose,
    env::check_env,
    image::check_dockerfile,
    ingress::check_ingress,
    k8s::{check_components, check_hpas, check_objects, check_services},
    nats::check_nats,
    nginx::check_nginx,
    redis::check_redis,
    secrets::{check_secret_literals, check_secrets},
    stack::check_stack,
    support::{Deploy, Doc, binary, load},
};

/// Breaks a copy of the real files in one way per check; every check must notice.
#[test]
fn each_check_catches_a_broken_copy() {
    let binary = binary();
    let original = load();
    let broken =
        |describe: &str, mutate: &dyn Fn(&mut Deploy), check: &dyn Fn(&Deploy) -> Vec<String>| {
            let mut deploy = original.clone();
            mutate(&mut deploy);
            assert!(!check(&deploy).is_empty(), "not caught: {describe}");
        };

    broken(
        "a Service targeting a port name the pods do not have",
        &|d| d.object_mut("Service", "auth")["spec"]["ports"][0]["targetPort"] = "htttp".into(),
        &check_services,
    );
    broken(
        "a Service selecting no pods",
        &|d| {
            d.object_mut("Service", "orders")["spec"]["selector"]["app.kubernetes.io/component"] =
                "order".into()
        },
        &check_services,
    );
    broken(
        "an object outside the namespace",
        &|d| {
            d.object_mut("ConfigMap", "ticketing-config")["metadata"]["namespace"] =
                "default".into()
        },
        &check_objects,
    );
    broken(
        "/api/orders routed to tickets",
        &|d| {
            let ingress = d.object_mut("Ingress", "ticketing");
            for path in ingress["spec"]["rules"][0]["http"]["paths"]
                .as_sequence_mut()
                .unwrap()
            {
                if path["path"] == "/api/orders" {
                    path["backend"]["service"]["name"] = "tickets".into();
                }
            }
        },
        &check_ingress,
    );
    broken(
        "an Ingress backend port the Service does not expose",
        &|d| {
            d.object_mut("Ingress", "ticketing")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
                ["service"]["port"]["number"] = 8080.into()
        },
        &check_ingress,
    );
    broken(
        "web's readiness probe on /healthz",
        &|d| {
            d.object_mut("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
                ["httpGet"]["path"] = "/healthz".into()
        },
        &|d| check_components(d, &binary),
    );
    broken(
        "a component the binary does not know",
        &|d| {
            d.object_mut("Deployment", "payments")["spec"]["template"]["spec"]["containers"][0]["args"]
                [1] = "payment".into()
        },
        &|d| check_components(d, &binary),
    );
    broken(
        "orders as a single replica",
        &|d| d.object_mut("Deployment", "orders")["spec"]["replicas"] = 1.into(),
        &|d| check_components(d, &binary),
    );
    broken(
        "an HPA scaling a missing Deployment",
        &|d| {
            d.object_mut("HorizontalPodAutoscaler", "orders")["spec"]["scaleTargetRef"]["name"] =
                "order".into()
        },
        &check_hpas,
    );
    broken(
        "a misspelt setting in the ConfigMap",
        &|d| {
            let config = d.object_mut("ConfigMap", "ticketing-config");
            let data = config["data"].as_mapping_mut().unwrap();
            let url = data.remove("REDIS_QUEUE_URL").unwrap();
            data.insert("REDIS_QUEUE_URI".into(), url);
        },
        &|d| check_env(d, &binary),
    );
    broken(
        "a misspelt setting in compose",
        &|d| d.compose["services"]["orders"]["environment"]["EXPIRATION_WINDOW"] = "900".into(),
        &|d| check_env(d, &binary),
    );
    broken(
        "an empty Stripe key in compose",
        &|d| d.compose["services"]["payments"]["environment"]["STRIPE_SECRET_KEY"] = "".into(),
        &|d| check_env(d, &binary),
    );
    broken(
        "a committed Secret",
        &|d| {
            let secret: Value = serde_norway::from_str(
                "apiVersion: v1\nkind: Secret\nmetadata: {name: ticketing-secrets, namespace: ticketing}\nstringData: {JWT_KEY: x}\n",
            )
            .unwrap();
            d.k8s.push(Doc {
                file: "deploy/k8s/secret.yaml".into(),
                value: secret,
            });
        },
        &check_secrets,
    );
    broken(
        "a Secret the README does not explain",
        &|d| {
            d.object_mut("Deployment", "auth")["spec"]["template"]["spec"]["containers"][0]["env"]
                [0]["valueFrom"]["secretKeyRef"]["name"] = "auth-secrets".into()
        },
        &check_secrets,
    );
    broken(
        "a Stripe webhook secret in a file",
        &|d| {
            d.texts.push((
                "deploy/compose.override.yaml".into(),
                "STRIPE_WEBHOOK_SECRET: whsec_0123456789abcdef\n".into(),
            ))
        },
        &check_secret_literals,
    );
    broken(
        "a literal JWT key",
        &|d| {
            d.texts.push((
                "deploy/README.md".into(),
                "export JWT_KEY=hunter2hunter2hunter2hunter2hunter2\n".into(),
            ))
        },
        &check_secret_literals,
    );
    broken(
        "a queue Redis that may evict",
        &|d| {
            let args = d.object_mut("StatefulSet", "redis-queue")["spec"]["template"]["spec"]
                ["containers"][0]["args"]
                .as_sequence_mut()
                .unwrap();
            for arg in args.iter_mut() {
                if *arg == "noeviction" {
                    *arg = "allkeys-lru".into();
                }
            }
        },
        &check_redis,
    );
    broken(
        "the queue sharing the cache's Redis",
        &|d| {
            d.object_mut("ConfigMap", "ticketing-config")["data"]["REDIS_QUEUE_URL"] =
                "redis://redis-cache:6379".into()
        },
        &check_redis,
    );
    broken(
        "a compose queue Redis without AOF",
        &|d| {
            d.compose["services"]["redis-queue"]["command"] =
                Value::Sequence(vec!["redis-server".into()])
        },
        &check_redis,
    );
    broken(
        "JetStream on a throw-away volume",
        &|d| {
            d.object_mut("StatefulSet", "nats")["spec"]["volumeClaimTemplates"] =
                Value::Sequence(Vec::new())
        },
        &check_nats,
    );
    broken(
        "NATS on one node",
        &|d| d.object_mut("StatefulSet", "nats")["spec"]["replicas"] = 1.into(),
        &check_nats,
    );
    broken(
        "the stream on one replica of a NATS cluster",
        &|d| {
            d.object_mut("ConfigMap", "ticketing-config")["data"]["JETSTREAM_REPLICAS"] = "1".into()
        },
        &check_nats,
    );
    broken(
        "NATS_URL naming one node of the cluster",
        &|d| {
            d.object_mut("ConfigMap", "ticketing-config")["data"]["NATS_URL"] =
                "nats://nats-0.nats:4222".into()
        },
        &check_nats,
    );
    broken(
        "NATS nodes that do not route to each other",
        &|d| {
            let config = d.object_mut("ConfigMap", "nats-config");
            let text = config["data"]["nats.conf"].as_str().unwrap().to_owned();
            config["data"]["nats.conf"] = text.replace("nats-2.nats", "nats-9.nats").into();
        },
        &check_nats,
    );
    broken(
        "compose NATS without JetStream",
        &|d| {
            d.compose["services"]["nats"]["command"] = Value::Sequence(Vec::new());
        },
        &check_nats,
    );
    broken(
        "a compose dependency on a missing service",
        &|d| d.compose["services"]["ingress"]["depends_on"] = Value::Sequence(vec!["webb".into()]),
        &|d| check_compose(d, &binary),
    );
    broken(
        "a literal JWT_KEY in compose",
        &|d| d.compose["services"]["web"]["environment"]["JWT_KEY"] = "secret".into(),
        &|d| check_compose(d, &binary),
    );
    broken(
        "nginx sending /api/orders to tickets",
        &|d| {
            d.nginx = d.nginx.replace(
                "location /api/orders/ { proxy_pass http://orders; }",
                "location /api/orders/ { proxy_pass http://tickets; }",
            )
        },
        &check_nginx,
    );
    broken(
        "nginx sending /api/ticket nowhere",
        &|d| {
            d.nginx = d
                .nginx
                .replace("location = /api/ticket {", "location = /api/tickts {")
        },
        &check_nginx,
    );
    broken(
        "the Ingress's /api/ticket as a prefix",
        &|d| {
            let ingress = d.object_mut("Ingress", "ticketing");
            for path in ingress["spec"]["rules"][0]["http"]["paths"]
                .as_sequence_mut()
                .unwrap()
            {
                if path["path"] == "/api/ticket" {
                    path["pathType"] = "Prefix".into();
                }
            }
        },
        &check_ingress,
    );
    broken(
        "nginx sending GET /api/orders (no trailing slash) to web",
        &|d| {
            d.nginx = d
                .nginx
                .replace("location = /api/orders { proxy_pass http://orders; }", "")
        },
        &check_nginx,
    );
    broken(
        "nginx missing /api/payments",
        &|d| d.nginx = d.nginx.replace("/api/payments", "/api/payment"),
        &check_nginx,
    );
    broken(
        "nginx missing /api/queues",
        &|d| d.nginx = d.nginx.replace("/api/queues", "/api/queue"),
        &check_nginx,
    );
    broken(
        "the Ingress sending /api/queues to web",
        &|d| {
            let ingress = d.object_mut("Ingress", "ticketing");
            for path in ingress["spec"]["rules"][0]["http"]["paths"]
                .as_sequence_mut()
                .unwrap()
            {
                if path["path"] == "/api/queues" {
                    path["backend"]["service"]["name"] = "web".into();
                }
            }
        },
        &check_ingress,
    );
    broken(
        "the stack without /api/queues",
        &|d| d.stack = d.stack.replace(" /api/queues=expiration", ""),
        &check_stack,
    );
    broken(
        "the stack routing to a component it does not start",
        &|d| {
            d.stack = d
                .stack
                .replace("/api/queues=expiration", "/api/queues=queues")
        },
        &check_stack,
    );
    broken(
        "an image that ends as root",
        &|d| d.dockerfile.push_str("\nUSER root\n"),
        &check_dockerfile,
    );
    broken(
        "a single-stage image",
        &|d| {
            d.dockerfile = d
                .dockerfile
                .lines()
                .filter(|l| !l.starts_with("FROM debian"))
                .collect::<Vec<_>>()
                .join("\n")
        },
        &check_dockerfile,
    );
}
