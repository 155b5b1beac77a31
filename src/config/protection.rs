//! Graded protection in the configuration: the `[protection]` section.
//!
//! Owns [`ProtectionConfig`]: what a host in no `[[host_groups]]` entry is (its
//! `host_group` label, protection level and data grade; a group that sets no level or
//! grade takes the default ones too), and [`SeverityMatrix`], which turns a rule's
//! severity and the protection level of the asset an alert is about into the alert's
//! severity; and their checks.
//!
//! Invariant of a validated matrix: severity never falls as the level rises (a row read
//! left to right) or as the rule's severity rises (a column read top to bottom), so a
//! more important asset or a more severe rule never gives a milder alert.
//!
//! Does not own: the per-group `protection_level` and `data_grade` (`super::rules`) or
//! looking addresses up (`crate::protection`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::is_label_safe;
use crate::vocabulary::{DataGrade, ProtectionLevel, Severity};

/// `[protection]`: the defaults of graded protection and the severity matrix.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectionConfig {
    /// The `host_group` label of a host in no `[[host_groups]]` entry: 1-64 of
    /// `[a-z0-9_.:/-]`, not the name of a host group, `all` or `protected`.
    pub default_host_group: String,
    /// The protection level (1-5) of a host in no group, and of a group that sets none.
    pub default_level: ProtectionLevel,
    /// The data grade (`general`, `important`, `core`) of a host in no group, and of a
    /// group that sets none.
    pub default_data_grade: DataGrade,
    /// Rule severity × protection level → alert severity.
    pub severity_matrix: SeverityMatrix,
}

impl Default for ProtectionConfig {
    fn default() -> Self {
        ProtectionConfig {
            default_host_group: "ungrouped".to_owned(),
            default_level: ProtectionLevel::ALL[1],
            default_data_grade: DataGrade::General,
            severity_matrix: SeverityMatrix::default(),
        }
    }
}

/// The severity of an alert from the severity of its rule (the row) and the protection
/// level of its asset (the position in the row, levels 1 to 5).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityMatrix {
    /// Alerts of `info` rules, at levels 1 to 5.
    pub info: [Severity; 5],
    /// Alerts of `warning` rules, at levels 1 to 5.
    pub warning: [Severity; 5],
    /// Alerts of `critical` rules, at levels 1 to 5.
    pub critical: [Severity; 5],
    /// Alerts of `emergency` rules, at levels 1 to 5.
    pub emergency: [Severity; 5],
}

impl Default for SeverityMatrix {
    /// Levels 1 to 3 keep the rule's severity; on a level-4 or level-5 asset a warning
    /// becomes critical and a critical alert an emergency.
    fn default() -> Self {
        use Severity::{Critical, Emergency, Info, Warning};
        SeverityMatrix {
            info: [Info; 5],
            warning: [Warning, Warning, Warning, Critical, Critical],
            critical: [Critical, Critical, Critical, Emergency, Emergency],
            emergency: [Emergency; 5],
        }
    }
}

impl SeverityMatrix {
    /// The row of rule severity `s`.
    pub fn row(&self, s: Severity) -> &[Severity; 5] {
        match s {
            Severity::Info => &self.info,
            Severity::Warning => &self.warning,
            Severity::Critical => &self.critical,
            Severity::Emergency => &self.emergency,
        }
    }

    /// The severity of an alert of a `rule`-severity rule on an asset of `level`.
    pub fn escalate(&self, rule: Severity, level: ProtectionLevel) -> Severity {
        self.row(rule).get(level.index()).copied().unwrap_or(rule)
    }

    /// The matrix as a table: a header of levels, then one line per rule severity.
    pub fn table(&self) -> String {
        let mut out = String::from("rule severity");
        for level in ProtectionLevel::ALL {
            let _ = write!(out, "  level {:<3}", level.as_str());
        }
        for s in Severity::ALL {
            let _ = write!(out, "\n{:<13}", s.as_str());
            for cell in self.row(s) {
                let _ = write!(out, "  {:<9}", cell.as_str());
            }
        }
        out.lines().fold(String::new(), |mut table, line| {
            table.push_str(line.trim_end());
            table.push('\n');
            table
        })
    }

    /// Problems as (row key, message): a row whose severity falls as the level rises, a
    /// level whose severity falls as the rule's rises.
    fn check(&self, bad: &mut impl FnMut(&str, String)) {
        for s in Severity::ALL {
            let row = self.row(s);
            for (level, pair) in (2..).zip(row.windows(2)) {
                if let [lower, higher] = pair
                    && higher < lower
                {
                    bad(
                        &format!("protection.severity_matrix.{}", s.as_str()),
                        format!(
                            "severity must not fall as the level rises: level {} gives {lower}, level {level} gives {higher}",
                            level - 1,
                            lower = lower.as_str(),
                            higher = higher.as_str(),
                        ),
                    );
                }
            }
        }
        for (i, pair) in Severity::ALL.windows(2).enumerate() {
            let [milder, graver] = pair else { continue };
            let (a, b) = (self.row(*milder), self.row(*graver));
            for (level, (x, y)) in (1..).zip(a.iter().zip(b)) {
                if y < x {
                    let key = Severity::ALL.get(i + 1).map_or("", |s| s.as_str());
                    bad(
                        &format!("protection.severity_matrix.{key}"),
                        format!(
                            "at level {level} a `{}` rule gives {} but a `{}` rule only {}",
                            milder.as_str(),
                            x.as_str(),
                            graver.as_str(),
                            y.as_str()
                        ),
                    );
                }
            }
        }
    }
}

impl ProtectionConfig {
    /// Problems of the section alone, as (dotted key, message). Whether
    /// `default_host_group` names a host group is checked with the host groups.
    pub(super) fn validate(&self, bad: &mut impl FnMut(&str, String)) {
        let name = &self.default_host_group;
        if !is_label_safe(name) || name == "all" || name == "protected" {
            bad(
                "protection.default_host_group",
                format!("`{name}` must be 1-64 of [a-z0-9_.:/-], not `all` or `protected`"),
            );
        }
        self.severity_matrix.check(bad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_matrix_pages_harder_on_levels_four_and_five() {
        let m = SeverityMatrix::default();
        let level = |n| ProtectionLevel::new(n).unwrap();
        for n in 1..=3 {
            for s in Severity::ALL {
                assert_eq!(m.escalate(s, level(n)), s, "level {n} keeps {s:?}");
            }
        }
        for n in 4..=5 {
            assert_eq!(
                m.escalate(Severity::Critical, level(n)),
                Severity::Emergency
            );
            assert_eq!(m.escalate(Severity::Warning, level(n)), Severity::Critical);
            assert_eq!(m.escalate(Severity::Info, level(n)), Severity::Info);
        }
        let mut problems = Vec::new();
        ProtectionConfig::default().validate(&mut |k, m| problems.push((k.to_owned(), m)));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_matrix_that_softens_with_level_or_rule_severity_is_refused() {
        use Severity::{Critical, Emergency, Warning};
        let m = SeverityMatrix {
            warning: [Critical, Warning, Warning, Critical, Critical],
            critical: [Warning, Critical, Critical, Emergency, Emergency],
            ..SeverityMatrix::default()
        };
        let mut problems = Vec::new();
        m.check(&mut |k, msg| problems.push(format!("{k}: {msg}")));
        assert_eq!(
            problems,
            [
                "protection.severity_matrix.warning: severity must not fall as the level \
                 rises: level 1 gives critical, level 2 gives warning",
                "protection.severity_matrix.critical: at level 1 a `warning` rule gives \
                 critical but a `critical` rule only warning",
            ]
        );
    }

    #[test]
    fn table_lists_every_rule_severity_by_level() {
        let t = SeverityMatrix::default().table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(
            lines[0].starts_with("rule severity  level 1    level 2"),
            "{t}"
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            [
                "critical",
                "critical",
                "critical",
                "critical",
                "emergency",
                "emergency"
            ]
        );
    }
}
