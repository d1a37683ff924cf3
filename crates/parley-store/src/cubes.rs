//! Pre-aggregated counts ("cubes"): for the datasets that reports scan most, the number
//! of fact rows per workspace, 15-minute UTC slot and a few dimensions. A report whose
//! filters and keys are all cube dimensions, and whose range, buckets and UTC offsets all
//! fall on slot edges, sums a cube instead of scanning the facts (`query::source`).
//!
//! Invariant: a cube holds exactly one row per (workspace, slot, dimensions) that has
//! fact rows, with `n` their number, i.e. it equals [`Cube::aggregate_sql`] over the
//! fact table. Derivation keeps it so (`derive_touched`): the rows a settle deletes are
//! counted negatively, the rows it stages positively, into the scratch `d_*` tables;
//! [`merge`] nets them and rewrites only the slots whose counts changed.

use duckdb::Connection;
use parley_core::report::Dataset;

use crate::StoreError;

/// The grain of every cube: 15 minutes. Every UTC offset in use today is a multiple of
/// it, so local hours, days and weeks start on slot edges.
pub(crate) const SLOT_MICROS: i64 = 900_000_000;

/// One cube: which dataset it counts, from which fact rows, by which time column, and
/// its dimensions (columns of the fact table, named as there).
pub(crate) struct Cube {
    pub table: &'static str,
    pub dataset: Dataset,
    pub facts: &'static str,
    /// The condition on a fact row `x` that puts it in the dataset.
    pub rows: &'static str,
    /// The time column of `x` that places the row in a slot.
    pub t: &'static str,
    pub dims: &'static [&'static str],
}

pub(crate) const CUBES: &[Cube] = &[
    Cube {
        table: "cube_opened",
        dataset: Dataset::Opened,
        facts: "conversations",
        rows: "TRUE",
        t: "x.opened_at",
        dims: &["opened_channel", "opened_source", "contact_type"],
    },
    Cube {
        table: "cube_closed",
        dataset: Dataset::Closed,
        facts: "conversations",
        rows: "x.closed_at IS NOT NULL",
        t: "x.closed_at",
        dims: &["category", "closed_source", "contact_type"],
    },
    Cube {
        table: "cube_incoming",
        dataset: Dataset::Incoming,
        facts: "messages",
        rows: "x.incoming",
        t: "x.at_us",
        dims: &["channel_id"],
    },
    Cube {
        table: "cube_outgoing",
        dataset: Dataset::Outgoing,
        facts: "messages",
        rows: "NOT x.incoming",
        t: "x.at_us",
        dims: &["channel_id", "source", "message_type", "subtype", "status"],
    },
    Cube {
        table: "cube_assignments",
        dataset: Dataset::Assignments,
        facts: "assignments",
        rows: "TRUE",
        t: "x.at_us",
        dims: &["source"],
    },
];

/// The cube of a dataset, if it has one.
pub(crate) fn of(ds: Dataset) -> Option<&'static Cube> {
    CUBES.iter().find(|c| c.dataset == ds)
}

impl Cube {
    /// Whether `column` (as `x.name`) is one of the cube's dimensions.
    pub fn has(&self, column: &str) -> bool {
        column
            .strip_prefix("x.")
            .is_some_and(|c| self.dims.contains(&c))
    }

    fn dims_list(&self) -> String {
        self.dims.join(", ")
    }

    /// The cube's rows counted over `from` (a fact table or its scratch copy, as `x`)
    /// where `cond` holds, each count multiplied by `sign`.
    pub fn aggregate_sql(&self, from: &str, cond: &str, sign: i64) -> String {
        let t = self.t;
        let dims: String = self.dims.iter().map(|d| format!(", x.{d}")).collect();
        format!(
            "SELECT x.workspace, {t} - ({t} % {SLOT_MICROS} + {SLOT_MICROS}) % {SLOT_MICROS} AS slot{dims},
                    ({sign} * count(*))::BIGINT AS n
             FROM {from} x WHERE {rows} AND ({cond}) GROUP BY ALL",
            rows = self.rows,
        )
    }
}

/// The SQL that creates every cube and fills it from the facts of every workspace (a
/// migration).
pub(crate) fn create_sql() -> String {
    CUBES
        .iter()
        .map(|c| {
            format!(
                "CREATE TABLE {} AS SELECT * FROM ({}) ORDER BY workspace, slot;\n",
                c.table,
                c.aggregate_sql(c.facts, "TRUE", 1)
            )
        })
        .collect()
}

/// Creates (empty) the scratch delta table of every cube.
pub(crate) fn begin(conn: &Connection) -> Result<(), StoreError> {
    for c in CUBES {
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE d_{t} AS SELECT * FROM {t} LIMIT 0",
            t = c.table
        ))?;
    }
    Ok(())
}

/// Counts into the deltas of the cubes over `facts`, with `sign`, the rows of `from` (the
/// fact table itself or its scratch copy) where `cond` holds; `$1` in `cond` is `ws`.
pub(crate) fn count(
    conn: &Connection,
    facts: &str,
    from: &str,
    cond: &str,
    sign: i64,
    ws: &str,
) -> Result<(), StoreError> {
    for c in CUBES.iter().filter(|c| c.facts == facts) {
        let sql = format!(
            "INSERT INTO d_{} {}",
            c.table,
            c.aggregate_sql(from, cond, sign)
        );
        if cond.contains("$1") {
            conn.execute(&sql, [ws])?;
        } else {
            conn.execute(&sql, [])?;
        }
    }
    Ok(())
}

/// Applies the deltas to the cubes of `ws`: nets them, and rewrites the slots whose
/// counts changed (rows whose count falls to zero go); then drops the deltas.
pub(crate) fn merge(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    for c in CUBES {
        let (t, dims) = (c.table, c.dims_list());
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE cube_net AS
               SELECT workspace, slot, {dims}, sum(n)::BIGINT AS n FROM d_{t}
               GROUP BY ALL HAVING sum(n) <> 0;
             DROP TABLE d_{t};"
        ))?;
        let bounds: (Option<i64>, Option<i64>) =
            conn.query_row("SELECT min(slot), max(slot) FROM cube_net", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let (Some(lo), Some(hi)) = bounds else {
            continue;
        };
        // The bounds let DuckDB skip the row groups of other slots.
        let changed = format!(
            "workspace = $1 AND slot BETWEEN {lo} AND {hi}
             AND slot IN (SELECT DISTINCT slot FROM cube_net)"
        );
        conn.execute(
            &format!(
                "CREATE OR REPLACE TEMP TABLE cube_new AS
                 SELECT workspace, slot, {dims}, sum(n)::BIGINT AS n FROM (
                   SELECT * FROM {t} WHERE {changed}
                   UNION ALL SELECT * FROM cube_net
                 ) GROUP BY ALL HAVING sum(n) <> 0"
            ),
            [ws],
        )?;
        conn.execute(&format!("DELETE FROM {t} WHERE {changed}"), [ws])?;
        conn.execute_batch(&format!(
            "INSERT INTO {t} SELECT * FROM cube_new ORDER BY slot;
             DROP TABLE cube_new;"
        ))?;
    }
    conn.execute_batch("DROP TABLE IF EXISTS cube_net")?;
    Ok(())
}

/// Deletes every cube row of `ws` (before a rebuild counts its facts again).
pub(crate) fn clear(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    for c in CUBES {
        conn.execute(
            &format!("DELETE FROM {} WHERE workspace = $1", c.table),
            [ws],
        )?;
    }
    Ok(())
}
