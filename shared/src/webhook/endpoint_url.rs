//! Where a webhook may be sent. An endpoint is an ERP's server on the
//! internet: never the service's own network, the cloud's metadata service or
//! anything else only an insider could reach (server-side request forgery).
//! The URL is checked when it is given and every address it resolves to is
//! checked again at each delivery (DNS can change after the check), by
//! [`Reach::admits`]; redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// How far deliveries may reach. Deployed: public HTTPS only. Locally
/// (`make run`, tests): also plain HTTP, loopback and private addresses, so a
/// receiver on the developer's machine works. Link-local and metadata
/// addresses are refused in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Internet,
    LocalNetwork,
}

/// A URL deliveries may be sent to under some [`Reach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(Url);

/// Why a URL or an address is not a place to deliver to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error("must be an absolute http(s) URL of at most {MAX_URL_CHARS} characters")]
    NotAUrl,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must not point to {0} addresses")]
    Address(&'static str),
}

impl EndpointUrl {
    /// Parses `text` and checks what can be checked without resolving it:
    /// the scheme, and the host when it is an address (or `localhost`).
    pub fn parse(text: &str, reach: Reach) -> Result<Self, Unreachable> {
        if text.chars().count() > MAX_URL_CHARS {
            return Err(Unreachable::NotAUrl);
        }
        let url = Url::parse(text).map_err(|_| Unreachable::NotAUrl)?;
        match (url.scheme(), reach) {
            ("https", _) | ("http", Reach::LocalNetwork) => {}
            ("http", Reach::Internet) => return Err(Unreachable::NotHttps),
            _ => return Err(Unreachable::NotAUrl),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Unreachable::Credentials);
        }
        match url.host() {
            None => return Err(Unreachable::NotAUrl),
            Some(Host::Ipv4(ip)) => reach.admits(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => reach.admits(IpAddr::V6(ip))?,
            Some(Host::Domain(name)) if is_localhost(name) => {
                reach.admits(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
            }
            Some(Host::Domain(_)) => {}
        }
        Ok(Self(url))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host name or address to resolve, and the port.
    #[must_use]
    pub fn host_and_port(&self) -> (String, u16) {
        let host = match self.0.host() {
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        (host, self.0.port_or_known_default().unwrap_or(443))
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost")
}

impl Reach {
    /// Whether a delivery may connect to `ip`.
    pub fn admits(self, ip: IpAddr) -> Result<(), Unreachable> {
        match (class(ip), self) {
            (None, _) => Ok(()),
            (Some(Class::Local(_)), Reach::LocalNetwork) => Ok(()),
            (Some(Class::Local(name) | Class::Never(name)), _) => Err(Unreachable::Address(name)),
        }
    }
}

enum Class {
    /// The service's own network: allowed only locally.
    Local(&'static str),
    /// Never a receiver: the metadata service, link-local, unroutable.
    Never(&'static str),
}

/// The AWS instance metadata service's IPv6 address (Nitro).
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

fn class(ip: IpAddr) -> Option<Class> {
    match ip {
        IpAddr::V4(ip) => class_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => class_v4(v4),
            None => class_v6(ip),
        },
    }
}

fn class_v4(ip: Ipv4Addr) -> Option<Class> {
    let [a, b, ..] = ip.octets();
    if ip.is_link_local() {
        Some(Class::Never("link-local or metadata"))
    } else if ip.is_unspecified() || a == 0 || ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some(Class::Never("unroutable"))
    } else if ip.is_loopback() {
        Some(Class::Local("loopback"))
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some(Class::Local("private"))
    } else {
        None
    }
}

fn class_v6(ip: Ipv6Addr) -> Option<Class> {
    let first = ip.segments()[0];
    if ip == METADATA_V6 || (first & 0xffc0) == 0xfe80 {
        Some(Class::Never("link-local or metadata"))
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some(Class::Never("unroutable"))
    } else if ip.is_loopback() {
        Some(Class::Local("loopback"))
    } else if (first & 0xfe00) == 0xfc00 {
        Some(Class::Local("private"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_https_url_is_an_endpoint_everywhere() {
        for reach in [Reach::Internet, Reach::LocalNetwork] {
            let url =
                EndpointUrl::parse("https://erp.example.com/hooks/orders?x=1", reach).unwrap();
            assert_eq!(url.host_and_port(), ("erp.example.com".into(), 443));
        }
    }

    #[test]
    fn deployed_only_public_https_is_allowed() {
        for (text, refused) in [
            ("http://erp.example.com/", Unreachable::NotHttps),
            ("https://127.0.0.1/", Unreachable::Address("loopback")),
            ("https://localhost:8443/", Unreachable::Address("loopback")),
            ("https://10.0.0.8/", Unreachable::Address("private")),
            ("https://192.168.1.1/", Unreachable::Address("private")),
            ("https://172.20.0.1/", Unreachable::Address("private")),
            ("https://100.64.0.1/", Unreachable::Address("private")),
            ("https://[::1]/", Unreachable::Address("loopback")),
            ("https://[fd12::1]/", Unreachable::Address("private")),
            (
                "https://[::ffff:10.0.0.1]/",
                Unreachable::Address("private"),
            ),
            ("https://user:pw@erp.example.com/", Unreachable::Credentials),
            ("ftp://erp.example.com/", Unreachable::NotAUrl),
            ("erp.example.com/hooks", Unreachable::NotAUrl),
        ] {
            assert_eq!(
                EndpointUrl::parse(text, Reach::Internet),
                Err(refused),
                "{text}"
            );
        }
    }

    #[test]
    fn locally_plain_http_and_loopback_are_allowed() {
        for text in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:9000/",
            "http://10.1.2.3/",
        ] {
            assert!(
                EndpointUrl::parse(text, Reach::LocalNetwork).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn metadata_and_link_local_addresses_are_refused_everywhere() {
        for reach in [Reach::Internet, Reach::LocalNetwork] {
            for text in [
                "https://169.254.169.254/latest/meta-data/",
                "https://169.254.170.2/v2/credentials",
                "https://[fd00:ec2::254]/",
                "https://[fe80::1]/",
                "https://[::ffff:169.254.169.254]/",
                "https://0.0.0.0/",
            ] {
                let refused = EndpointUrl::parse(text, reach);
                assert!(
                    matches!(refused, Err(Unreachable::Address(_))),
                    "{text}: {refused:?}"
                );
            }
        }
    }

    #[test]
    fn a_resolved_address_is_checked_again() {
        assert!(
            Reach::Internet
                .admits("93.184.216.34".parse().unwrap())
                .is_ok()
        );
        assert!(Reach::Internet.admits("10.0.0.1".parse().unwrap()).is_err());
        assert!(
            Reach::LocalNetwork
                .admits("10.0.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(
            Reach::LocalNetwork
                .admits("169.254.169.254".parse().unwrap())
                .is_err()
        );
    }
}
