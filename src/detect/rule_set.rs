//! Every rule of a config, built once and shared by the workers.
//!
//! Owns [`RuleSet`]: built from a validated config ([`RuleSet::build`], which reads every
//! `blocklist` file and gives every rule the config's graded protection), shared as an `Arc` so a reload swaps it whole, and the files its
//! rules read ([`RuleSet::watched_files`], for the reloader's watcher).
//!
//! Does not own: running the rules (`super::detector`).

use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;

use super::rule::Rule;
use crate::config::{Config, ConfigErrors};
use crate::protection::Protection;

/// Every rule of a config, built once and shared by the workers.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Builds the rules of a validated config, reading every `blocklist` file.
    ///
    /// # Errors
    /// Every unreadable blocklist file and every bad line in one, each naming its file
    /// (and line); a scope naming no host group (which validation refuses).
    pub fn build(config: &Config) -> Result<RuleSet, ConfigErrors> {
        let groups: Vec<(String, Vec<IpNet>)> = config
            .host_groups
            .iter()
            .map(|g| (g.name.clone(), g.cidrs.iter().map(|c| c.0).collect()))
            .collect();
        let networks: Vec<String> = config.networks.iter().map(|n| n.name.clone()).collect();
        let protection = Arc::new(Protection::new(config));
        let mut errors = Vec::new();
        let rules = config
            .rules
            .iter()
            .filter_map(|r| {
                let rule = Rule::from_config(r, &groups, &networks, &mut errors)?;
                Some(rule.with_protection(Arc::clone(&protection)))
            })
            .collect();
        if errors.is_empty() {
            Ok(RuleSet { rules })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The rules, in config order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every file the rules read (blocklists), sorted and without duplicates: what a
    /// reloader watches besides the config.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .rules
            .iter()
            .filter_map(|r| r.config.blocklist())
            .flat_map(|b| b.files.iter().cloned())
            .collect();
        files.sort();
        files.dedup();
        files
    }
}
