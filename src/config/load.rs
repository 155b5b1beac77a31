//! Reading the configuration: the main file, the rule files beside it, and every check.
//!
//! Owns [`load`] (the main file, or the embedded default, plus every `*.toml` of its
//! `rules_dir`) and [`parse`] (one file's text). Each file is parsed once into the TOML
//! parser's spanned document; its `[[rules]]` tables are read by `rules::read` (which keeps
//! their positions) and the rest by serde. Every problem of every file is collected
//! before anything is returned, each as a [`ConfigError`] naming its file, line and key,
//! and for a rule, the rule.
//!
//! Does not own: the schema (`super`, `super::rules`) or turning positions into lines
//! (`super::error`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, Deserializer};

use super::rules::{self, HostGroupConfig, MAX_HOST_GROUPS, MAX_RULES, RuleConfig};
use super::{
    BUILT_IN_PATH, BUILT_IN_RULES_PATH, Config, ConfigError, ConfigErrors, DEFAULT_CONFIG_TOML,
    DEFAULT_RULES_TOML, LoadedConfig, MAX_CONFIG_BYTES, RulesFile, read_text,
};

/// One file's rules and host groups, with its text to locate problems in.
struct RuleSource {
    path: PathBuf,
    text: String,
    rules: Vec<RuleConfig>,
    /// The place of each of `rules` among the file's `[[rules]]` tables (tables that could
    /// not be read are not in `rules`).
    positions: Vec<usize>,
    host_groups: Vec<HostGroupConfig>,
}

/// Reads and validates `path`, or the embedded default when `path` is `None`.
///
/// # Errors
/// Every problem found, each naming the file, line and key.
pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigErrors> {
    let (text, shown) = match path {
        Some(p) => (read(p).map_err(|e| ConfigErrors(vec![e]))?, p.to_owned()),
        None => (DEFAULT_CONFIG_TOML.to_owned(), PathBuf::from(BUILT_IN_PATH)),
    };
    let (mut config, positions, mut errors) = read_document::<Config>(&text, &shown)?;
    errors.extend(settings_problems(&config, &text, &shown));
    let main = (shown.clone(), text.clone());
    let mut sources = vec![RuleSource {
        rules: std::mem::take(&mut config.rules),
        positions,
        host_groups: std::mem::take(&mut config.host_groups),
        path: shown,
        text,
    }];
    for (file, text) in rule_files(&config, path, (&main.0, &main.1), &mut errors) {
        match read_document::<RulesFile>(&text, &file) {
            Ok((f, positions, problems)) => {
                errors.extend(problems);
                sources.push(RuleSource {
                    path: file,
                    text,
                    rules: f.rules,
                    positions,
                    host_groups: f.host_groups,
                });
            }
            Err(e) => errors.extend(e.0),
        }
    }
    check_rules(&sources, &config.protection.default_host_group, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    for s in sources {
        config.rules.extend(s.rules);
        config.host_groups.extend(s.host_groups);
    }
    // Blocklist files are relative to the config file's folder (the working directory
    // for the embedded default); the rule set and the reloader see absolute paths.
    let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
    rules::resolve_rule_paths(&mut config.rules, base);
    if !config.metrics.web_config_file.as_os_str().is_empty() {
        config.metrics.web_config_file = base.join(&config.metrics.web_config_file);
    }
    config.alerting.resolve_paths(base);
    Ok(LoadedConfig {
        config,
        path: path.map(Path::to_owned),
    })
}

/// Parses and validates config text (its own rules and host groups only: no rule
/// files); `path` is only used in error messages.
///
/// # Errors
/// Every problem found.
pub fn parse(source: &str, path: &Path) -> Result<Config, ConfigErrors> {
    let (mut config, positions, mut errors) = read_document::<Config>(source, path)?;
    errors.extend(settings_problems(&config, source, path));
    let sources = [RuleSource {
        path: path.to_owned(),
        text: source.to_owned(),
        rules: std::mem::take(&mut config.rules),
        positions,
        host_groups: std::mem::take(&mut config.host_groups),
    }];
    check_rules(&sources, &config.protection.default_host_group, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let [source] = sources;
    config.rules = source.rules;
    config.host_groups = source.host_groups;
    Ok(config)
}

/// The text of `path`.
fn read(path: &Path) -> Result<String, ConfigError> {
    read_text(path, MAX_CONFIG_BYTES).map_err(|e| ConfigError::whole_file(path, e.to_string()))
}

/// Every `*.toml` of the config's `rules_dir` (relative to the config file), in name
/// order, with its text; for the embedded default, the embedded default rules. A folder
/// the config names (`main`: its file and text) must be readable; left at its default, a
/// missing one has no files. An unreadable file is a problem.
fn rule_files(
    config: &Config,
    path: Option<&Path>,
    main: (&Path, &str),
    errors: &mut Vec<ConfigError>,
) -> Vec<(PathBuf, String)> {
    let Some(p) = path else {
        let text = DEFAULT_RULES_TOML.to_owned();
        return vec![(PathBuf::from(BUILT_IN_RULES_PATH), text)];
    };
    let dir = p
        .parent()
        .unwrap_or(Path::new("."))
        .join(&config.rules_dir.0);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !sets_rules_dir(main.1) => {
            return Vec::new();
        }
        Err(e) => {
            let message = format!("rules folder {}: cannot read: {e}", dir.display());
            errors.push(ConfigError::at_key(main.0, main.1, "rules_dir", message));
            return Vec::new();
        }
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| match read(&name) {
            Ok(text) => Some((name, text)),
            Err(e) => {
                errors.push(e);
                None
            }
        })
        .collect()
}

/// Whether the config text sets `rules_dir` itself (rather than leaving the default).
fn sets_rules_dir(source: &str) -> bool {
    toml::from_str::<toml::Table>(source).is_ok_and(|t| t.contains_key("rules_dir"))
}

/// Parses `source` into `T` (a [`Config`] or [`RulesFile`]): its `rules` through
/// `rules::read`, everything else through serde. A rule table that cannot be read is left
/// out, and its problems come back with the place of each rule that was read, so those
/// are still checked.
///
/// # Errors
/// A syntax error, or a problem outside the rules (with the rules' problems).
fn read_document<T: DeserializeOwned + HasRules>(
    source: &str,
    path: &Path,
) -> Result<(T, Vec<usize>, Vec<ConfigError>), ConfigErrors> {
    let doc = DeTable::parse(source)
        .map_err(|e| ConfigErrors(vec![ConfigError::from_toml(path, source, &e)]))?;
    let span = doc.span();
    let mut table = doc.into_inner();
    let rules_value = table.remove("rules");
    let mut errors = Vec::new();
    let value = T::deserialize(Deserializer::from(Spanned::new(span, table)))
        .map_err(|e| errors.push(ConfigError::from_toml(path, source, &e)))
        .ok();
    let read = rules::read::read_rules(rules_value);
    errors.extend(
        read.errors
            .into_iter()
            .map(|p| ConfigError::at_span(path, source, Some(p.span), Some(p.key), p.message)),
    );
    match value {
        Some(mut value) => {
            *value.rules_mut() = read.rules;
            Ok((value, read.positions, errors))
        }
        None => Err(ConfigErrors(errors)),
    }
}

/// A document with `[[rules]]`.
trait HasRules {
    fn rules_mut(&mut self) -> &mut Vec<RuleConfig>;
}

impl HasRules for Config {
    fn rules_mut(&mut self) -> &mut Vec<RuleConfig> {
        &mut self.rules
    }
}

impl HasRules for RulesFile {
    fn rules_mut(&mut self) -> &mut Vec<RuleConfig> {
        &mut self.rules
    }
}

/// The problems of `config`'s settings (everything but rules and host groups), located
/// in `source`.
fn settings_problems(config: &Config, source: &str, path: &Path) -> Vec<ConfigError> {
    config
        .validate_settings()
        .into_iter()
        .map(|(key, message)| ConfigError::at_key(path, source, &key, message))
        .collect()
}

/// Checks the rules and host groups of every file: each against every host group of the
/// config, and their names across all files. A problem is reported in the file, and at
/// the element of `[[rules]]` or `[[host_groups]]`, where it is written. `default_group`
/// is `protection.default_host_group`, which no group may be named.
fn check_rules(sources: &[RuleSource], default_group: &str, errors: &mut Vec<ConfigError>) {
    let groups: HashSet<&str> = sources
        .iter()
        .flat_map(|s| &s.host_groups)
        .map(|g| g.name.as_str())
        .collect();
    for s in sources {
        rules::validate_host_groups(&s.host_groups, default_group, &mut |key, i, msg| {
            errors.push(ConfigError::at_element(&s.path, &s.text, key, Some(i), msg));
        });
        rules::validate_rules(&s.rules, &groups, &mut |key, i, msg| {
            let i = s.positions.get(i).copied();
            errors.push(ConfigError::at_element(&s.path, &s.text, key, i, msg));
        });
    }
    let rules: Vec<(&RuleSource, usize, &str)> = sources
        .iter()
        .flat_map(|s| {
            (s.rules.iter().zip(&s.positions)).map(move |(r, &i)| (s, i, &*r.common.name))
        })
        .collect();
    let groups: Vec<(&RuleSource, usize, &str)> = sources
        .iter()
        .flat_map(|s| (s.host_groups.iter().enumerate()).map(move |(i, g)| (s, i, &*g.name)))
        .collect();
    for (key, what, all) in [
        ("rules", "rule", &rules),
        ("host_groups", "host group", &groups),
    ] {
        for d in rules::duplicates(all.iter().map(|&(_, _, name)| name)) {
            if let Some(&(s, i, name)) = all.get(d) {
                let message = format!("{what} name `{name}` is used twice");
                let key = format!("{key}.name");
                errors.push(ConfigError::at_element(
                    &s.path,
                    &s.text,
                    &key,
                    Some(i),
                    message,
                ));
            }
        }
    }
    let main = sources
        .first()
        .map_or(Path::new(BUILT_IN_PATH), |s| &s.path);
    if rules.len() > MAX_RULES {
        let message = format!("rules: at most {MAX_RULES} rules");
        errors.push(ConfigError::whole_file(main, message));
    }
    if groups.len() > MAX_HOST_GROUPS {
        let message = format!("host_groups: at most {MAX_HOST_GROUPS} host groups");
        errors.push(ConfigError::whole_file(main, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config` written as `netwarden.toml` in a new folder.
    fn config_in(config: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netwarden.toml");
        std::fs::write(&path, config).unwrap();
        (dir, path)
    }

    #[test]
    fn a_rules_folder_the_config_names_must_exist() {
        let (_dir, path) = config_in("# rules\nrules_dir = \"rules.d\"\n[log]\nlevel = \"info\"\n");
        let errs = load(Some(&path)).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        let shown = errs[0].to_string();
        assert!(
            shown.starts_with(&format!(
                "{}:2:1: key `rules_dir`: rules folder ",
                path.display()
            )),
            "{shown}"
        );
        assert!(shown.contains("No such file or directory"), "{shown}");
        // Left at its default, a missing folder only means no rule files.
        let (_dir, path) = config_in("[log]\nlevel = \"info\"\n");
        assert!(load(Some(&path)).unwrap().config.rules.is_empty());
    }

    #[test]
    fn a_fifo_or_device_among_the_rule_files_is_refused_without_waiting() {
        let (dir, path) = config_in("rules_dir = \"rules.d\"\n");
        let rules = dir.path().join("rules.d");
        std::fs::create_dir(&rules).unwrap();
        nix::unistd::mkfifo(&rules.join("a.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::os::unix::fs::symlink("/dev/zero", rules.join("b.toml")).unwrap();
        let errs: Vec<String> = load(Some(&path))
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                format!(
                    "{}: not a regular file (a FIFO)",
                    rules.join("a.toml").display()
                ),
                format!(
                    "{}: not a regular file (a device)",
                    rules.join("b.toml").display()
                ),
            ]
        );
    }

    #[test]
    fn an_oversized_config_file_is_refused() {
        let (_dir, path) = config_in("");
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let errs = load(Some(&path)).unwrap_err().0;
        assert_eq!(
            errs[0].to_string(),
            format!("{}: larger than {MAX_CONFIG_BYTES} bytes", path.display())
        );
    }
}
