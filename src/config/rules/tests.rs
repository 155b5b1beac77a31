//! Rule schema tests: typed parameters and their defaults, refused keys, and errors that
//! name the file, the line of the offending key in its own table, and the rule.

use std::path::PathBuf;

use super::*;
use crate::config::{Config, load, parse};

/// Every problem of `src` read as a config file named `r.toml`, as displayed.
fn errors(src: &str) -> Vec<String> {
    match parse(src, Path::new("r.toml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn rules(src: &str) -> Vec<RuleConfig> {
    parse(src, Path::new("r.toml")).unwrap().rules
}

#[test]
fn a_valid_rule_file_has_no_problems_and_typed_defaults() {
    let src = r#"
[[host_groups]]
name = "dmz"
cidrs = ["192.0.2.0/24"]

[[rules]]
name = "udp_flood_dmz"
kind = "volume"
scope = "dmz"
severity = "critical"
threshold = 5000
protocol = "udp"
"for" = "2s"
labels = { team = "noc" }

[[rules]]
name = "listed"
kind = "blocklist"
scope = "all"
severity = "warning"
entries = ["203.0.113.0/24", "2001:db8::1"]
max_age = "7d"
"#;
    let rules = rules(src);
    let flood = &rules[0];
    assert_eq!(flood.common.scope, RuleScope::Group("dmz".to_owned()));
    assert_eq!(flood.common.for_, HumanDuration::secs(2));
    assert_eq!(flood.common.resolve_delay, HumanDuration::secs(30));
    assert_eq!(
        flood.params,
        RuleParams::Volume(VolumeParams {
            threshold: 5000.0,
            metric: VolumeMetric::Packets,
            protocol: VolumeProtocol::Udp,
            direction: VolumeDirection::Any,
            key: VolumeKey::Host,
            traffic: VolumeTraffic::All,
            min_hosts: 1,
            prefix_v4: 24,
            prefix_v6: 64,
        })
    );
    let listed = rules[1].blocklist().unwrap();
    assert_eq!(rules[1].common.scope, RuleScope::All);
    assert!((listed.threshold - 1.0).abs() < f64::EPSILON, "any packet");
    assert_eq!(listed.max_age, Some(HumanDuration::secs(7 * 24 * 3600)));
    assert_eq!(listed.entries.len(), 2);
}

#[test]
fn every_kind_has_its_defaults_in_its_struct() {
    let src = "[[rules]]\nname = \"s\"\nkind = \"syn_flood\"\nseverity = \"info\"\nthreshold = 1\n\
               [[rules]]\nname = \"p\"\nkind = \"port_scan\"\nseverity = \"info\"\nthreshold = 1\n\
               [[rules]]\nname = \"b\"\nkind = \"baseline\"\nseverity = \"info\"\nthreshold = 1\n\
               [[rules]]\nname = \"d\"\nkind = \"dns_tunnel\"\nseverity = \"info\"\nthreshold = 1\n";
    let rules = rules(src);
    assert!(
        matches!(&rules[0].params, RuleParams::SynFlood(p) if p.max_ports == 64
            && (p.max_completion_ratio - 0.2).abs() < 1e-12)
    );
    assert!(
        matches!(&rules[1].params, RuleParams::PortScan(p) if p.max_probe_bytes == 256
            && (p.max_answered_ratio - 0.5).abs() < 1e-12)
    );
    assert!(
        matches!(&rules[2].params, RuleParams::Baseline(p) if p.min_windows == 10
            && (p.k - 3.0).abs() < 1e-12 && (p.alpha - 0.1).abs() < 1e-12)
    );
    assert!(matches!(&rules[3].params, RuleParams::DnsTunnel(p) if p.min_label_len == 20));
    assert_eq!(rules[0].common.scope, RuleScope::Protected);
    assert_eq!(rules[0].common.max_keys, 4096);
}

#[test]
fn a_bad_threshold_in_the_third_rule_is_reported_at_its_own_line_and_name() {
    let src = "[[rules]]\nname = \"one\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 5\n\n\
               [[rules]]\nname = \"two\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 6\n\n\
               [[rules]]\nname = \"three\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 0\n";
    assert_eq!(
        errors(src),
        ["r.toml:17:1: key `rules.threshold`: rule `three`: threshold must be a positive number"]
    );
}

#[test]
fn a_missing_severity_is_reported_at_the_rules_table_naming_the_rule() {
    let src = "[[rules]]\nname = \"one\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 5\n\n\
               [[rules]]\nname = \"two\"\nkind = \"volume\"\nthreshold = 6\n";
    assert_eq!(
        errors(src),
        ["r.toml:7:1: key `rules`: rule `two`: missing field `severity`"]
    );
}

#[test]
fn a_field_of_another_kind_is_refused_at_its_line_with_the_fields_the_kind_takes() {
    let src = "[[rules]]\nname = \"flood\"\nkind = \"volume\"\nseverity = \"info\"\n\
               threshold = 5\nmax_answered_ratio = 0.5\n";
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "r.toml:6:1: key `rules.max_answered_ratio`: rule `flood` (kind `volume`): \
             unknown field `max_answered_ratio`, expected one of `threshold`, `metric`, \
             `protocol`, `direction`, `key`, `traffic`, `min_hosts`, `prefix_v4`, \
             `prefix_v6`, or a field every rule has (`name`, `scope`"
        ),
        "{}",
        errs[0]
    );
}

#[test]
fn a_typo_of_a_common_field_is_refused_and_the_common_fields_named() {
    let src = "[[rules]]\nname = \"flood\"\nkind = \"volume\"\nseverity = \"info\"\n\
               threshold = 5\nwindw = \"5s\"\n";
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "r.toml:6:1: key `rules.windw`: rule `flood` (kind `volume`): unknown field `windw`"
        ),
        "{}",
        errs[0]
    );
    assert!(
        errs[0].contains("`window`, `for`, `resolve_delay`"),
        "{}",
        errs[0]
    );
}

#[test]
fn values_of_the_wrong_type_and_unknown_kinds_point_at_the_value() {
    let src = "[[rules]]\nname = \"a\"\nkind = \"volume\"\nseverity = \"info\"\n\
               threshold = \"many\"\n\
               [[rules]]\nname = \"b\"\nkind = \"flood\"\nseverity = \"info\"\nthreshold = 1\n\
               [[rules]]\nname = \"c\"\nkind = \"volume\"\nseverity = \"urgent\"\nthreshold = 1\n\
               [[rules]]\nseverity = \"info\"\nthreshold = 1\n";
    let errs = errors(src);
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(
        errs[0].starts_with("r.toml:5:13: key `rules.threshold`: rule `a` (kind `volume`): invalid type: string \"many\""),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with("r.toml:8:8: key `rules.kind`: rule `b`: unknown variant `flood`"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2]
            .starts_with("r.toml:14:12: key `rules.severity`: rule `c`: unknown variant `urgent`"),
        "{}",
        errs[2]
    );
    // The fourth table has no name: it is told by its place.
    assert_eq!(
        errs[3],
        "r.toml:16:1: key `rules`: rule #4: missing field `name`"
    );
    assert_eq!(
        errs[4],
        "r.toml:16:1: key `rules`: rule #4: missing field `kind`"
    );
}

#[test]
fn threshold_is_required_except_for_blocklists_which_need_a_list() {
    let src = "[[rules]]\nname = \"flood\"\nkind = \"volume\"\nseverity = \"warning\"\n\
               [[rules]]\nname = \"listed\"\nkind = \"blocklist\"\nseverity = \"warning\"\n";
    assert_eq!(
        errors(src),
        [
            "r.toml:1:1: key `rules`: rule `flood` (kind `volume`): missing field `threshold`",
            "r.toml:5:1: key `rules.files`: rule `listed`: a blocklist needs `files` or `entries`",
        ]
    );
}

#[test]
fn range_problems_of_every_rule_are_reported_together_at_their_keys() {
    let src = r#"
[[rules]]
name = "Scan"
kind = "port_scan"
scope = "nowhere"
severity = "warning"
threshold = -1
max_answered_ratio = 2
window = "2h"

[[rules]]
name = "Scan"
kind = "baseline"
severity = "warning"
threshold = 1
alpha = 0
k = -1
labels = { "bad-name" = "x" }
max_keys = 0
"#;
    let errs = errors(src);
    let at: Vec<&str> = errs
        .iter()
        .map(|e| e.split(": rule").next().unwrap())
        .collect();
    assert_eq!(
        at,
        [
            "r.toml:3:1: key `rules.name`",
            "r.toml:5:1: key `rules.scope`",
            "r.toml:9:1: key `rules.window`",
            "r.toml:7:1: key `rules.threshold`",
            "r.toml:8:1: key `rules.max_answered_ratio`",
            "r.toml:12:1: key `rules.name`",
            "r.toml:19:1: key `rules.max_keys`",
            "r.toml:18:1: key `rules.labels`",
            "r.toml:16:1: key `rules.alpha`",
            "r.toml:17:1: key `rules.k`",
            "r.toml:12:1: key `rules.name`",
        ],
        "{errs:#?}"
    );
    assert!(
        errs.last()
            .unwrap()
            .ends_with("rule name `Scan` is used twice")
    );
}

#[test]
fn rules_d_files_are_loaded_and_their_errors_name_file_line_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[[rules]]\nname = \"main\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 5\n\
         [[host_groups]]\nname = \"dmz\"\ncidrs = [\"192.0.2.0/24\"]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    let rules = dir.path().join("rules.d/a.toml");
    let rule = |name: &str, threshold: u32| {
        format!(
            "[[rules]]\nname = \"{name}\"\nkind = \"volume\"\nscope = \"dmz\"\n\
             severity = \"info\"\nthreshold = {threshold}\n"
        )
    };
    std::fs::write(&rules, rule("a", 5) + &rule("b", 5)).unwrap();
    let loaded = load(Some(&config)).unwrap();
    let names: Vec<&str> = loaded
        .config
        .rules
        .iter()
        .map(|r| &*r.common.name)
        .collect();
    assert_eq!(
        names,
        ["main", "a", "b"],
        "the group of the main file serves rules.d"
    );
    std::fs::write(&rules, rule("a", 5) + &rule("b", 0) + &rule("main", 1)).unwrap();
    let errs = load(Some(&config)).unwrap_err().0;
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let file = rules.display();
    assert_eq!(
        shown,
        [
            format!(
                "{file}:12:1: key `rules.threshold`: rule `b`: threshold must be a positive number"
            ),
            format!("{file}:14:1: key `rules.name`: rule name `main` is used twice"),
        ]
    );
}

#[test]
fn every_file_is_checked_before_any_error_is_returned() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(&config, "[flows]\nmax_flows = 1\n").unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    std::fs::write(dir.path().join("rules.d/a.toml"), "[[rules]]\nname = 3\n").unwrap();
    std::fs::write(dir.path().join("rules.d/b.toml"), "[[rules]\n").unwrap();
    let errs = load(Some(&config)).unwrap_err().0;
    let files: Vec<String> = errs
        .iter()
        .map(|e| e.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        ["netwarden.toml", "a.toml", "a.toml", "b.toml"],
        "{errs:#?}"
    );
}

#[test]
fn the_built_in_config_carries_the_shipped_rules() {
    let loaded = load(None).unwrap();
    let kinds: HashSet<RuleKind> = loaded.config.rules.iter().map(RuleConfig::kind).collect();
    // Every kind but `blocklist`, which needs a list file (rules.d/blocklist.toml).
    assert_eq!(kinds.len(), RuleKind::ALL.len() - 1, "{kinds:?}");
    assert!(!kinds.contains(&RuleKind::Blocklist));
}

#[test]
fn serde_reads_a_rule_as_the_loader_does() {
    for text in [
        crate::config::DEFAULT_RULES_TOML,
        include_str!("../../../config/rules.d/blocklist.toml"),
    ] {
        let by_serde: RulesFile = toml::from_str(text).unwrap();
        let by_loader = parse(text, Path::new("x.toml")).unwrap();
        assert_eq!(by_serde.rules, by_loader.rules);
        assert!(!by_serde.rules.is_empty());
        let written = toml::to_string(&by_serde).unwrap();
        let again: RulesFile = toml::from_str(&written).unwrap();
        assert_eq!(
            again, by_serde,
            "serialising writes the same rule tables back"
        );
    }
    let misplaced = "[[rules]]\nname = \"a\"\nkind = \"volume\"\nseverity = \"info\"\n\
                     threshold = 1\nk = 3\n";
    let err = toml::from_str::<RulesFile>(misplaced).unwrap_err();
    assert!(err.message().contains("unknown field `k`"), "{err}");
}

#[test]
fn a_rule_reads_the_keys_its_common_struct_declares() {
    let keys = read::field_names::<RuleCommon>();
    assert_eq!(
        keys,
        [
            "name",
            "scope",
            "severity",
            "window",
            "for",
            "resolve_delay",
            "warmup",
            "shadow",
            "max_keys",
            "labels",
            "annotations"
        ]
    );
}

#[test]
fn blocklist_entries_are_checked_where_they_are_written() {
    let src = "[[rules]]\nname = \"l\"\nkind = \"blocklist\"\nseverity = \"info\"\n\
               entries = [\"300.1.1.1\"]\n";
    let errs = errors(src);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("r.toml:5:11: key `rules.entries`: rule `l` (kind `blocklist`): invalid CIDR `300.1.1.1`"),
        "{}",
        errs[0]
    );
}

#[test]
fn blocklist_files_are_made_absolute_relative_to_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[[rules]]\nname = \"a\"\nkind = \"blocklist\"\nseverity = \"info\"\nfiles = [\"blocklist.txt\", \"/srv/lists/b.txt\"]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    std::fs::write(
        dir.path().join("rules.d/b.toml"),
        "[[rules]]\nname = \"b\"\nkind = \"blocklist\"\nseverity = \"info\"\nfiles = [\"lists/c.txt\"]\n",
    )
    .unwrap();
    let loaded = load(Some(&config)).unwrap();
    let files: Vec<&Path> = loaded
        .config
        .rules
        .iter()
        .filter_map(RuleConfig::blocklist)
        .flat_map(|b| b.files.iter().map(PathBuf::as_path))
        .collect();
    assert_eq!(
        files,
        [
            dir.path().join("blocklist.txt").as_path(),
            Path::new("/srv/lists/b.txt"),
            dir.path().join("lists/c.txt").as_path(),
        ]
    );
    let mut rules = loaded.config.rules.clone();
    if let RuleParams::Blocklist(b) = &mut rules[0].params {
        b.files = vec![PathBuf::from("x.txt")];
    }
    resolve_rule_paths(&mut rules, Path::new(""));
    assert!(rules[0].blocklist().unwrap().files[0].is_absolute());
}

#[test]
fn validate_without_a_file_names_the_keys() {
    let mut config = Config {
        rules: rules(
            "[[rules]]\nname = \"a\"\nkind = \"volume\"\nseverity = \"info\"\nthreshold = 1\n",
        ),
        ..Config::default()
    };
    assert!(config.validate().is_empty());
    config.rules.push(config.rules[0].clone());
    config.rules[0].common.scope = RuleScope::Group("dmz".to_owned());
    let keys: Vec<String> = config.validate().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["rules.scope", "rules.name"]);
}
