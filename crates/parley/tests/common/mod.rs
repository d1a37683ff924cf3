//! What the integration tests share: the built binary, a temp data dir's CLI, and a
//! running `parley serve` on 127.0.0.1:0.
// Each test crate uses some of these helpers, not all of them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The admin token the servers of the tests are started with.
pub const ADMIN: &str = "admin-secret-for-tests";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_parley")
}

pub fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("runs")
}

pub fn cli_ok(data: &Path, args: &[&str]) -> String {
    let out = cli(data, args);
    assert!(
        out.status.success(),
        "parley {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A running `parley serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

pub type LogLines = std::io::Lines<BufReader<std::process::ChildStderr>>;

/// Starts `parley serve` on an ephemeral port: the process, its base URL and the rest of
/// its log.
pub fn spawn_server(data: &Path, extra: &[&str]) -> (Child, String, LogLines) {
    spawn_server_with(data, extra, &[])
}

/// `spawn_server` with more environment variables.
pub fn spawn_server_with(
    data: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String, LogLines) {
    let mut child = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("PARLEY_ADMIN_TOKEN", ADMIN)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server says where it listens")
            .unwrap();
        if let Some(rest) = line.split("serving http://").nth(1) {
            let addr = rest.split('/').next().unwrap();
            break format!("http://{addr}");
        }
    };
    (child, base, lines)
}

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let (child, base, lines) = spawn_server(data, extra);
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// A new token of `ws` with `scope`, made by the CLI.
pub fn token(data: &Path, ws: &str, scope: &str) -> String {
    cli_ok(
        data,
        &["token", "create", "--workspace", ws, "--scope", scope],
    )
    .trim()
    .to_string()
}

/// A data dir holding workspace `shop` (Europe/Madrid): five weeks of simulated
/// activity up to 2026-11-30, the same for every run (fixed seed); returns the dir, a
/// read token and an ingest token of `shop`.
pub fn simulated_shop() -> (tempfile::TempDir, String, String) {
    let d = tempfile::tempdir().unwrap();
    let events = d.path().join("events.ndjson");
    cli_ok(
        d.path(),
        &[
            "simulate",
            "--seed",
            "7",
            "--days",
            "35",
            "--end",
            "2026-11-30",
            "--contacts",
            "900",
            "--conversations",
            "1400",
            "--agents",
            "8",
            "--timezone",
            "Europe/Madrid",
            "--out",
            events.to_str().unwrap(),
        ],
    );
    cli_ok(
        d.path(),
        &["workspace", "create", "shop", "--timezone", "Europe/Madrid"],
    );
    cli_ok(
        d.path(),
        &["ingest", "--workspace", "shop", events.to_str().unwrap()],
    );
    let (read, ingest) = (
        token(d.path(), "shop", "read"),
        token(d.path(), "shop", "ingest"),
    );
    (d, read, ingest)
}

/// The instant the tests of `simulated_shop` take as now.
pub const SHOP_NOW: &str = "2026-11-30T18:00:00+01:00";
