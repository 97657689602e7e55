//! Who the client is: the connection's peer, or, when the peer is a proxy we trust, the
//! address that proxy says it forwarded for (`X-Forwarded-For`).
//!
//! A peer is trusted when it falls in `TRUSTED_PROXIES` (addresses or CIDR ranges), or, under
//! `ticketing up`, when it is this process's own web component: a loopback call carrying the
//! process's random [`ForwardingToken`]. The web pages call the API on the visitor's behalf
//! and forward the visitor's address this way, so sign-in limits count visitors, not the web
//! component.

use std::{net::IpAddr, sync::Arc};

use axum::http::HeaderMap;
use ipnet::IpNet;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The header the web component sends its forwarding token in.
pub const FORWARDING_TOKEN_HEADER: &str = "x-ticketing-forwarded-by";
/// The standard header naming the client and the proxies a request went through.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// A random secret one process's web component shows its API, so that `up` believes the
/// visitor addresses its own pages forward and no one else's.
#[derive(Clone)]
pub struct ForwardingToken(Arc<str>);

impl std::fmt::Debug for ForwardingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardingToken([redacted])")
    }
}

impl ForwardingToken {
    /// A fresh random token.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        ForwardingToken(hex::encode(bytes).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn matches(&self, presented: &[u8]) -> bool {
        presented.len() == self.0.len() && bool::from(presented.ct_eq(self.0.as_bytes()))
    }
}

/// The proxies whose word on the client address is believed.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    ranges: Arc<Vec<IpNet>>,
    internal: Option<ForwardingToken>,
}

impl Proxies {
    /// Believes no one: the client is always the peer.
    pub fn none() -> Self {
        Proxies::default()
    }

    /// Believes peers in these ranges (`TRUSTED_PROXIES`).
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Proxies {
            ranges: Arc::new(ranges),
            internal: None,
        }
    }

    /// Also believes loopback calls that carry `token` (the process's own web component).
    pub fn with_internal(mut self, token: ForwardingToken) -> Self {
        self.internal = Some(token);
        self
    }

    /// Whether `address` is in a trusted range.
    pub fn is_trusted(&self, address: &IpAddr) -> bool {
        self.ranges.iter().any(|range| range.contains(address))
    }

    fn is_own_web(&self, peer: &IpAddr, headers: &HeaderMap) -> bool {
        peer.is_loopback()
            && self.internal.as_ref().is_some_and(|token| {
                headers
                    .get(FORWARDING_TOKEN_HEADER)
                    .is_some_and(|presented| token.matches(presented.as_bytes()))
            })
    }

    /// The client address: the peer, or, when the peer is trusted, the last
    /// `X-Forwarded-For` hop that is not itself a trusted proxy (the peer when every hop is
    /// trusted or the header is missing or unreadable).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(&peer) && !self.is_own_web(&peer, headers) {
            return peer;
        }
        let forwarded = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.into_iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // A hop we cannot read ends what we can believe.
                return peer;
            };
            if !self.is_trusted(&address) {
                return address;
            }
        }
        peer
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::settings::parse_proxy_range;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn proxies(ranges: &[&str]) -> Proxies {
        Proxies::new(
            ranges
                .iter()
                .map(|r| parse_proxy_range(r).unwrap())
                .collect(),
        )
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_peer_in_a_trusted_range() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = forwarded("203.0.113.7");
        assert_eq!(p.client_address(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        assert_eq!(p.client_address(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        assert_eq!(
            Proxies::none().client_address(ip("10.1.2.3"), &h),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_last_untrusted_hop_is_the_client_so_a_spoofed_first_hop_is_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        // The client sent "1.1.1.1" itself; the ingress appended the client's real address
        // and the web component's.
        let h = forwarded("1.1.1.1, 203.0.113.7, 10.0.0.5");
        assert_eq!(p.client_address(ip("10.0.0.9"), &h), ip("203.0.113.7"));
        assert_eq!(
            p.client_address(ip("10.0.0.9"), &forwarded("10.0.0.5")),
            ip("10.0.0.9")
        );
        assert_eq!(
            p.client_address(ip("10.0.0.9"), &forwarded("junk, 10.0.0.5")),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn up_believes_its_own_web_component_by_its_token_and_only_over_loopback() {
        let token = ForwardingToken::random();
        let p = Proxies::none().with_internal(token.clone());
        let mut h = forwarded("198.51.100.4");
        assert_eq!(p.client_address(ip("127.0.0.1"), &h), ip("127.0.0.1"));
        h.insert(
            FORWARDING_TOKEN_HEADER,
            HeaderValue::from_str(token.as_str()).unwrap(),
        );
        assert_eq!(p.client_address(ip("127.0.0.1"), &h), ip("198.51.100.4"));
        assert_eq!(
            p.client_address(ip("192.0.2.1"), &h),
            ip("192.0.2.1"),
            "not over loopback"
        );
        h.insert(
            FORWARDING_TOKEN_HEADER,
            HeaderValue::from_static("not-the-token"),
        );
        assert_eq!(p.client_address(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }
}
