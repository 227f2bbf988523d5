//! Address types for configuration: CIDR networks for trusted carriers, `host[:port]`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a string is not an [`IpNetwork`] (the config error names the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR network")]
pub struct ParseNetworkError;

impl IpNetwork {
    /// A network from an address and prefix length; host bits are cleared.
    /// Returns `None` if the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Option<Self> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix_len > max {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix_len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix_len))),
        };
        Some(Self { addr, prefix_len })
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is inside this network. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`,
    /// as seen on dual-stack sockets) match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix_len) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix_len) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix_len: u8) -> u32 {
    // checked_shl: a shift by 32 would overflow; /0 means "no bits fixed".
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len.min(128)))
        .unwrap_or(0)
}

impl FromStr for IpNetwork {
    type Err = ParseNetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| ParseNetworkError)?;
        let prefix_len = match len {
            // Only plain decimal digits: "+8" or " 8" would be accepted by u8::from_str.
            Some(len)
                if !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit()) =>
            {
                len.parse::<u8>().map_err(|_| ParseNetworkError)?
            }
            Some(_) => return Err(ParseNetworkError),
            None => match addr {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
        };
        IpNetwork::new(addr, prefix_len).ok_or(ParseNetworkError)
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// A host name or IP address with an optional port, e.g. `sip.carrier.example:5060`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

/// Why a string is not a [`HostPort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a host or host:port")]
pub struct ParseHostPortError;

impl FromStr for HostPort {
    type Err = ParseHostPortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            // "[v6]" or "[v6]:port"
            let (v6, after) = rest.split_once(']').ok_or(ParseHostPortError)?;
            v6.parse::<Ipv6Addr>().map_err(|_| ParseHostPortError)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(ParseHostPortError)?),
            };
            (v6, port)
        } else if s.parse::<Ipv6Addr>().is_ok() {
            (s, None)
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = match port {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => return Err(ParseHostPortError),
                    Ok(p) => Some(p),
                }
            }
            Some(_) => return Err(ParseHostPortError),
            None => None,
        };
        if !is_host(host) {
            return Err(ParseHostPortError);
        }
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Whether `s` is an IP address or a DNS host name (RFC 1123 labels, max 253 bytes).
pub fn is_host(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn cidr_parses_and_matches() {
        let net: IpNetwork = "10.1.2.3/8".parse().expect("valid");
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(
            net.contains(ip("::ffff:10.0.0.9")),
            "v4-mapped matches v4 network"
        );
        assert!(!net.contains(ip("::1")));

        let host: IpNetwork = "192.0.2.7".parse().expect("valid");
        assert_eq!(host.prefix_len(), 32);
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.8")));

        let all: IpNetwork = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.1")));

        let v6: IpNetwork = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let v6all: IpNetwork = "::/0".parse().expect("valid");
        assert!(v6all.contains(ip("2001:db8::1")));
    }

    #[test]
    fn cidr_rejects_garbage() {
        for bad in [
            "",
            "10.0.0.x",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "/8",
            "10.0.0.0/8/8",
            "host.example",
        ] {
            assert!(
                bad.parse::<IpNetwork>().is_err(),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn host_port_parses() {
        let hp: HostPort = "sip.carrier.example:5060".parse().expect("valid");
        assert_eq!(hp.host, "sip.carrier.example");
        assert_eq!(hp.port, Some(5060));
        let hp: HostPort = "[2001:db8::1]:5080".parse().expect("valid");
        assert_eq!(hp.host, "2001:db8::1");
        assert_eq!(hp.to_string(), "[2001:db8::1]:5080");
        let hp: HostPort = "2001:db8::1".parse().expect("valid");
        assert_eq!(hp.port, None);
        let hp: HostPort = "192.0.2.1".parse().expect("valid");
        assert_eq!(hp.to_string(), "192.0.2.1");
        for bad in [
            "",
            ":5060",
            "host:",
            "host:0",
            "host:70000",
            "ho st",
            "[::1",
            "[::1]5060",
            "-a.example",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad:?} must be rejected");
        }
    }
}
