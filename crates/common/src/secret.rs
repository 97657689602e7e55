//! A wrapper that keeps secrets out of `Debug`, `Display` and therefore out of logs.

use std::{fmt, str::FromStr};

/// A value that must never be printed. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Read from a flag or an environment variable. An empty secret is refused (an empty
/// variable already counts as unset, see `settings::parse`; this catches `--jwt-key=`).
impl FromStr for Secret<String> {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err("must not be empty");
        }
        Ok(Secret(s.to_owned()))
    }
}

/// Query parameters whose value is a credential (`postgres://h/db?password=…`).
const SECRET_PARAMETERS: [&str; 6] = ["password", "pass", "pwd", "token", "secret", "key"];

/// Renders a connection URL (or a comma-separated list of them, as `NATS_URL` takes) with
/// every credential replaced: the password in the user part, a bare user part of a NATS URL
/// (there it is a token), and credential query parameters. For log lines and error messages.
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            // A bare userinfo is a token for NATS, and the password for a Sentinel URL.
            None if scheme.to_ascii_lowercase().starts_with("nats")
                || scheme.eq_ignore_ascii_case("tls")
                || scheme.eq_ignore_ascii_case("redis+sentinel") =>
            {
                format!("***@{host}")
            }
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let query = query.map(|query| {
        let pairs = query.split('&').map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) => {
                format!("{name}=***")
            }
            _ => pair.to_owned(),
        });
        format!("?{}", pairs.collect::<Vec<_>>().join("&"))
    });
    format!("{scheme}://{authority}{path}{}", query.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let key: Secret<String> = "hunter2-hunter2".parse().unwrap();
        assert_eq!(format!("{key} {key:?}"), "[redacted] [redacted]");
        assert_eq!(key.expose(), "hunter2-hunter2");
    }

    #[test]
    fn an_empty_secret_is_refused() {
        for empty in ["", "   "] {
            assert!(empty.parse::<Secret<String>>().is_err(), "{empty:?}");
        }
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn password_parameters_nats_tokens_and_every_server_of_a_list_are_hidden() {
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=pw&PASSWORD=x"),
            "postgres://u@h/db?sslmode=require&password=***&PASSWORD=***"
        );
        assert_eq!(
            redact_url("nats://s3cret@n1:4222,nats://app:pw@n2:4222"),
            "nats://***@n1:4222,nats://app:***@n2:4222"
        );
        assert_eq!(
            redact_url("redis://:pw@queue:6379/0"),
            "redis://:***@queue:6379/0"
        );
        assert_eq!(
            redact_url("redis+sentinel://hunter2@s1:26379,s2:26379/mymaster"),
            "redis+sentinel://***@s1:26379,s2:26379/mymaster"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
