//! What a long-lived store knows is stored, kept in memory: per workspace, a Bloom filter
//! of the hashes in `event_ids`, `conv_keys` and `msg_keys`. A batch looks up in the
//! database only the hashes a filter says may be stored, instead of reading a row group
//! per hash: the ids and keys of new traffic are almost all new.
//!
//! Invariant: every hash stored in a table is in its filter (a filter may hold more: a
//! rolled-back batch's hashes, false positives), so "absent from the filter" means
//! "absent from the table". A filter is built from its table by a scan, not at a
//! process's first batch (a CLI run ingests one batch and would pay the scan for
//! nothing) but at its second; a batch whose hashes are too many to list drops the
//! filters it cannot update, and the next batch builds them again.

use std::collections::HashMap;

use duckdb::arrow::array::AsArray;
use duckdb::arrow::datatypes::UInt64Type;
use duckdb::Connection;

use crate::StoreError;

/// The tables whose hashes are filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    EventId,
    ConvKey,
    MsgKey,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::EventId => "event_ids",
            Kind::ConvKey => "conv_keys",
            Kind::MsgKey => "msg_keys",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The filters of every workspace a store has ingested into.
#[derive(Default)]
pub(crate) struct Seen {
    workspaces: HashMap<String, Known>,
}

/// One workspace's filters, and how many batches this process has ingested into it.
#[derive(Default)]
pub(crate) struct Known {
    batches: u64,
    filters: [Option<Bloom>; 3],
    /// Per kind of key (conversation, message): keys this process filed as new, whose
    /// every use it saw, with their first user (the least contact id, as the lookup of
    /// `conv_keys` or `msg_keys` answers): a close or receipt of such a key finds its
    /// owner here instead of in the table. A key used again is forgotten.
    owners: [HashMap<String, String>; 2],
    /// The owners the batch being filed adds, kept once it commits.
    new_owners: Vec<(bool, String, String)>,
}

/// Keys whose owners are kept, at most; past it, all are forgotten and kept anew.
const OWNERS_MAX: usize = 1 << 21;

impl Seen {
    /// The filters of `ws`.
    pub fn of(&mut self, ws: &str) -> &mut Known {
        self.workspaces.entry(ws.to_string()).or_default()
    }
}

impl Known {
    /// Of `hashes`, those that may be stored in `kind`'s table (all of them when this
    /// process has not ingested into the workspace before).
    pub fn may_be_stored(
        &mut self,
        conn: &Connection,
        ws: &str,
        kind: Kind,
        hashes: &[u64],
    ) -> Result<Vec<u64>, StoreError> {
        if self.batches == 0 {
            return Ok(hashes.to_vec());
        }
        let slot = &mut self.filters[kind.index()];
        if slot.is_none() {
            *slot = Some(Bloom::from_table(conn, ws, kind)?);
        }
        let filter = slot.as_ref().expect("built");
        Ok(hashes
            .iter()
            .copied()
            .filter(|h| filter.may_contain(*h))
            .collect())
    }

    /// Records hashes stored in `kind`'s table; `None` (too many to list) drops its
    /// filter, to be built again.
    pub fn stored(&mut self, kind: Kind, hashes: Option<&[u64]>) {
        let slot = &mut self.filters[kind.index()];
        match (slot.as_mut(), hashes) {
            (Some(filter), Some(hashes)) if filter.room() >= hashes.len() => {
                hashes.iter().for_each(|h| filter.insert(*h));
            }
            _ => *slot = None,
        }
    }

    /// Builds every filter now, and uses them from the next batch on (a long-lived
    /// process, the server, calls it at start instead of paying the scans in a batch).
    pub fn build_all(&mut self, conn: &Connection, ws: &str) -> Result<(), StoreError> {
        for kind in [Kind::EventId, Kind::ConvKey, Kind::MsgKey] {
            let slot = &mut self.filters[kind.index()];
            if slot.is_none() {
                *slot = Some(Bloom::from_table(conn, ws, kind)?);
            }
        }
        self.batches = self.batches.max(1);
        Ok(())
    }

    /// Whether this process filters the workspace's hashes (from its second batch, or
    /// once `build_all` ran): only then does it know which keys are new.
    pub fn warm(&self) -> bool {
        self.batches > 0
    }

    /// The first user of a conversation (`conv`) or message id, if known.
    pub fn owner(&self, conv: bool, key: &str) -> Option<&str> {
        self.owners[usize::from(conv)].get(key).map(String::as_str)
    }

    /// Forgets a key's owner (the key is used again).
    pub fn forget_owner(&mut self, conv: bool, key: &str) {
        self.owners[usize::from(conv)].remove(key);
    }

    /// Forgets every owner (a batch too large to tell its new keys).
    pub fn forget_owners(&mut self) {
        self.owners.iter_mut().for_each(HashMap::clear);
        self.new_owners.clear();
    }

    /// A new key of the batch being filed and its first user, kept if the batch commits.
    pub fn new_owner(&mut self, conv: bool, key: String, owner: String) {
        self.new_owners.push((conv, key, owner));
    }

    /// The batch committed: its new keys' owners are kept.
    pub fn committed(&mut self) {
        if self.owners.iter().map(HashMap::len).sum::<usize>() + self.new_owners.len() > OWNERS_MAX
        {
            self.owners.iter_mut().for_each(HashMap::clear);
        }
        for (conv, key, owner) in self.new_owners.drain(..) {
            self.owners[usize::from(conv)].insert(key, owner);
        }
    }

    /// The batch was rolled back: its new keys were not stored.
    pub fn rolled_back(&mut self) {
        self.new_owners.clear();
    }

    /// Counts a batch ingested into the workspace.
    pub fn batch_done(&mut self) {
        self.batches += 1;
    }
}

/// A filter of event ids kept by the server's acknowledgments (`spool.rs`): ids hashed
/// in Rust (the database's `hash` is not reachable from Rust). "Absent"
/// means absent; "present" must be checked against the ids in flight and the table, so
/// it has 24 bits and 8 hashes per id (about 1 false positive in 10,000: a lookup).
pub struct IdFilter {
    bloom: Bloom,
}

impl IdFilter {
    /// An empty filter with room for `capacity` ids.
    pub fn with_capacity(capacity: usize) -> IdFilter {
        IdFilter {
            bloom: Bloom::sized(capacity, 24, 8),
        }
    }

    fn hash(id: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        id.hash(&mut h);
        h.finish()
    }

    pub fn insert(&mut self, id: &str) {
        self.bloom.insert(IdFilter::hash(id));
    }

    pub fn may_contain(&self, id: &str) -> bool {
        self.bloom.may_contain(IdFilter::hash(id))
    }

    /// How many more ids it takes before it is too full to be useful.
    pub fn room(&self) -> usize {
        self.bloom.room()
    }

    /// How many ids it was made for.
    pub fn capacity(&self) -> usize {
        self.bloom.capacity
    }
}

/// Bits per expected entry, and the entries a filter is built with room for beyond its
/// table's size.
const BITS_PER_ENTRY: usize = 12;
const SPARE_ENTRIES: usize = 1 << 20;
/// Bits set per hash, all in one 512-bit block (one cache line).
const K: u32 = 6;

/// A blocked Bloom filter of 64-bit hashes.
pub(crate) struct Bloom {
    /// Bits set per hash.
    k: u32,
    blocks: Vec<[u64; 8]>,
    entries: usize,
    capacity: usize,
}

impl Bloom {
    fn with_capacity(capacity: usize) -> Bloom {
        Bloom::sized(capacity, BITS_PER_ENTRY, K)
    }

    /// At most 14 bits per hash (`spots` draws 9-bit positions from two words).
    fn sized(capacity: usize, bits_per_entry: usize, k: u32) -> Bloom {
        let blocks = (capacity * bits_per_entry).div_ceil(512).max(1);
        Bloom {
            k: k.min(14),
            blocks: vec![[0; 8]; blocks],
            entries: 0,
            capacity,
        }
    }

    /// A filter holding every hash of `kind`'s table for `ws`.
    fn from_table(conn: &Connection, ws: &str, kind: Kind) -> Result<Bloom, StoreError> {
        let table = kind.table();
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE workspace = ?"),
            [ws],
            |r| r.get(0),
        )?;
        let mut bloom = Bloom::with_capacity(n as usize * 2 + SPARE_ENTRIES);
        let mut stmt = conn.prepare(&format!("SELECT h FROM {table} WHERE workspace = ?"))?;
        for batch in stmt.query_arrow([ws])? {
            let column = batch.column(0).as_primitive::<UInt64Type>();
            column.values().iter().for_each(|h| bloom.insert(*h));
        }
        crate::phase(&format!("filter of {table} built ({n} hashes)"));
        Ok(bloom)
    }

    /// How many more hashes the filter takes before it is too full to be useful.
    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.entries)
    }

    /// The block of a hash, and the word and bit of each of its `K` bits in it.
    fn spots(&self, h: u64) -> (usize, impl Iterator<Item = (usize, u64)>) {
        let block = ((h as u128 * self.blocks.len() as u128) >> 64) as usize;
        let mixed = h.rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let more = h.rotate_left(47).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let bits = (0..self.k).map(move |i| {
            let bit = if i < 7 {
                (mixed >> (i * 9)) & 511
            } else {
                (more >> ((i - 7) * 9)) & 511
            };
            ((bit / 64) as usize, 1u64 << (bit % 64))
        });
        (block, bits)
    }

    fn insert(&mut self, h: u64) {
        let (block, bits) = self.spots(h);
        let block = &mut self.blocks[block];
        for (word, bit) in bits {
            block[word] |= bit;
        }
        self.entries += 1;
    }

    fn may_contain(&self, h: u64) -> bool {
        let (block, mut bits) = self.spots(h);
        let block = &self.blocks[block];
        bits.all(|(word, bit)| block[word] & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every inserted hash is found; few others are (false positives cost a lookup).
    /// The servers' filter of ids: what it holds is found; about 1 in 10,000 others.
    #[test]
    fn an_id_filter_finds_its_ids_and_very_rarely_more() {
        let mut filter = IdFilter::with_capacity(200_000);
        (0..200_000).for_each(|i| filter.insert(&format!("e{i}")));
        assert!((0..200_000).all(|i| filter.may_contain(&format!("e{i}"))));
        let false_positives = (200_000..1_200_000)
            .filter(|i| filter.may_contain(&format!("e{i}")))
            .count();
        assert!(false_positives < 400, "{false_positives} false positives");
    }

    #[test]
    fn a_bloom_filter_finds_what_it_holds_and_rarely_more() {
        let mut bloom = Bloom::with_capacity(100_000);
        let hash = |i: u64| i.wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17) ^ i;
        (0..100_000).for_each(|i| bloom.insert(hash(i)));
        assert!((0..100_000).all(|i| bloom.may_contain(hash(i))));
        let false_positives = (100_000..200_000)
            .filter(|i| bloom.may_contain(hash(*i)))
            .count();
        assert!(false_positives < 2_000, "{false_positives} false positives");
        assert_eq!(bloom.room(), 0);
    }
}
