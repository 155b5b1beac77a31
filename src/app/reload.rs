//! Hot reload of the running daemon: SIGHUP, or a change to a watched file, reloads the
//! config, the rule files and the blocklists without a restart.
//!
//! Owns [`Reloader`] (load, validate, build the rule set, hand it to the workers, count
//! the outcome) and [`run`] (the task that waits for SIGHUP and for `notify` events on the
//! config file, the rules folder and every blocklist file, debounces them and reloads).
//!
//! What a reload changes: the rules, host groups and blocklists (each worker's detector
//! swaps them at its next packet-clock tick and keeps the state of unchanged rules and
//! their firing alerts, see `Detector::reload`), and the config handed to the self-alert
//! monitor. Sections that shape the running process (capture, flows, networks, metrics,
//! alerting, daemon, log) need a restart: a change there is logged as such and ignored.
//! The files are read on a blocking thread with a deadline ([`READ_DEADLINE`]), so a
//! slow or stuck read never holds the control thread that answers SIGTERM.
//! Host groups and `[protection]` apply to alerts at once, but the per-network series
//! keep the segments and labels they were registered with until the next restart.
//! A config that fails to load or validate is refused as a whole: every problem is logged
//! with its file, line and key, the running config stays, and
//! `netwarden_config_last_reload_successful` drops to 0 until a reload succeeds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};

use super::load_run_config;
use super::systemd::Notifier;
use crate::cli::RunArgs;
use crate::config::{Config, ConfigError, ConfigErrors, RuleKind};
use crate::detect::RuleSet;
use crate::telemetry::ReloadMetrics;

/// Longest a reload may take to read the config, rule files and blocklists.
const READ_DEADLINE: Duration = Duration::from_secs(30);

/// Quiet time after a file event before reloading, so an editor's write-rename-chmod
/// sequence (or `cp` of several rule files) becomes one reload.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Everything a reload needs and updates.
pub(super) struct Reloader {
    args: RunArgs,
    running: Config,
    rules: Arc<RuleSet>,
    workers: Vec<Sender<Arc<RuleSet>>>,
    config_updates: watch::Sender<Arc<Config>>,
    metrics: ReloadMetrics,
    notifier: Notifier,
}

impl Reloader {
    /// A reloader for a daemon started with `args`, now running `config` and `rules`;
    /// new rule sets go to every worker through `workers`.
    pub(super) fn new(
        args: RunArgs,
        config: Config,
        rules: Arc<RuleSet>,
        workers: Vec<Sender<Arc<RuleSet>>>,
        config_updates: watch::Sender<Arc<Config>>,
        metrics: ReloadMetrics,
    ) -> Reloader {
        Reloader {
            args,
            running: config,
            rules,
            workers,
            config_updates,
            metrics,
            notifier: Notifier::from_env(),
        }
    }

    /// Puts `loaded` (the config read again, see [`load`]) into effect if it is valid.
    /// Returns whether the reload was accepted.
    pub(super) fn reload(&mut self, why: &str, loaded: Loaded) -> bool {
        let accepted = match loaded {
            Ok((config, rules)) => {
                self.warn_restart_only_changes(&config);
                for worker in &self.workers {
                    // A worker that has stopped no longer needs rules.
                    drop(worker.send(Arc::clone(&rules)));
                }
                self.config_updates.send_replace(Arc::new(config.clone()));
                tracing::info!(why, rules = rules.rules().len(), "Configuration reloaded.");
                self.running = config;
                self.rules = rules;
                self.metrics.succeeded.inc();
                self.metrics.mark_loaded();
                self.metrics.count_rules(alerting_kinds(&self.rules));
                true
            }
            Err(problems) => {
                tracing::error!(
                    why,
                    "Configuration reload refused; the running configuration stays in effect:\n{problems}"
                );
                self.metrics.failed.inc();
                self.metrics.last_successful.set(0);
                false
            }
        };
        self.notifier.ready(&format!(
            "Running with {} rules (last reload {}).",
            self.rules.rules().len(),
            if accepted { "applied" } else { "refused" }
        ));
        accepted
    }

    /// Reads the config and its files again on a thread of its own, so the control
    /// thread keeps answering signals; a read that takes longer than [`READ_DEADLINE`] is
    /// a refused reload (its thread is left to finish on its own).
    async fn load_off_thread(&self) -> Loaded {
        let args = self.args.clone();
        let read = tokio::task::spawn_blocking(move || load(&args));
        let problem = match tokio::time::timeout(READ_DEADLINE, read).await {
            Ok(Ok(loaded)) => return loaded,
            Ok(Err(e)) => format!("reading the configuration failed: {e}"),
            Err(_) => format!(
                "reading the configuration and its files took longer than {}s",
                READ_DEADLINE.as_secs()
            ),
        };
        Err(ConfigErrors(vec![ConfigError::whole_file(
            &config_shown(&self.args),
            problem,
        )]))
    }

    /// Logs every section that changed but only takes effect after a restart.
    fn warn_restart_only_changes(&self, new: &Config) {
        let old = &self.running;
        let sections = [
            ("capture", old.capture != new.capture),
            ("flows", old.flows != new.flows),
            ("networks", old.networks != new.networks),
            ("metrics", old.metrics != new.metrics),
            ("alerting", old.alerting != new.alerting),
            ("daemon", old.daemon != new.daemon),
            ("log", old.log != new.log),
        ];
        for (section, changed) in sections {
            if changed {
                tracing::warn!(
                    section,
                    "This section changed; it takes effect at the next restart."
                );
            }
        }
        if old.host_groups != new.host_groups || old.protection != new.protection {
            tracing::warn!(
                "Host groups or protection changed: alerts follow now, the per-network series' host_group, protection_level and data_grade labels at the next restart."
            );
        }
    }

    /// The files whose change triggers a reload: the config file, the rules folder and
    /// every blocklist file. Empty when running on the embedded default.
    fn watched(&self) -> Watched {
        let Some(config_path) = self.args.config.config.as_deref() else {
            return Watched::default();
        };
        let mut files: HashSet<PathBuf> = self
            .rules
            .watched_files()
            .iter()
            .map(|p| normalize(p))
            .collect();
        files.insert(normalize(config_path));
        let rules_dir = config_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.running.rules_dir.0);
        Watched {
            files,
            rules_dir: std::fs::canonicalize(rules_dir).ok(),
        }
    }
}

/// A reload's config and rule set, or why it is refused.
pub(super) type Loaded = Result<(Config, Arc<RuleSet>), ConfigErrors>;

/// The config as the daemon would load it at start-up, and its rule set; refused when no
/// rule could alert any more and the config does not allow that.
fn load(args: &RunArgs) -> Loaded {
    let config = load_run_config(args)?;
    let rules = RuleSet::build(&config)?;
    if alerting_kinds(&rules).is_empty() && !config.allow_no_rules {
        return Err(ConfigErrors(vec![ConfigError::whole_file(
            &config_shown(args),
            "no rule that can alert would be left (none, or only shadow rules), which \
             switches detection off; set allow_no_rules = true to allow it"
                .to_owned(),
        )]));
    }
    Ok((config, Arc::new(rules)))
}

/// The config file as errors name it.
fn config_shown(args: &RunArgs) -> PathBuf {
    args.config.config.as_deref().map_or_else(
        || PathBuf::from(crate::config::BUILT_IN_PATH),
        Path::to_owned,
    )
}

/// The kinds of the rules of `rules` that can alert: shadow rules only count.
pub(super) fn alerting_kinds(rules: &RuleSet) -> Vec<RuleKind> {
    rules
        .rules()
        .iter()
        .filter(|r| !r.shadow)
        .map(|r| r.kind)
        .collect()
}

/// Which paths matter, as absolute paths whose directory part is canonical (a file may
/// not exist yet: editors replace files by renaming).
#[derive(Debug, Default, PartialEq, Eq)]
struct Watched {
    files: HashSet<PathBuf>,
    rules_dir: Option<PathBuf>,
}

impl Watched {
    /// Whether a change at `path` concerns the config.
    fn concerns(&self, path: &Path) -> bool {
        let path = normalize(path);
        self.files.contains(&path)
            || self.rules_dir.as_deref().is_some_and(|dir| {
                path.parent() == Some(dir) && path.extension().is_some_and(|x| x == "toml")
            })
    }

    /// The directories to watch (non-recursively).
    fn dirs(&self) -> HashSet<PathBuf> {
        self.files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_owned))
            .chain(self.rules_dir.clone())
            .filter(|d| d.is_dir())
            .collect()
    }
}

/// `path` with its directory canonicalized (symlinks and `..` resolved); the file name
/// is kept as written.
fn normalize(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// The `notify` side: a watcher on the directories of the watched files, passing on
/// events about those files only.
struct FileWatch {
    backend: Option<RecommendedWatcher>,
    watched: Arc<Mutex<Watched>>,
    dirs: HashSet<PathBuf>,
}

impl FileWatch {
    fn start(events: mpsc::Sender<()>) -> FileWatch {
        let watched = Arc::new(Mutex::new(Watched::default()));
        let filter = Arc::clone(&watched);
        let created = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let watched = filter.lock().unwrap_or_else(PoisonError::into_inner);
            if event.paths.iter().any(|p| watched.concerns(p)) {
                // Full means a reload is already due; it will read this change too.
                let _ = events.try_send(());
            }
        });
        let backend = match created {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot watch config files; reload with SIGHUP.");
                None
            }
        };
        FileWatch {
            backend,
            watched,
            dirs: HashSet::new(),
        }
    }

    /// Watches exactly the directories `wanted` needs.
    fn update(&mut self, wanted: Watched) {
        let Some(watcher) = self.backend.as_mut() else {
            return;
        };
        let dirs = wanted.dirs();
        for gone in self.dirs.difference(&dirs) {
            drop(watcher.unwatch(gone));
        }
        for new in dirs.difference(&self.dirs) {
            if let Err(e) = watcher.watch(new, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %new.display(), error = %e, "Cannot watch for config changes.");
            }
        }
        self.dirs = dirs;
        *self.watched.lock().unwrap_or_else(PoisonError::into_inner) = wanted;
    }
}

/// Reloads on SIGHUP and on changes to the watched files, until the runtime stops.
pub(super) async fn run(mut reloader: Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let (events_tx, mut events) = mpsc::channel::<()>(1);
    let mut files = FileWatch::start(events_tx);
    files.update(reloader.watched());
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot handle SIGHUP; reload by editing the config.");
            None
        }
    };
    loop {
        let why = tokio::select! {
            Some(()) = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => "SIGHUP",
            Some(()) = events.recv() => {
                tokio::time::sleep(DEBOUNCE).await;
                while events.try_recv().is_ok() {}
                "file changed"
            }
            else => return,
        };
        reloader.notifier.reloading();
        let loaded = reloader.load_off_thread().await;
        reloader.reload(why, loaded);
        files.update(reloader.watched());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn watched(dir: &Path) -> Watched {
        let dir = std::fs::canonicalize(dir).unwrap();
        std::fs::create_dir_all(dir.join("rules.d")).unwrap();
        Watched {
            files: [dir.join("netwarden.toml"), dir.join("bad.txt")]
                .into_iter()
                .collect(),
            rules_dir: Some(dir.join("rules.d")),
        }
    }

    #[test]
    fn watch_concerns_config_blocklists_and_rule_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let w = watched(dir.path());
        let d = dir.path();
        assert!(w.concerns(&d.join("netwarden.toml")));
        assert!(w.concerns(&d.join("bad.txt")));
        assert!(w.concerns(&d.join("rules.d/new.toml")));
        assert!(w.concerns(&d.join("rules.d/../netwarden.toml")));
        assert!(!w.concerns(&d.join("rules.d/notes.md")));
        assert!(!w.concerns(&d.join("netwarden.toml.swp")));
        assert!(!w.concerns(&d.join("other.toml")));
    }

    #[test]
    fn watch_covers_each_directory_once() {
        let dir = tempfile::tempdir().unwrap();
        let w = watched(dir.path());
        let canonical = std::fs::canonicalize(dir.path()).unwrap();
        let dirs = w.dirs();
        assert_eq!(dirs.len(), 2, "{dirs:?}");
        assert!(dirs.contains(&canonical));
        assert!(dirs.contains(&canonical.join("rules.d")));
    }
}
