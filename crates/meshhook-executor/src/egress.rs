//! The SSRF guard: which addresses outbound requests may reach.
//!
//! Loopback, private, link-local (cloud metadata at 169.254.169.254),
//! shared (CGNAT), unspecified, multicast, broadcast and reserved addresses
//! are refused, in IPv4 and IPv6 (including IPv4 addresses embedded in
//! IPv6: mapped, NAT64, 6to4) — unless `MESHHOOK_EGRESS_ALLOWLIST` allows
//! them by CIDR, address or host name.
//!
//! The check runs on the addresses a name resolves to, inside the HTTP
//! client's DNS resolver ([`Resolver`]), so every connection — redirects and
//! DNS rebinding included — is covered; IP-literal URLs (which skip DNS) are
//! checked up front and on every redirect hop.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The environment variable holding the allowlist.
pub const ALLOWLIST_ENV: &str = "MESHHOOK_EGRESS_ALLOWLIST";

/// A request target the guard refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused: {ip} is {class} (set MESHHOOK_EGRESS_ALLOWLIST to allow it)")]
pub struct Refused {
    /// The address.
    pub ip: IpAddr,
    /// What kind of address it is ("a private address", ...).
    pub class: &'static str,
}

/// An allowlist entry that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither a CIDR, an IP address nor a host name")]
pub struct InvalidEntry(pub String);

/// The guard's configuration: what is allowed beyond public addresses.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Egress {
    nets: Vec<IpNet>,
    /// Lower-case names; `*.example.com` entries are stored as `.example.com`.
    hosts: Vec<String>,
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress")
            .field(
                "allow_nets",
                &self
                    .nets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .field("allow_hosts", &self.hosts)
            .finish()
    }
}

impl Egress {
    /// Parses a comma-separated list of CIDRs (`10.1.0.0/16`), addresses
    /// (`10.1.2.3`, `::1`) and host names (`internal.example`, or
    /// `*.svc.local` for every name under it). Empty means no exceptions.
    pub fn parse(list: &str) -> Result<Self, InvalidEntry> {
        let mut egress = Egress::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                egress.nets.push(net.trunc());
            } else if let Ok(ip) = entry
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                egress.nets.push(IpNet::from(ip));
            } else if is_host_pattern(entry) {
                let host = entry.to_ascii_lowercase();
                egress
                    .hosts
                    .push(host.strip_prefix('*').map_or(host.clone(), str::to_owned));
            } else {
                return Err(InvalidEntry(entry.to_owned()));
            }
        }
        Ok(egress)
    }

    /// Builds from [`ALLOWLIST_ENV`] (unset: no exceptions).
    pub fn from_env() -> Result<Self, InvalidEntry> {
        Self::parse(&std::env::var(ALLOWLIST_ENV).unwrap_or_default())
    }

    /// Whether `host` (a name, as in a URL) is allowlisted by name.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| {
            if h.starts_with('.') {
                host.ends_with(h.as_str())
            } else {
                host == *h
            }
        })
    }

    /// Checks one address: `Ok` for public or allowlisted addresses.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(class) = forbidden_class(ip) else {
            return Ok(());
        };
        let canonical = canonical(ip);
        if self
            .nets
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&canonical))
        {
            return Ok(());
        }
        Err(Refused {
            ip: canonical,
            class,
        })
    }
}

fn is_host_pattern(entry: &str) -> bool {
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// An IPv4 address carried inside an IPv6 one (mapped, NAT64, 6to4,
/// deprecated compatible form), else the address itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let o = v6.octets();
    let last32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last32),
        // 6to4 2002:AABB:CCDD::/48.
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        // Deprecated IPv4-compatible ::a.b.c.d (but not :: and ::1).
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(last32),
        _ => None,
    }
}

/// Why `ip` is forbidden, or `None` when it is a public address.
pub fn forbidden_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_broadcast() => "a broadcast address",
        (127, _, _) => "a loopback address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (169, 254, _) => "a link-local address (where cloud metadata services live)",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (224..=239, _, _) => "a multicast address",
        (0, _, _) => "a 'this network' address",
        (192, 0, 0)
        | (192, 0, 2)
        | (198, 51, 100)
        | (203, 0, 113)
        | (198, 18..=19, _)
        | (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        0xfc00..=0xfdff => "a private (unique local) address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xff00..=0xffff => "a multicast address",
        // Discard-only 100::/64 and documentation 2001:db8::/32.
        0x0100 if s[1..4] == [0, 0, 0] => "a reserved address",
        0x2001 if s[1] == 0x0db8 => "a reserved address",
        _ => return None,
    })
}

/// The HTTP client's DNS resolver: resolves with the system resolver, then
/// keeps only addresses the guard allows (all of them for allowlisted names).
#[derive(Debug, Clone)]
pub struct Resolver {
    egress: Arc<Egress>,
}

impl Resolver {
    /// A resolver enforcing `egress`.
    pub fn new(egress: Arc<Egress>) -> Self {
        Resolver { egress }
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = self.egress.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if egress.allows_host(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match egress.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
                        first_refusal.get_or_insert(r);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), first_refusal) {
                (true, Some(refused)) => {
                    Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("valid ip")
    }

    #[test]
    fn refuses_internal_addresses() {
        let e = Egress::default();
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
        ] {
            let r = e.check_ip(ip(addr)).expect_err(addr);
            assert!(r.class.contains(class), "{addr}: {}", r.class);
        }
        let r = e.check_ip(ip("10.0.0.1")).expect_err("private");
        assert_eq!(
            r.to_string(),
            "refused: 10.0.0.1 is a private address (set MESHHOOK_EGRESS_ALLOWLIST to allow it)"
        );
        assert_eq!(
            e.check_ip(ip("::ffff:10.0.0.1")).expect_err("mapped").ip,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn allows_public_addresses() {
        let e = Egress::default();
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(e.check_ip(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allowlist_exempts_cidrs_addresses_and_hosts() {
        let e = Egress::parse(" 10.1.0.0/16, 127.0.0.1 ,fd00::/8, internal.example, *.svc.local ")
            .expect("parses");
        assert_eq!(e.check_ip(ip("10.1.2.3")), Ok(()));
        assert!(e.check_ip(ip("10.2.0.1")).is_err());
        assert_eq!(e.check_ip(ip("127.0.0.1")), Ok(()));
        assert!(e.check_ip(ip("127.0.0.2")).is_err());
        assert_eq!(e.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(e.check_ip(ip("fd12::1")), Ok(()));
        assert!(e.allows_host("Internal.Example"));
        assert!(e.allows_host("api.svc.local"));
        assert!(!e.allows_host("svc.local.evil.com"));
        assert!(!e.allows_host("example"));
        assert!(Egress::parse("not a host!").is_err());
        assert_eq!(Egress::parse("").expect("empty"), Egress::default());
    }
}
