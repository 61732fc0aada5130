//! The client's address: the TCP peer, unless that peer is a proxy we were
//! told to trust (`--trusted-proxy`), in which case the address it reports in
//! `X-Forwarded-For`. Behind Caddy or a load balancer every request comes from
//! the proxy; without this the per-address log-in limit would be one bucket
//! for everybody and the audit log would name the proxy.
//!
//! The header is read from the right: each trusted proxy appends the address
//! it received the request from, so the right-most entry that is not a
//! trusted proxy is the client. Entries to its left were written by the
//! client itself and are never believed. A malformed entry ends the walk at
//! the last address that was believable.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Parses `--trusted-proxy` values: a network (`10.0.0.0/8`, `fd00::/8`) or a
/// single address (`127.0.0.1`).
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is neither an address nor a network such as 10.0.0.0/8"))
}

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all(&FORWARDED_FOR)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_entry(entry) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// `203.0.113.7`, `2001:db8::1`, or either with a port (`[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = [
            parse_network("10.0.0.0/8").unwrap(),
            parse_network("127.0.0.1").unwrap(),
        ];
        let proxy = ip("10.1.2.3");
        let cases: &[(&[&str], &str)] = &[
            // No header: the proxy itself.
            (&[], "10.1.2.3"),
            (&["203.0.113.7"], "203.0.113.7"),
            // The client's own claim (left) is not believed.
            (&["1.1.1.1, 203.0.113.7"], "203.0.113.7"),
            // Through two trusted proxies.
            (&["203.0.113.7, 10.9.9.9"], "203.0.113.7"),
            // Several header lines read as one list.
            (&["1.1.1.1", "203.0.113.7, 10.9.9.9"], "203.0.113.7"),
            (&["2001:db8::1"], "2001:db8::1"),
            (&["[2001:db8::1]:443"], "2001:db8::1"),
            (&["203.0.113.7:5555"], "203.0.113.7"),
            (&["::ffff:203.0.113.7"], "203.0.113.7"),
            // Garbage ends the walk at the last believable hop.
            (&["203.0.113.7, nonsense"], "10.1.2.3"),
            (&["nonsense, 10.9.9.9"], "10.9.9.9"),
            (&[""], "10.1.2.3"),
            // Only trusted hops: the left-most of them.
            (&["10.5.5.5, 10.9.9.9"], "10.5.5.5"),
        ];
        for (values, want) in cases {
            assert_eq!(
                client_ip(proxy, &headers(values), &trusted),
                ip(want),
                "{values:?}"
            );
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = [parse_network("10.0.0.0/8").unwrap()];
        let h = headers(&["203.0.113.7"]);
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn networks_parse_and_nonsense_is_refused() {
        assert!(parse_network("10.0.0.0/8").is_ok());
        assert!(parse_network("fd00::/8").is_ok());
        assert!(parse_network(" 127.0.0.1 ").is_ok());
        assert!(parse_network("::1").is_ok());
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("localhost").is_err());
    }
}
