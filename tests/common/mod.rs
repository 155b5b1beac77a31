//! Helpers shared by the integration tests: where the public captures are, running the
//! real binary, and parsing the capture manifest.

// Test helpers: a failed unwrap or panic here is a failed test, with its message.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod netns;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The public captures: `$NETWARDEN_PCAPS`, else `../shared/pcaps` beside the checkout.
pub fn pcaps_dir() -> PathBuf {
    let dir = std::env::var_os("NETWARDEN_PCAPS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps"),
        PathBuf::from,
    );
    assert!(
        dir.join("MANIFEST.md").exists(),
        "public captures not found at {} (set NETWARDEN_PCAPS)",
        dir.display()
    );
    dir
}

/// The netwarden binary under test, with a state directory of its own.
pub fn netwarden() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netwarden"));
    // A daemon restores the firing alerts saved in its state directory (default
    // /var/lib/netwarden) and does not announce them again; a fresh directory per run keeps
    // tests from adopting one another's alerts. A restart test sets STATE_DIRECTORY itself.
    command.env("STATE_DIRECTORY", fresh_state_dir());
    command
}

/// A new, empty directory under Cargo's scratch space for integration tests.
pub fn fresh_state_dir() -> PathBuf {
    tempfile::Builder::new()
        .prefix("state-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep()
}

/// Runs `netwarden replay --json` on `files` with extra `args`; returns the parsed summary
/// and the raw output. Panics with the stderr on a non-zero exit.
pub fn replay_json(files: &[&Path], args: &[&str]) -> serde_json::Value {
    let out = netwarden()
        .arg("replay")
        .arg("--json")
        .args(files)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay of {files:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_stdout_json(&out)
}

/// Parses the single JSON object on stdout.
pub fn parse_stdout_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"))
}

/// Packet counts per capture (path relative to the pcaps dir) from MANIFEST.md's tables:
/// rows whose first cell is a backquoted path and whose 5th cell is the packet count.
pub fn manifest_packet_counts() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(pcaps_dir().join("MANIFEST.md")).unwrap();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `file` | source | format | link type | packets | ...
        if cells.len() > 6 && cells[1].starts_with('`') {
            let file = cells[1].trim_matches('`');
            if let Ok(n) = cells[5].replace(',', "").parse::<u64>() {
                counts.insert(file.to_owned(), n);
            }
        }
    }
    counts
}

/// Every capture file in `sub` (recursively), sorted.
pub fn captures_in(sub: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![pcaps_dir().join(sub)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A temporary file holding `text`.
pub fn temp_file(text: &str, suffix: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET http://127.0.0.1:port{path}`: (status, body), or `None` if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    // Chunked bodies carry size lines; metric lines never look like bare hex numbers.
    let body = body
        .lines()
        .filter(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_hexdigit()))
        .collect::<Vec<_>>()
        .join("\n");
    Some((status, body))
}

/// Sum of every sample of integer-valued `metric` (a counter or count gauge) whose labels
/// contain all of `labels` (`key="value"`).
pub fn metric_sum(text: &str, metric: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `f` every 100 ms until it returns `Some` or `secs` pass.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Sends `signal` (e.g. "TERM") to `child` and waits for it, returning its exit status.
pub fn stop(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("netwarden did not stop within 10 s of SIG{signal}");
}

// ---- Real Prometheus and Alertmanager servers, generated attacks, the daemon. ----

/// A child process killed and reaped on drop, so a failed assertion leaves nothing behind.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

/// Percent-encodes `s` for a URL query value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` on 127.0.0.1:`port` over HTTP/1.0 (so the body is never chunked): the
/// parsed JSON body, or `None` if nothing answers or the body is not JSON.
pub fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// Debian's Alertmanager binary (package `prometheus-alertmanager`).
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A real Alertmanager on `127.0.0.1:port` that routes everything to a null receiver,
/// killed on drop.
pub struct Alertmanager {
    _child: Proc,
    /// The API port.
    pub port: u16,
    _dir: tempfile::TempDir,
    /// How to reach it when its web configuration requires TLS and basic auth.
    tls: Option<TlsClient>,
}

/// What a client needs to talk to a server that requires TLS and basic auth.
#[derive(Clone, Debug)]
pub struct TlsClient {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// Basic auth user name and password.
    pub user: String,
    /// The password.
    pub password: String,
    /// A client certificate and its key, for servers that require one.
    pub cert: Option<(PathBuf, PathBuf)>,
}

impl TlsClient {
    /// `GET https://127.0.0.1:port{path}` with curl: (status, body); `None` if the request
    /// fails (connection, TLS).
    pub fn get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        let user = format!("{}:{}", self.user, self.password);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--cacert".as_ref(),
            self.ca.as_os_str(),
            "--user".as_ref(),
            user.as_ref(),
        ];
        if let Some((cert, key)) = &self.cert {
            args.extend(["--cert".as_ref(), cert.as_os_str()]);
            args.extend(["--key".as_ref(), key.as_os_str()]);
        }
        curl_get(&format!("https://127.0.0.1:{port}{path}"), &args)
    }
}

/// `curl` on `url` with `args` (plus a 10 s limit): (status, body), `None` if curl fails.
pub fn curl_get(url: &str, args: &[&std::ffi::OsStr]) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--write-out", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl ({e}); scripts/test.sh installs it"));
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n')?;
    Some((status.trim().parse().ok()?, body.to_owned()))
}

impl Alertmanager {
    /// A lone instance (no gossip port to collide with parallel runs); waits until ready.
    pub fn start(port: u16) -> Alertmanager {
        Alertmanager::spawn(port, &["--cluster.listen-address=".to_owned()], None)
    }

    /// A lone instance serving its API only over TLS with basic auth, as `web_config`
    /// (an exporter-toolkit web configuration file) says; `client` is how to reach it.
    pub fn start_tls(port: u16, web_config: &Path, client: TlsClient) -> Alertmanager {
        Alertmanager::spawn(
            port,
            &[
                "--cluster.listen-address=".to_owned(),
                format!("--web.config.file={}", web_config.display()),
            ],
            Some(client),
        )
    }

    /// A cluster member gossiping on `127.0.0.1:cluster_port` with `peers` (their cluster
    /// ports); waits until ready.
    pub fn start_in_cluster(port: u16, cluster_port: u16, peers: &[u16]) -> Alertmanager {
        let mut args = vec![
            format!("--cluster.listen-address=127.0.0.1:{cluster_port}"),
            format!("--cluster.advertise-address=127.0.0.1:{cluster_port}"),
            "--cluster.gossip-interval=50ms".to_owned(),
            "--cluster.pushpull-interval=1s".to_owned(),
        ];
        args.extend(
            peers
                .iter()
                .map(|p| format!("--cluster.peer=127.0.0.1:{p}")),
        );
        Alertmanager::spawn(port, &args, None)
    }

    fn spawn(port: u16, extra: &[String], tls: Option<TlsClient>) -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} missing: apt-get install prometheus-alertmanager (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let am = Alertmanager {
            _child: Proc(child),
            port,
            _dir: dir,
            tls,
        };
        let ready = wait_for(20, || {
            am.get("/-/ready").filter(|(status, _)| *status == 200)
        });
        assert!(
            ready.is_some(),
            "Alertmanager on port {port} did not become ready"
        );
        am
    }

    /// `GET path`, over TLS with basic auth when it requires them.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        match &self.tls {
            Some(client) => client.get(self.port, path),
            None => http_get(self.port, path),
        }
    }

    /// The base URL to configure in `alerting.alertmanager_urls`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The alerts Alertmanager holds (active, unresolved).
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        // No answer is a failed test.
        let v = match &self.tls {
            Some(client) => {
                serde_json::from_str(&client.get(self.port, "/api/v2/alerts").unwrap().1).unwrap()
            }
            None => get_json(self.port, "/api/v2/alerts").unwrap(),
        };
        serde_json::from_value(v).unwrap()
    }

    /// Waits until an alert named `alertname` is held, and returns it.
    pub fn wait_alert(&self, alertname: &str, secs: u64) -> Option<serde_json::Value> {
        wait_for(secs, || {
            self.alerts()
                .into_iter()
                .find(|a| a["labels"]["alertname"] == alertname)
        })
    }
}

/// A real Prometheus (`prometheus`, Debian package `prometheus`) on loopback scraping
/// `targets` every second, killed on drop.
pub struct Prometheus {
    _child: Proc,
    /// The web/API port.
    pub port: u16,
}

impl Prometheus {
    /// Starts Prometheus with its config and data in `storage`; waits until ready.
    pub fn start(storage: &Path, targets: &[String]) -> Prometheus {
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        Prometheus::start_with(
            storage,
            &format!(
                "  - job_name: netwarden\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
    }

    /// Starts Prometheus scraping every second with `scrape_configs` (YAML list items,
    /// indented by two spaces); waits until ready.
    pub fn start_with(storage: &Path, scrape_configs: &str) -> Prometheus {
        let config = storage.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n{scrape_configs}"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                storage.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start prometheus ({e}); scripts/test.sh installs it")
            });
        let prometheus = Prometheus {
            _child: Proc(child),
            port,
        };
        let ready = wait_for(30, || {
            http_get(port, "/-/ready").filter(|(status, _)| *status == 200)
        });
        assert!(
            ready.is_some(),
            "Prometheus on port {port} did not become ready"
        );
        prometheus
    }

    /// Waits until Prometheus has tried to scrape every target once (up or not): its
    /// target discovery starts scraping only seconds after it is ready, which would miss
    /// the beginning of a short run.
    pub fn wait_scraping(&self, secs: u64) {
        let scraping = wait_for(secs, || {
            let v = get_json(self.port, "/api/v1/targets")?;
            let targets = v["data"]["activeTargets"].as_array()?;
            let tried = |t: &serde_json::Value| {
                t["lastScrape"]
                    .as_str()
                    .is_some_and(|s| !s.starts_with("0001-"))
            };
            (!targets.is_empty() && targets.iter().all(tried)).then_some(())
        });
        assert!(scraping.is_some(), "Prometheus never started scraping");
    }

    /// The result vector of an instant query, `None` unless the query succeeded.
    pub fn query(&self, promql: &str) -> Option<Vec<serde_json::Value>> {
        let v = get_json(
            self.port,
            &format!("/api/v1/query?query={}", url_encode(promql)),
        )?;
        if v["status"] != "success" {
            return None;
        }
        v["data"]["result"].as_array().cloned()
    }

    /// Waits until `promql` returns at least one sample; returns the samples.
    pub fn wait_for_data(&self, promql: &str, secs: u64) -> Option<Vec<serde_json::Value>> {
        wait_for(secs, || self.query(promql).filter(|r| !r.is_empty()))
    }
}

/// Writes `scenario` to `out` with `netwarden-pcapgen`'s options `args`, in-process through
/// the generator's library; returns the ground truth the binary would print.
pub fn pcapgen(scenario: &str, out: &Path, args: &[&str]) -> serde_json::Value {
    let command_line = [
        "netwarden-pcapgen".as_ref(),
        scenario.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]
    .into_iter()
    .chain(args.iter().map(std::ffi::OsStr::new));
    netwarden_synth::pcapgen::generate(command_line)
        .unwrap_or_else(|e| panic!("netwarden-pcapgen {scenario} {args:?} failed: {e}"))
        .truth
}

/// RFC 3339 of now minus `secs` (a `--start` for pcapgen that keeps packet time just behind
/// the wall clock, as on a live link).
pub fn rfc3339_ago(secs: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A rules file with one `syn_flood` rule (critical, 1,000 SYN/s, 1 s window, no warm-up or
/// `for`) that resolves `resolve_delay` after the flood stops.
pub fn syn_flood_rules(resolve_delay: &str) -> String {
    format!(
        "[[rules]]\nname = \"syn_flood\"\nkind = \"syn_flood\"\nscope = \"protected\"\n\
         severity = \"critical\"\nthreshold = 1000\nwindow = \"1s\"\n\
         resolve_delay = \"{resolve_delay}\"\n"
    )
}

/// The JSON-lines alert log at `path` (empty if it does not exist yet).
pub fn alert_log(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes `dir/netwarden.toml` using the shipped rules (`config/rules.d`) followed by
/// `extra` (more TOML), and the empty `dir/blocklist.txt` the shipped blocklist rule reads
/// beside the config. Returns the config's path.
pub fn shipped_rules_config(dir: &Path, extra: &str) -> PathBuf {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rules.d");
    let config = dir.join("netwarden.toml");
    std::fs::write(&config, format!("rules_dir = {rules:?}\n{extra}")).unwrap();
    std::fs::write(dir.join("blocklist.txt"), "# nothing listed\n").unwrap();
    config
}

/// One HTTP/1.0 request to 127.0.0.1:`port` (so the answer is never chunked) with a JSON
/// `body`: (status, body), or `None` if nothing answers.
pub fn http_request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}

/// Writes `out`: a 3-second SYN flood (6,000 SYNs at 2,000/s from 300 sources) on one
/// victim, 10.201.0.10, starting `ago` seconds before now; `seed` varies the sources.
pub fn short_syn_flood(out: &Path, ago: u64, seed: &str) {
    let truth = pcapgen(
        "syn-flood",
        out,
        &[
            "--packets",
            "6000",
            "--pps",
            "2000",
            "--victims",
            "1",
            "--sources",
            "300",
            "--seed",
            seed,
            "--start",
            &rfc3339_ago(ago),
        ],
    );
    assert_eq!(truth["victims"][0], "10.201.0.10", "{truth}");
}

/// Certificates made at run time for TLS tests (keys are never committed): a CA, a server
/// certificate for `localhost` and `127.0.0.1`, and a client certificate, as PEM files in
/// a folder of their own.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    /// Generates the CA and both certificates.
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "netwarden test CA");
        write("ca.pem", &ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);
        for (name, sans, usage) in [
            (
                "server",
                vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            (
                "client",
                vec!["netwarden.test".to_owned()],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.extended_key_usages = vec![usage];
            write(
                &format!("{name}.pem"),
                &params.signed_by(&key, &issuer).unwrap().pem(),
            );
            write(&format!("{name}-key.pem"), &key.serialize_pem());
        }
        TestPki { dir }
    }

    /// A file of the PKI: `ca.pem`, `server.pem`, `server-key.pem`, `client.pem`,
    /// `client-key.pem`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An exporter-toolkit web configuration requiring TLS with the server certificate
    /// and basic auth as `user`/`password`, written to `file`. `tls_extra`: more lines of
    /// `tls_server_config` (indented by two spaces); `extra`: more top-level YAML.
    pub fn web_config(
        &self,
        file: &Path,
        (user, password): (&str, &str),
        tls_extra: &str,
        extra: &str,
    ) -> PathBuf {
        // Cost 5: the format and the check are the same as at 10, the test faster.
        let hash = bcrypt::hash(password, 5).unwrap();
        std::fs::write(
            file,
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{tls_extra}\
                 basic_auth_users:\n  {user}: '{hash}'\n{extra}",
                self.path("server.pem").display(),
                self.path("server-key.pem").display()
            ),
        )
        .unwrap();
        file.to_owned()
    }

    /// How to reach a server using [`Self::web_config`] as `user`/`password`.
    pub fn client(&self, user: &str, password: &str) -> TlsClient {
        TlsClient {
            ca: self.path("ca.pem"),
            user: user.to_owned(),
            password: password.to_owned(),
            cert: None,
        }
    }

    /// [`Self::client`], presenting the client certificate.
    pub fn client_with_cert(&self, user: &str, password: &str) -> TlsClient {
        TlsClient {
            cert: Some((self.path("client.pem"), self.path("client-key.pem"))),
            ..self.client(user, password)
        }
    }
}
