//! parley's pure core: event types and validation, the derivation rules (events →
//! facts), time (ranges, buckets, zones), report definitions and output documents.
//!
//! Nothing here does I/O: the core "doesn't interact with the outside world and thus
//! can't fail".

pub mod derive;
pub mod directory;
pub mod doc;
pub mod enums;
pub mod event;
pub mod report;
pub mod request;
pub mod time;

/// Full Unicode case folding (no normalization), for the `contact` filter (SPEC §5).
pub fn fold_case(s: &str) -> String {
    caseless::default_case_fold_str(s)
}
