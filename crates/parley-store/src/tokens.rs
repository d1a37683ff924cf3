//! API tokens (SPEC §7): bearer tokens scoped to one workspace, `ingest` or `read`.
//!
//! A token reads `parley_{id}_{secret}`: `id` (12 hex digits) is public and finds the
//! token's row; `secret` (64 hex digits, 256 random bits) is never stored. The row keeps
//! the SHA-256 of the whole token, compared in constant time with the hash of the token
//! presented.

use duckdb::Connection;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::StoreError;

/// What a token may do in its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Post event batches.
    Ingest,
    /// Read reports, logs and exports.
    Read,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[Scope::Ingest, Scope::Read];

    pub fn wire(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }

    pub fn from_wire(s: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|x| x.wire() == s)
    }
}

/// Whom a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub workspace: String,
    pub scope: Scope,
}

const PREFIX: &str = "parley_";

/// The SHA-256 of `token`, as hex.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether two token hashes are equal, in time independent of where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Rows(format!("no randomness for a token: {e}")))?;
    Ok(hex(&bytes))
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// The public id of a well-formed token.
fn token_id(token: &str) -> Option<&str> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    let hexits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexits(id, 12) && hexits(secret, 64)).then_some(id)
}

/// Creates a token for `workspace` (which exists) and returns its text, the only time
/// it is ever seen.
pub(crate) fn create(
    conn: &Connection,
    workspace: &str,
    scope: Scope,
) -> Result<String, StoreError> {
    let token = format!("{PREFIX}{}_{}", random_hex(6)?, random_hex(32)?);
    let id = token_id(&token).expect("a token is well formed");
    conn.execute(
        "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
        duckdb::params![workspace, id, scope.wire(), hash(&token), now_us()],
    )?;
    Ok(token)
}

/// The live (not revoked) token's row: (workspace, scope), if `token` is one.
fn find(conn: &Connection, token: &str) -> Result<Option<(String, String)>, StoreError> {
    let Some(id) = token_id(token) else {
        return Ok(None);
    };
    let presented = hash(token);
    let mut stmt = conn
        .prepare("SELECT workspace, scope, hash FROM tokens WHERE id = ? AND revoked_us IS NULL")?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))?;
    let mut found = None;
    for row in rows {
        let (workspace, scope, stored) = row?;
        if same_hash(&stored, &presented) {
            found = Some((workspace, scope));
        }
    }
    Ok(found)
}

/// Whom `token` speaks for, if it is a live token.
pub(crate) fn authenticate(
    conn: &Connection,
    token: &str,
) -> Result<Option<Principal>, StoreError> {
    Ok(find(conn, token)?.and_then(|(workspace, scope)| {
        Scope::from_wire(&scope).map(|scope| Principal { workspace, scope })
    }))
}

/// Revokes `token`; returns its workspace. An unknown or already revoked token is an
/// error, so a mistyped token is never reported as revoked.
pub(crate) fn revoke(conn: &Connection, token: &str) -> Result<String, StoreError> {
    let (workspace, _) = find(conn, token)?.ok_or(StoreError::UnknownToken)?;
    let id = token_id(token).expect("found, so well formed");
    conn.execute(
        "UPDATE tokens SET revoked_us = ? WHERE id = ? AND hash = ? AND revoked_us IS NULL",
        duckdb::params![now_us(), id, hash(token)],
    )?;
    Ok(workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_well_formed_and_only_they() {
        let t = format!("{PREFIX}{}_{}", "a".repeat(12), "0".repeat(64));
        assert_eq!(token_id(&t), Some("aaaaaaaaaaaa"));
        for bad in [
            "",
            "parley_",
            &t[1..],
            &format!("{PREFIX}{}_{}", "a".repeat(11), "0".repeat(64)),
            &format!("{PREFIX}{}_{}", "a".repeat(12), "0".repeat(63)),
            &format!("{PREFIX}{}_{}", "g".repeat(12), "0".repeat(64)),
            &format!("{t}0"),
        ] {
            assert_eq!(token_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn hashes_compare_whole() {
        let a = hash("x");
        assert_eq!(a.len(), 64);
        assert!(same_hash(&a, &hash("x")));
        assert!(!same_hash(&a, &hash("y")));
        assert!(!same_hash(&a, &a[..63]));
    }
}
