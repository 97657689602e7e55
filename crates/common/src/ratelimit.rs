//! A per-client-address limit on attempts per minute (sign-in and sign-up).
//!
//! A fixed one-minute window per address kept in process memory: cheap, and enough to slow
//! password guessing from one address. Behind a proxy the address comes from
//! `X-Forwarded-For`, trusted only when the direct peer is a configured proxy.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most, before the table is pruned.
const MAX_TRACKED: usize = 100_000;

/// The unit a budget belongs to: an IPv4 address, or an IPv6 /64 (one subscriber's whole
/// prefix, which it can otherwise rotate through freely).
fn bucket(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
    }
}

/// Counts attempts per client address in one-minute windows. `per_minute == 0` turns it off.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_minute: u32,
    trusted_proxies: Arc<Vec<IpAddr>>,
    windows: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, trusted_proxies: Vec<IpAddr>) -> Self {
        RateLimiter {
            per_minute,
            trusted_proxies: Arc::new(trusted_proxies),
            windows: Arc::default(),
        }
    }

    /// Records an attempt; `Err(seconds)` says how long until the next one is allowed.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().expect("rate limiter lock");
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if windows.len() >= MAX_TRACKED / 2 {
                // A flood of distinct addresses: start over rather than scan on every request
                // or grow without bound (the limit briefly resets; memory stays bounded).
                tracing::warn!(
                    tracked = windows.len(),
                    "rate limiter reset under a flood of addresses"
                );
                windows.clear();
            }
        }
        let (start, count) = windows.entry(bucket(client)).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            let wait = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(wait.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }

    /// The client address: the peer, or the last untrusted `X-Forwarded-For` hop when the peer
    /// is a trusted proxy.
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|hop| !self.trusted_proxies.contains(hop))
                .unwrap_or(peer),
        )
    }
}

/// Middleware applying the limiter to every request of the routes it wraps.
pub async fn limit(State(limiter): State<RateLimiter>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(client) = limiter.client_address(peer, request.headers())
        && let Err(retry_after_secs) = limiter.check(client, Instant::now())
    {
        tracing::warn!(%client, "rate limit reached");
        return ApiError::TooManyRequests { retry_after_secs }.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const PROXY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 9));

    #[test]
    fn allows_n_per_minute_per_address_then_refuses_until_the_window_ends() {
        let limiter = RateLimiter::new(3, vec![]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(A, t0).is_ok());
        }
        assert!(limiter.check(A, t0).is_err());
        assert!(
            limiter.check(B, t0).is_ok(),
            "another address has its own budget"
        );
        assert!(limiter.check(A, t0 + WINDOW).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_prefix_share_a_budget() {
        let limiter = RateLimiter::new(2, vec![]);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.check(a, t0).is_ok());
        assert!(limiter.check(b, t0).is_ok());
        assert!(limiter.check(a, t0).is_err(), "same /64");
        assert!(limiter.check(other, t0).is_ok(), "another /64");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = RateLimiter::new(0, vec![]);
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limiter.check(A, t0).is_ok()));
    }

    #[test]
    fn forwarded_for_is_trusted_only_from_a_configured_proxy() {
        let limiter = RateLimiter::new(1, vec![PROXY]);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.0.0.2, 10.0.0.9".parse().unwrap());
        assert_eq!(limiter.client_address(Some(PROXY), &headers), Some(B));
        assert_eq!(limiter.client_address(Some(A), &headers), Some(A));
    }
}
