//! Settings shared by every component, read from flags with environment fallbacks.
//!
//! Each service adds its own `*Settings` struct; the binary flattens them all into one
//! command line, so `ticketing --help` documents every knob. [`parse`] reads it, counting an
//! environment variable that is set but empty as unset (a `kubectl create secret` or a
//! compose file whose shell variable was unset produces exactly that), so an empty
//! `STRIPE_SECRET_KEY` or `JWT_KEY` never counts as configured.

use std::{fmt, str::FromStr};

use clap::{Args, ValueEnum};
use ipnet::IpNet;

use crate::secret::Secret;

/// Parses the command line and environment into `P`, treating every environment variable
/// that is set but empty as unset. Exits with clap's message on bad input, as `P::parse` does.
pub fn parse<P: clap::Parser>() -> P {
    let matches = without_empty_env(P::command()).get_matches();
    P::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Like [`parse`], from explicit arguments (tests).
pub fn try_parse_from<P: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> Result<P, clap::Error> {
    let matches = without_empty_env(P::command()).try_get_matches_from(args)?;
    P::from_arg_matches(&matches)
}

/// The command with the environment fallback removed from every argument whose variable is
/// set to the empty string, in every subcommand (global arguments are copied into subcommands
/// when the command is built, after this).
fn without_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty { arg.env(None::<&str>) } else { arg }
        })
        .mut_subcommands(without_empty_env)
}

/// A `TRUSTED_PROXIES` entry: a CIDR range (`10.0.0.0/8`) or one address (`10.0.0.7`).
pub fn parse_proxy_range(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{s:?} is not an address or a CIDR range like 10.0.0.0/8"))
}

/// A `JETSTREAM_REPLICAS`: 1, 3 or 5 (an even count gains no fault tolerance over the odd
/// count below it, and JetStream allows at most 5).
pub fn parse_jetstream_replicas(s: &str) -> Result<usize, String> {
    match s.trim() {
        "1" => Ok(1),
        "3" => Ok(3),
        "5" => Ok(5),
        other => Err(format!("{other:?} is not 1, 3 or 5")),
    }
}

/// Names everything one instance owns on shared infrastructure: databases `<ns>_<service>`,
/// the JetStream stream (`<NS>`) and subject prefix (`<ns>.`), Redis keys (`<ns>:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The database name of one service: `ticketing_auth`.
    pub fn database(&self, service: &str) -> String {
        format!("{}_{service}", self.0)
    }

    /// The JetStream stream name: the namespace upper-cased (`TICKETING`).
    pub fn stream(&self) -> String {
        self.0.to_ascii_uppercase()
    }

    /// The subject prefix, without the trailing dot: `ticketing`.
    pub fn subject_prefix(&self) -> &str {
        &self.0
    }

    /// The Redis key prefix, without the trailing colon.
    pub fn redis_prefix(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = String;

    /// A namespace must be usable as a database name part, a subject token and a stream name,
    /// so it is kept to lower-case letters, digits and `_`, starting with a letter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= 40
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Namespace(s.to_owned()))
        } else {
            Err(format!(
                "invalid namespace {s:?}: use 1-40 lower-case letters, digits or '_', starting with a letter"
            ))
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Infrastructure and session settings every component uses.
#[derive(Debug, Clone, Args)]
pub struct CommonSettings {
    /// Names this instance's databases, stream, subjects and Redis keys.
    #[arg(
        long,
        env = "TICKETING_NAMESPACE",
        default_value = "ticketing",
        global = true
    )]
    pub namespace: Namespace,

    /// PostgreSQL server; each service gets its own database on it (`<namespace>_<service>`).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        global = true
    )]
    pub database_url: Secret<String>,

    /// Most connections each service's PostgreSQL pool opens in this process (default: the
    /// service's own, 16 for auth and 32 for the others). Keep processes × services × this
    /// below the server's `max_connections`.
    #[arg(long, env = "DATABASE_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub database_pool_size: Option<u32>,

    /// NATS with JetStream: one server, or a comma-separated list of a cluster's servers
    /// (`nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222`). The client connects to
    /// any of them and fails over to the others (and to servers the cluster announces).
    #[arg(
        long,
        env = "NATS_URL",
        hide_env_values = true,
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,

    /// Replicas of the JetStream stream and of the consumers on it: 1, 3 or 5 (3 or 5 need a
    /// NATS cluster of at least that many servers). At start-up an existing stream with fewer
    /// replicas is raised to this; a lower setting than the stream has is refused with a log
    /// line, and the stream keeps its replicas.
    #[arg(long, env = "JETSTREAM_REPLICAS", default_value_t = 1,
        value_parser = parse_jetstream_replicas, global = true)]
    pub jetstream_replicas: usize,

    /// Redis; the default for the cache and the job queue (`redis://…`, or
    /// `redis+sentinel://…` as for `REDIS_QUEUE_URL`).
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub redis_url: Secret<String>,

    /// Redis for what must not be evicted or lost: the delayed jobs, revoked sessions and
    /// sign-in attempt counts; defaults to `REDIS_URL`. Must persist (appendonly yes) and
    /// must not evict (maxmemory-policy noeviction); keep it apart from the cache's Redis.
    /// Under Sentinel: `redis+sentinel://[:password@]host:port,host:port,host:port/<master
    /// name>[/<db>]` (the password is the master's); the processes follow a failover to the
    /// promoted replica by themselves.
    #[arg(long, env = "REDIS_QUEUE_URL", hide_env_values = true, global = true)]
    pub redis_queue_url: Option<Secret<String>>,

    /// Session signing key (HS256), at least 32 bytes. Required by `serve`; `up` generates a
    /// throw-away key when it is missing.
    #[arg(long, env = "JWT_KEY", hide_env_values = true, global = true)]
    pub jwt_key: Option<Secret<String>>,

    /// How long a session lasts, in seconds.
    #[arg(long, env = "SESSION_TTL_SECONDS", default_value_t = DEFAULT_SESSION_TTL_SECONDS,
        value_parser = clap::value_parser!(u64).range(60..=31_536_000), global = true)]
    pub session_ttl_seconds: u64,

    /// Comma-separated e-mails of the operators (refunds, the operators' console); compared
    /// case-insensitively, decided at each request.
    #[arg(long, env = "ADMIN_EMAILS", global = true)]
    pub admin_emails: Option<String>,

    /// Send the session cookie without `Secure`, for plain-http development. `up` on a
    /// loopback address turns this on by itself.
    #[arg(long, env = "COOKIE_INSECURE", global = true)]
    pub cookie_insecure: bool,

    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "human",
        global = true
    )]
    pub log_format: LogFormat,

    /// Reverse proxies whose `X-Forwarded-For` header is believed for the client address
    /// (rate limits): addresses or CIDR ranges, comma-separated (`10.0.0.0/8,127.0.0.1`).
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy_range, global = true)]
    pub trusted_proxies: Vec<IpNet>,

    #[command(flatten)]
    pub http: HttpSettings,

    #[command(flatten)]
    pub telemetry: TelemetrySettings,
}

/// Where spans are exported, if anywhere. Without an endpoint nothing is exported and no
/// exporter runs; trace context still travels between services (and into the log lines).
#[derive(Debug, Clone, Default, Args)]
pub struct TelemetrySettings {
    /// OpenTelemetry collector: spans are sent in batches over OTLP/HTTP (protobuf) to
    /// `<endpoint>/v1/traces`, e.g. `http://otel-collector:4318`. Unset: nothing is exported.
    /// Spans at INFO and above are exported whatever `RUST_LOG` lets through to the log.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint, global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// The `service.name` the exported spans carry (default: `ticketing-<component>` under
    /// `serve`, `ticketing` under `up` and the other commands).
    #[arg(long, env = "OTEL_SERVICE_NAME", global = true)]
    pub otel_service_name: Option<String>,
}

impl TelemetrySettings {
    /// The export to set up, if an endpoint is configured: named `OTEL_SERVICE_NAME`, or
    /// `default_service` (see [`crate::telemetry::service_name`]).
    pub fn export(&self, default_service: &str) -> Option<crate::telemetry::Export> {
        let endpoint = self.otel_exporter_otlp_endpoint.as_ref()?;
        let service_name = self
            .otel_service_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .unwrap_or(default_service);
        Some(crate::telemetry::Export {
            endpoint: endpoint.clone(),
            service_name: service_name.to_owned(),
        })
    }
}

/// An `OTEL_EXPORTER_OTLP_ENDPOINT`: an `http://` or `https://` URL with a host, kept without
/// a trailing slash (the exporter appends `/v1/traces`).
pub fn parse_otlp_endpoint(s: &str) -> Result<String, String> {
    let s = s.trim();
    let invalid = || format!("{s:?} is not an http(s) URL like http://otel-collector:4318");
    let uri: http::Uri = s.parse().map_err(|_| invalid())?;
    let http = matches!(uri.scheme_str(), Some("http" | "https"));
    if !http || uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(invalid());
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// `HTTP_HEADER_TIMEOUT_SECONDS` unless set.
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS: u64 = 10;
/// `HTTP_REQUEST_TIMEOUT_SECONDS` unless set.
pub const DEFAULT_HTTP_REQUEST_TIMEOUT_SECONDS: u64 = 30;
/// `HTTP_MAX_CONNECTIONS` unless set.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: u64 = 10_000;
/// `SESSION_TTL_SECONDS` unless set: a day.
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 86_400;

/// How each process's HTTP server protects itself from slow, idle and numerous clients.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// A request's headers must arrive within this many seconds of the connection opening (or
    /// of the previous response, so it is also the idle keep-alive timeout); otherwise the
    /// connection is closed.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECONDS", default_value_t = DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub http_header_timeout_seconds: u64,

    /// A request must be answered within this many seconds (503 otherwise); long enough for
    /// the slowest legitimate request.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECONDS", default_value_t = DEFAULT_HTTP_REQUEST_TIMEOUT_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub http_request_timeout_seconds: u64,

    /// Open connections this process accepts at once; further clients wait in the kernel's
    /// accept queue.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = DEFAULT_HTTP_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000), global = true)]
    pub http_max_connections: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            http_header_timeout_seconds: DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS,
            http_request_timeout_seconds: DEFAULT_HTTP_REQUEST_TIMEOUT_SECONDS,
            http_max_connections: DEFAULT_HTTP_MAX_CONNECTIONS,
        }
    }
}

impl CommonSettings {
    /// The queue Redis: `REDIS_QUEUE_URL`, or `REDIS_URL`.
    pub fn queue_redis_url(&self) -> &str {
        self.redis_queue_url
            .as_ref()
            .unwrap_or(&self.redis_url)
            .expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_name_every_shared_resource() {
        let ns: Namespace = "ticketing".parse().unwrap();
        assert_eq!(ns.database("auth"), "ticketing_auth");
        assert_eq!(ns.stream(), "TICKETING");
        assert_eq!(ns.subject_prefix(), "ticketing");
    }

    #[test]
    fn trusted_proxies_are_ranges_or_single_addresses() {
        let net = parse_proxy_range("10.1.2.3/8").unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(&"10.200.0.1".parse::<std::net::IpAddr>().unwrap()));
        let one = parse_proxy_range(" 127.0.0.1 ").unwrap();
        assert!(one.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
        assert!(!one.contains(&"127.0.0.2".parse::<std::net::IpAddr>().unwrap()));
        assert!(parse_proxy_range("fd00::/8").is_ok());
        for bad in ["", "10.0.0.0/33", "proxy.local", "10.0.0.0/8/8"] {
            assert!(parse_proxy_range(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_otlp_endpoint_is_an_http_url_kept_without_its_trailing_slash() {
        assert_eq!(
            parse_otlp_endpoint(" http://127.0.0.1:4318/ ").unwrap(),
            "http://127.0.0.1:4318"
        );
        assert_eq!(
            parse_otlp_endpoint("https://collector.example.com/otlp").unwrap(),
            "https://collector.example.com/otlp"
        );
        for bad in [
            "",
            "collector:4318",
            "grpc://collector:4317",
            "http://",
            "http://c/?a=1",
        ] {
            assert!(parse_otlp_endpoint(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn spans_are_exported_only_with_an_endpoint_and_named_by_otel_service_name_or_the_component() {
        let unset = TelemetrySettings::default();
        assert!(unset.export("ticketing").is_none());
        let endpoint = TelemetrySettings {
            otel_exporter_otlp_endpoint: Some("http://127.0.0.1:4318".into()),
            otel_service_name: None,
        };
        let export = endpoint.export("ticketing-orders").unwrap();
        assert_eq!(export.endpoint, "http://127.0.0.1:4318");
        assert_eq!(export.service_name, "ticketing-orders");
        let named = TelemetrySettings {
            otel_service_name: Some("checkout".into()),
            ..endpoint
        };
        assert_eq!(named.export("ticketing").unwrap().service_name, "checkout");
    }

    #[test]
    fn nats_url_takes_one_server_or_a_comma_separated_cluster_and_never_repeats_it() {
        // Checked when connecting, not by clap, whose error would print the value (a
        // NATS URL may carry a token).
        assert_eq!(
            crate::bus::nats_servers("nats://127.0.0.1:4222")
                .unwrap()
                .len(),
            1
        );
        let cluster = "nats://a:4222, nats://b:4222,tls://user:pw@c:4222";
        assert_eq!(crate::bus::nats_servers(cluster).unwrap().len(), 3);
        for bad in [
            "",
            "nats://a:4222,",
            "nats://tok@a:4222,,nats://b:4222",
            "http://tok@a:80",
        ] {
            let error = format!("{:#}", crate::bus::nats_servers(bad).expect_err(bad));
            assert!(!error.contains("tok"), "{error}");
        }
    }

    #[test]
    fn jetstream_replicas_are_one_three_or_five() {
        assert_eq!(parse_jetstream_replicas("1"), Ok(1));
        assert_eq!(parse_jetstream_replicas("3"), Ok(3));
        assert_eq!(parse_jetstream_replicas(" 5 "), Ok(5));
        for bad in ["0", "2", "4", "6", "three", ""] {
            assert!(parse_jetstream_replicas(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn namespaces_refuse_characters_that_break_a_resource_name() {
        for bad in ["", "Ticketing", "a.b", "a b", "a-b", "1abc", "a>"] {
            assert!(bad.parse::<Namespace>().is_err(), "{bad:?} accepted");
        }
        assert!("t_0123abc".parse::<Namespace>().is_ok());
    }
}
