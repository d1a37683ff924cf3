//! The CLI beside a running `parley serve`: DuckDB lets one process open a data dir, so
//! while a server holds it, the admin commands and `ingest` go through its HTTP API.
//! The server leaves its address and a local admin token in `DIR/serve.json` (readable
//! by its owner alone) while it runs.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use parley_store::Workspace;

/// The file `parley serve` writes into its data dir.
pub const SERVE_FILE: &str = "serve.json";

/// What `parley serve` tells the CLI.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ServeFile {
    pub url: String,
    pub pid: u32,
    pub token: String,
}

impl ServeFile {
    /// Writes the file (mode 0600) and returns a guard that removes it when dropped.
    pub fn write(data: &Path, file: &ServeFile) -> Result<ServeFileGuard> {
        let path = data.join(SERVE_FILE);
        write_private(&path, &serde_json::to_string(file)?)?;
        Ok(ServeFileGuard(path))
    }
}

/// Writes `text` to `path`, readable by its owner only (it holds a token).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(())
}

/// Removes `serve.json` when the server stops.
pub struct ServeFileGuard(PathBuf);

impl Drop for ServeFileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running server of the data dir, reached over HTTP.
pub struct Remote {
    url: String,
    token: String,
    agent: ureq::Agent,
}

impl Remote {
    /// The server that `DIR/serve.json` names, if there is the file.
    pub fn find(data: &Path) -> Option<Remote> {
        let text = std::fs::read_to_string(data.join(SERVE_FILE)).ok()?;
        let file: ServeFile = serde_json::from_str(&text).ok()?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Some(Remote {
            url: file.url,
            token: file.token,
            agent,
        })
    }

    /// Sends a request; returns the body of a 2xx answer, or the server's reason.
    fn call(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Result<String> {
        let url = format!("{}/api/v1{path}", self.url);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .body(body)?;
        let mut response = self.agent.run(request).map_err(|e| {
            anyhow!(
                "the data dir is held by `parley serve` at {}, which does not answer ({e}): stop it, or remove a stale {SERVE_FILE}",
                self.url
            )
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()?;
        if status.is_success() {
            return Ok(text);
        }
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        Err(anyhow!("{message}"))
    }

    fn json(&self, method: &str, path: &str, body: serde_json::Value) -> Result<String> {
        self.call(
            method,
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
    }

    pub fn create_workspace(&self, ws: &Workspace) -> Result<Workspace> {
        let body = serde_json::to_value(ws)?;
        Ok(serde_json::from_str(&self.json(
            "POST",
            "/workspaces",
            body,
        )?)?)
    }

    pub fn workspaces(&self) -> Result<Vec<Workspace>> {
        Ok(serde_json::from_str(&self.call(
            "GET",
            "/workspaces",
            "application/json",
            Vec::new(),
        )?)?)
    }

    pub fn create_token(&self, workspace: &str, scope: &str) -> Result<String> {
        let answer = self.json(
            "POST",
            &format!("/workspaces/{workspace}/tokens"),
            serde_json::json!({"scope": scope}),
        )?;
        let v: serde_json::Value = serde_json::from_str(&answer)?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("the server answered no token"))
    }

    pub fn revoke_token(&self, token: &str) -> Result<String> {
        let answer = self.json(
            "POST",
            "/tokens/revoke",
            serde_json::json!({"token": token}),
        )?;
        let v: serde_json::Value = serde_json::from_str(&answer)?;
        Ok(v["workspace"].as_str().unwrap_or_default().to_string())
    }

    /// Posts one batch; returns (accepted, duplicates).
    pub fn ingest(&self, workspace: &str, batch: Vec<u8>) -> Result<(u64, u64)> {
        let answer = self.call(
            "POST",
            &format!("/workspaces/{workspace}/events"),
            "application/x-ndjson",
            batch,
        )?;
        let v: serde_json::Value = serde_json::from_str(&answer)?;
        match (v["accepted"].as_u64(), v["duplicates"].as_u64()) {
            (Some(a), Some(d)) => Ok((a, d)),
            _ => Err(anyhow!("the server answered no summary: {answer}")),
        }
    }
}
