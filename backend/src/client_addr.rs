//! The client address of a request: the TCP peer, or, when the peer is a trusted proxy (the
//! frontend), the address that proxy names in `X-Forwarded-For`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::app::AppState;
use crate::config::{canonical, TrustedProxies};
use crate::error::ApiError;

/// Where a request comes from, as far as this service can trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The client behind `peer`: `X-Forwarded-For` is read only when `peer` is trusted, from the right
/// (the hop nearest to us), skipping trusted proxies; the first other address is the client. An
/// entry that is not an address ends the walk, so a client cannot hide behind garbage.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = canonical(peer);
    if !trusted.contains(client) {
        return client;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.into_iter().rev() {
        let Some(addr) = parse_hop(entry) else { break };
        client = canonical(addr);
        if !trusted.contains(client) {
            break;
        }
    }
    client
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:5000`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

impl<S> FromRequestParts<S> for ClientAddr
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        // Requests always come through `http_serve::serve`, which records the peer; without it (a
        // router driven directly) the request is treated as coming from one unknown address.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(Self(resolve(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = TrustedProxies::loopback();
        assert_eq!(
            resolve(ip("198.51.100.9"), &xff(&["203.0.113.1"]), &trusted),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_client() {
        let trusted = TrustedProxies::parse("10.244.0.0/16").unwrap();
        let peer = ip("10.244.1.7");
        assert_eq!(
            resolve(peer, &xff(&["203.0.113.1"]), &trusted),
            ip("203.0.113.1")
        );
        // A client-supplied entry left of the real one is ignored.
        assert_eq!(
            resolve(peer, &xff(&["6.6.6.6, 203.0.113.1"]), &trusted),
            ip("203.0.113.1")
        );
        assert_eq!(
            resolve(
                peer,
                &xff(&["6.6.6.6", "10.244.2.2, 203.0.113.1:4000"]),
                &trusted
            ),
            ip("203.0.113.1")
        );
        assert_eq!(resolve(peer, &xff(&[]), &trusted), peer);
        assert_eq!(resolve(peer, &xff(&["garbage"]), &trusted), peer);
        assert_eq!(
            resolve(peer, &xff(&["6.6.6.6, garbage, 10.244.0.9"]), &trusted),
            ip("10.244.0.9")
        );
    }

    #[test]
    fn all_trusted_hops_leave_the_leftmost() {
        let trusted = TrustedProxies::loopback();
        assert_eq!(
            resolve(ip("127.0.0.1"), &xff(&["127.0.0.2"]), &trusted),
            ip("127.0.0.2")
        );
        assert_eq!(
            resolve(ip("::ffff:127.0.0.1"), &xff(&["[::1]:80"]), &trusted),
            ip("::1")
        );
    }
}
