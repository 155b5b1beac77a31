//! Value types that appear in the TOML config: durations and CIDRs.
//!
//! Each parses from a string in its `Deserialize` impl, so a bad value is reported by the
//! TOML parser with the exact line and column of the offending value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the human way: `"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Whole seconds.
    pub const fn secs(s: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(s))
    }

    /// Milliseconds.
    pub const fn millis(ms: u64) -> HumanDuration {
        HumanDuration(Duration::from_millis(ms))
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s)
            .map(HumanDuration)
            .map_err(|e| {
                format!("invalid duration `{s}` ({e}); write e.g. \"30s\", \"5m\", \"250ms\"")
            })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address
/// means a single host (`/32` or `/128`). Host bits are cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Cidr(net.trunc()));
        }
        if let Ok(addr) = s.parse::<std::net::IpAddr>() {
            return Ok(Cidr(IpNet::from(addr)));
        }
        Err(format!(
            "invalid CIDR `{s}`: expected an address or address/prefix such as 10.0.0.0/8"
        ))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_human_units() {
        assert_eq!(
            "30s".parse::<HumanDuration>().unwrap(),
            HumanDuration::secs(30)
        );
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap(),
            HumanDuration::millis(250)
        );
        assert_eq!(
            "1h 30m".parse::<HumanDuration>().unwrap(),
            HumanDuration::secs(5400)
        );
        assert!("thirty".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn cidrs_clear_host_bits_and_accept_bare_addresses() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "192.0.2.7".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            "2001:db8::1/32".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("lan".parse::<Cidr>().is_err());
    }
}
