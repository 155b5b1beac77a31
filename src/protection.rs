//! Graded protection at run time: which asset an address is, and how severe an alert
//! about it is.
//!
//! Owns [`Protection`], built once per config from its `[[host_groups]]` and
//! `[protection]`: the host groups as assets ([`Asset`]: the `host_group`,
//! `protection_level` and `data_grade` labels), the asset of hosts in no group, the
//! address → group lookup (the crate's [`CidrMap`]; most specific prefix wins, the first
//! group listed for the same prefix twice) and the severity matrix.
//!
//! Which address of an alert is its asset is decided by detection (`crate::detect`):
//! the key's `dst`, else its `src`; this module only looks addresses up.
//!
//! Does not own: reading or checking the config (`crate::config`), or which traffic a
//! rule looks at (a host-group scope, `crate::detect::Scope`).

use std::net::IpAddr;

use crate::cidr_map::CidrMap;
use crate::config::{Config, SeverityMatrix};
use crate::vocabulary::{DataGrade, ProtectionLevel, Severity};

/// What an alert or a traffic series is about, under graded protection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Asset {
    /// The host group's name, or `protection.default_host_group` for a host in none.
    pub host_group: String,
    /// Its protection level.
    pub level: ProtectionLevel,
    /// Its data grade.
    pub grade: DataGrade,
}

impl Asset {
    /// The labels an alert or series about the asset carries, as (name, value).
    pub fn labels(&self) -> [(&'static str, &str); 3] {
        [
            ("host_group", self.host_group.as_str()),
            ("protection_level", self.level.as_str()),
            ("data_grade", self.grade.as_str()),
        ]
    }
}

/// The host groups as assets, and the severity matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protection {
    /// One per host group, in config order (the group index).
    groups: Vec<Asset>,
    /// The asset of an address in no group.
    default: Asset,
    /// Address → group index.
    prefixes: CidrMap<u16>,
    matrix: SeverityMatrix,
}

impl Default for Protection {
    fn default() -> Protection {
        Protection::new(&Config::default())
    }
}

impl Protection {
    /// The protection of a validated config.
    pub fn new(config: &Config) -> Protection {
        let p = &config.protection;
        let groups = config
            .host_groups
            .iter()
            .map(|g| Asset {
                host_group: g.name.clone(),
                level: g.protection_level.unwrap_or(p.default_level),
                grade: g.data_grade.unwrap_or(p.default_data_grade),
            })
            .collect();
        let prefixes = config.host_groups.iter().enumerate().flat_map(|(i, g)| {
            // Validation caps the groups far below u16::MAX.
            let index = u16::try_from(i).unwrap_or(u16::MAX);
            g.cidrs.iter().map(move |c| (c.0, index))
        });
        Protection {
            groups,
            default: Asset {
                host_group: p.default_host_group.clone(),
                level: p.default_level,
                grade: p.default_data_grade,
            },
            prefixes: CidrMap::new(prefixes),
            matrix: p.severity_matrix.clone(),
        }
    }

    /// The index of the host group holding `addr`, if any. Allocation-free.
    #[inline]
    pub fn group_of(&self, addr: IpAddr) -> Option<u16> {
        self.prefixes.lookup(addr)
    }

    /// Every host group's asset, by group index.
    pub fn groups(&self) -> &[Asset] {
        &self.groups
    }

    /// The asset of hosts in no group.
    pub fn default_asset(&self) -> &Asset {
        &self.default
    }

    /// The asset of group `index`, or the default one for `None` (or an index out of
    /// range).
    pub fn asset_of_group(&self, index: Option<u16>) -> &Asset {
        index
            .and_then(|i| self.groups.get(usize::from(i)))
            .unwrap_or(&self.default)
    }

    /// The asset at `addr`: its host group; else, for no address or an address in no
    /// group, the group named `fallback` (a rule's host-group scope); else the default.
    pub fn asset(&self, addr: Option<IpAddr>, fallback: Option<&str>) -> &Asset {
        addr.and_then(|a| self.group_of(a))
            .and_then(|i| self.groups.get(usize::from(i)))
            .or_else(|| {
                let name = fallback?;
                self.groups.iter().find(|g| g.host_group == name)
            })
            .unwrap_or(&self.default)
    }

    /// The severity of an alert of a `rule`-severity rule about `asset`.
    pub fn severity(&self, rule: Severity, asset: &Asset) -> Severity {
        self.matrix.escalate(rule, asset.level)
    }

    /// The severity matrix in effect.
    pub fn matrix(&self) -> &SeverityMatrix {
        &self.matrix
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn protection(src: &str) -> Protection {
        Protection::new(&crate::config::parse(src, Path::new("t.toml")).unwrap())
    }

    const GROUPS: &str = r#"
[protection]
default_level = 1
default_data_grade = "important"
[[host_groups]]
name = "office"
cidrs = ["10.0.0.0/16"]
[[host_groups]]
name = "db"
cidrs = ["10.0.5.0/24", "fd00::5/128"]
protection_level = 4
data_grade = "core"
"#;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn an_address_takes_its_most_specific_group_and_unset_fields_the_defaults() {
        let p = protection(GROUPS);
        let db = p.asset(ip("10.0.5.9"), None);
        assert_eq!(
            (db.host_group.as_str(), db.level.get(), db.grade),
            ("db", 4, DataGrade::Core)
        );
        assert_eq!(p.asset(ip("fd00::5"), None).host_group, "db");
        let office = p.asset(ip("10.0.6.1"), None);
        assert_eq!(
            (office.host_group.as_str(), office.level.get(), office.grade),
            ("office", 1, DataGrade::Important)
        );
        let outside = p.asset(ip("192.0.2.1"), None);
        assert_eq!(outside, p.default_asset());
        assert_eq!(outside.host_group, "ungrouped");
    }

    #[test]
    fn an_address_in_no_group_falls_back_to_the_named_group_then_the_default() {
        let p = protection(GROUPS);
        assert_eq!(p.asset(ip("192.0.2.1"), Some("db")).host_group, "db");
        assert_eq!(p.asset(None, Some("db")).host_group, "db");
        assert_eq!(p.asset(None, None).host_group, "ungrouped");
        assert_eq!(p.asset(ip("10.0.6.1"), Some("db")).host_group, "office");
    }

    #[test]
    fn severity_escalates_with_the_assets_level() {
        let p = protection(GROUPS);
        let db = p.asset(ip("10.0.5.9"), None);
        let office = p.asset(ip("10.0.6.1"), None);
        assert_eq!(p.severity(Severity::Critical, db), Severity::Emergency);
        assert_eq!(p.severity(Severity::Warning, db), Severity::Critical);
        assert_eq!(p.severity(Severity::Critical, office), Severity::Critical);
        assert_eq!(
            db.labels(),
            [
                ("host_group", "db"),
                ("protection_level", "4"),
                ("data_grade", "core")
            ]
        );
    }
}
