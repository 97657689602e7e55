//! Who the client is: the connection's peer, or, when the peer is a proxy we trust, the
//! address that proxy says it forwarded for (`X-Forwarded-For`).
//!
//! A peer is trusted when it falls in `TRUSTED_PROXIES` (addresses or CIDR ranges). The
//! proxy in front must *replace* `X-Forwarded-For` with the address it saw (nginx
//! `$remote_addr`, ingress-nginx's default), so no hop of it is the client's own words.
//!
//! The web pages call the API on their visitors' behalf, through the ingress, which puts its
//! own peer (the web pod) in `X-Forwarded-For`. So web names the visitor in a header of its
//! own, [`VISITOR_HEADER`], vouched for by a [`ForwardingToken`] that only holders of the
//! session key can make; the API believes that header whoever the peer is, and nothing else
//! that a client could send.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{extract::ConnectInfo, http::Extensions, http::HeaderMap};
use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header the web component sends its forwarding token in.
pub const FORWARDING_TOKEN_HEADER: &str = "x-ticketing-forwarded-by";
/// The header the web component names its visitor's address in.
pub const VISITOR_HEADER: &str = "x-ticketing-visitor";
/// The standard header naming the client and the proxies a request went through.
pub const FORWARDED_FOR: &str = "x-forwarded-for";
/// The standard header naming the scheme the client used in front of a proxy.
pub const FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The connection's peer, as the server recorded it on the request (none in tests that call
/// a router directly).
pub fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
}

/// The web component's proof that it is one of ours: an HMAC of a fixed label under the
/// session key (`JWT_KEY`), which every component has and no client does.
#[derive(Clone)]
pub struct ForwardingToken(Arc<str>);

impl std::fmt::Debug for ForwardingToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardingToken([redacted])")
    }
}

impl ForwardingToken {
    /// The token of a session key.
    pub fn derive(session_key: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(session_key)
            .expect("HMAC accepts keys of any length");
        mac.update(b"ticketing: the web pages forward their visitor's address (v1)");
        ForwardingToken(hex::encode(mac.finalize().into_bytes()).into())
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

    /// Also believes [`VISITOR_HEADER`] on a request that carries `token` (our web pages).
    pub fn with_internal(mut self, token: ForwardingToken) -> Self {
        self.internal = Some(token);
        self
    }

    /// Whether `address` is in a trusted range.
    pub fn is_trusted(&self, address: &IpAddr) -> bool {
        self.ranges.iter().any(|range| range.contains(address))
    }

    /// The visitor our own web pages name, if the request is theirs.
    fn visitor_of_own_web(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let token = self.internal.as_ref()?;
        let presented = headers.get(FORWARDING_TOKEN_HEADER)?;
        if !token.matches(presented.as_bytes()) {
            return None;
        }
        headers
            .get(VISITOR_HEADER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The scheme a trusted proxy says the client used (`X-Forwarded-Proto`: `http` or
    /// `https`); `None` from anyone else, or when it says nothing readable.
    pub fn forwarded_proto(&self, peer: IpAddr, headers: &HeaderMap) -> Option<&'static str> {
        if !self.is_trusted(&peer) {
            return None;
        }
        let value = headers.get(FORWARDED_PROTO)?.to_str().ok()?;
        match value
            .split(',')
            .next()?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "https" => Some("https"),
            "http" => Some("http"),
            _ => None,
        }
    }

    /// The client address: the visitor our web pages name; or the peer, or, when the peer is
    /// trusted, the last `X-Forwarded-For` hop that is not itself a trusted proxy (the peer
    /// when every hop is trusted or the header is missing or unreadable).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if let Some(visitor) = self.visitor_of_own_web(headers) {
            return visitor;
        }
        if !self.is_trusted(&peer) {
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
    fn the_visitor_our_web_pages_name_is_believed_only_with_the_token_of_our_key() {
        let token = ForwardingToken::derive(b"the session key of this deployment!!");
        let p = Proxies::none().with_internal(token.clone());
        let mut h = forwarded("10.0.0.5");
        h.insert(VISITOR_HEADER, HeaderValue::from_static("198.51.100.4"));
        assert_eq!(
            p.client_address(ip("10.0.0.9"), &h),
            ip("10.0.0.9"),
            "no token"
        );
        h.insert(
            FORWARDING_TOKEN_HEADER,
            HeaderValue::from_str(token.as_str()).unwrap(),
        );
        assert_eq!(
            p.client_address(ip("10.0.0.9"), &h),
            ip("198.51.100.4"),
            "whoever the peer (the ingress) is"
        );
        let other_key = ForwardingToken::derive(b"someone else's key, long enough!!!");
        h.insert(
            FORWARDING_TOKEN_HEADER,
            HeaderValue::from_str(other_key.as_str()).unwrap(),
        );
        assert_eq!(p.client_address(ip("10.0.0.9"), &h), ip("10.0.0.9"));
        assert_eq!(
            Proxies::none().client_address(ip("10.0.0.9"), &h),
            ip("10.0.0.9"),
            "an API that knows no token believes no visitor header"
        );
    }
}
