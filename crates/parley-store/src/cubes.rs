//! Pre-aggregated counts ("cubes"): for the datasets that reports scan most, the number
//! of fact rows per workspace, 15-minute UTC slot and a few dimensions. A report whose
//! filters and keys are all cube dimensions, and whose range, buckets and UTC offsets all
//! fall on slot edges, sums a cube instead of scanning the facts (`query::source`).
//!
//! Invariant: summed per (workspace, slot, dimensions), a cube's `n` is the number of
//! fact rows with that key, as [`Cube::aggregate_sql`] counts them over the fact table.
//! Derivation keeps it so (`derive_touched`): the rows a settle deletes are counted
//! negatively, the rows it stages positively, in Rust ([`Deltas`]); [`apply`]
//! appends the nonzero net changes, so a key may have several rows until the cube is
//! compacted: the invariant is that each key's rows sum to its number of fact rows.

use std::collections::HashMap;

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::Int64Type;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::Value;
use duckdb::Connection;
use parley_core::report::Dataset;

use crate::StoreError;

/// The grain of every cube: 15 minutes. Every UTC offset in use today is a multiple of
/// it, so local hours, days and weeks start on slot edges.
pub(crate) const SLOT_MICROS: i64 = 900_000_000;

/// Which fact rows a cube counts, as Rust tests them (`Cube::rows_sql` in SQL).
#[derive(Clone, Copy)]
pub(crate) enum Rows {
    All,
    Incoming,
    Outgoing,
    Closed,
    /// Activities of one kind.
    Kind(&'static str),
}

/// One cube: which dataset it counts, from which fact rows, by which time column, and
/// its dimensions (columns of the fact table, named as there).
pub(crate) struct Cube {
    pub table: &'static str,
    pub dataset: Dataset,
    pub facts: &'static str,
    /// Which rows of the fact table are in the dataset (`Cube::rows_sql` in SQL).
    pub keep: Rows,
    /// The time column of the fact table that places a row in a slot.
    pub t: &'static str,
    pub dims: &'static [&'static str],
    /// The schema migration that creates the cube.
    pub since: i64,
}

pub(crate) const CUBES: &[Cube] = &[
    Cube {
        table: "cube_opened",
        dataset: Dataset::Opened,
        facts: "conversations",
        keep: Rows::All,
        t: "opened_at",
        dims: &["opened_channel", "opened_source", "contact_type"],
        since: 6,
    },
    Cube {
        table: "cube_closed",
        dataset: Dataset::Closed,
        facts: "conversations",
        keep: Rows::Closed,
        t: "closed_at",
        dims: &["category", "closed_source", "contact_type"],
        since: 6,
    },
    Cube {
        table: "cube_incoming",
        dataset: Dataset::Incoming,
        facts: "messages",
        keep: Rows::Incoming,
        t: "at_us",
        dims: &["channel_id"],
        since: 6,
    },
    Cube {
        table: "cube_outgoing",
        dataset: Dataset::Outgoing,
        facts: "messages",
        keep: Rows::Outgoing,
        t: "at_us",
        dims: &["channel_id", "source", "message_type", "subtype", "status"],
        since: 6,
    },
    Cube {
        table: "cube_assignments",
        dataset: Dataset::Assignments,
        facts: "assignments",
        keep: Rows::All,
        t: "at_us",
        dims: &["source"],
        since: 6,
    },
    activity_cube("cube_added", Dataset::Added, "added"),
    activity_cube("cube_deleted", Dataset::Deleted, "deleted"),
    activity_cube("cube_merged", Dataset::Merged, "merged"),
    Cube {
        table: "cube_connected",
        dataset: Dataset::Connected,
        facts: "connections",
        keep: Rows::All,
        t: "at_us",
        dims: &["channel_id", "source", "user_id"],
        since: 7,
    },
];

/// The cube of contact activities of one kind (migration 7).
const fn activity_cube(table: &'static str, dataset: Dataset, kind: &'static str) -> Cube {
    Cube {
        table,
        dataset,
        facts: "activities",
        keep: Rows::Kind(kind),
        t: "at_us",
        dims: &["source", "user_id"],
        since: 7,
    }
}

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

    /// The condition on a fact row `x` that puts it in the dataset.
    fn rows_sql(&self) -> String {
        match self.keep {
            Rows::All => "TRUE".to_string(),
            Rows::Incoming => "x.incoming".to_string(),
            Rows::Outgoing => "NOT x.incoming".to_string(),
            Rows::Closed => format!("x.{} IS NOT NULL", self.t),
            Rows::Kind(kind) => format!("x.kind = '{kind}'"),
        }
    }

    /// The columns of the fact table the cube reads: the time, what `keep` tests, the
    /// dimensions.
    fn reads(&self) -> impl Iterator<Item = &'static str> {
        let tested = match self.keep {
            Rows::Incoming | Rows::Outgoing => Some("incoming"),
            Rows::Kind(_) => Some("kind"),
            Rows::All | Rows::Closed => None,
        };
        std::iter::once(self.t)
            .chain(tested)
            .chain(self.dims.iter().copied())
    }

    /// The cube's rows counted over the fact table `from` (as `x`) where `cond` holds.
    pub fn aggregate_sql(&self, from: &str, cond: &str) -> String {
        let t = format!("x.{}", self.t);
        let dims: String = self.dims.iter().map(|d| format!(", x.{d}")).collect();
        format!(
            "SELECT x.workspace, {t} - ({t} % {SLOT_MICROS} + {SLOT_MICROS}) % {SLOT_MICROS} AS slot{dims},
                    count(*)::BIGINT AS n
             FROM {from} x WHERE {rows} AND ({cond}) GROUP BY ALL",
            rows = self.rows_sql(),
        )
    }
}

/// The SQL of migration `version` that creates its cubes and fills them from the facts
/// of every workspace (migration 6 also creates the table that tracks each cube's
/// appended rows).
pub(crate) fn create_sql(version: i64) -> String {
    let mut sql = String::new();
    if version == 6 {
        sql.push_str(
            "CREATE TABLE cube_tails (workspace VARCHAR NOT NULL, cube VARCHAR NOT NULL,
               compacted BIGINT NOT NULL, appended BIGINT NOT NULL);\n",
        );
    }
    for c in CUBES.iter().filter(|c| c.since == version) {
        sql.push_str(&format!(
            "CREATE TABLE {t} AS SELECT * FROM ({}) ORDER BY workspace, slot;
             INSERT INTO cube_tails SELECT workspace, '{t}', count(*), 0 FROM {t} GROUP BY ALL;\n",
            c.aggregate_sql(c.facts, "TRUE"),
            t = c.table,
        ));
    }
    sql
}

/// The cubes counted from the fact tables `tables`.
fn over<'a>(tables: &'a [&'static str]) -> impl Iterator<Item = &'static Cube> + 'a {
    CUBES.iter().filter(|c| tables.contains(&c.facts))
}

/// Cubes have at most this many dimensions.
const MAX_DIMS: usize = 5;

/// A cube row's key: its slot and its dimensions' values.
type Key<S> = (i64, [Option<S>; MAX_DIMS]);

/// The net change of each cube row of one workspace, gathered in Rust from the fact rows
/// a settle deletes (as the DELETE returns them) and stages (as derivation built them):
/// a settle reads no fact row twice to keep the cubes.
pub(crate) struct Deltas {
    maps: Vec<HashMap<Key<Box<str>>, i64>>,
    /// Rows appended to a cube before it is compacted, at least.
    tail_min: i64,
    /// The columns of each fact table with cubes, in table order, without `ch`: as the
    /// staged batches of the `f_*` tables have them (since migration 8 added columns
    /// after `ch`, leaving it in would shift their names).
    columns: HashMap<&'static str, Vec<String>>,
}

impl Deltas {
    /// Deltas of the cubes over `tables`, applied by [`apply`] compacting a cube past
    /// `tail_min` appended rows at least.
    pub fn new(
        conn: &Connection,
        tables: &[&'static str],
        tail_min: i64,
    ) -> Result<Deltas, StoreError> {
        let mut columns = HashMap::new();
        for c in over(tables) {
            if !columns.contains_key(c.facts) {
                let mut stmt = conn.prepare(
                    "SELECT name FROM pragma_table_info(?) WHERE name <> 'ch' ORDER BY cid",
                )?;
                let names = stmt.query_map([c.facts], |r| r.get(0))?;
                columns.insert(c.facts, names.collect::<Result<Vec<String>, _>>()?);
            }
        }
        Ok(Deltas {
            maps: vec![HashMap::new(); CUBES.len()],
            tail_min,
            columns,
        })
    }

    /// Counts the rows of a staged batch of `table` (its columns in table order).
    pub fn stage(&mut self, table: &str, batch: &RecordBatch) -> Result<(), StoreError> {
        let Some(names) = self.columns.get(table).cloned() else {
            return Ok(());
        };
        self.count(table, batch, &names, 1)
    }

    /// Adds `sign` for each row of `batch` (rows of `table`, its columns named by
    /// `names`) to the cubes over `table`.
    pub fn count(
        &mut self,
        table: &str,
        batch: &RecordBatch,
        names: &[String],
        sign: i64,
    ) -> Result<(), StoreError> {
        let column = |name: &str| -> Result<&dyn Array, StoreError> {
            names
                .iter()
                .position(|n| n == name)
                .map(|i| batch.column(i).as_ref())
                .ok_or_else(|| StoreError::Rows(format!("{table} has no column {name}")))
        };
        for (ci, c) in CUBES.iter().enumerate().filter(|(_, c)| c.facts == table) {
            let t = column(c.t)?.as_primitive::<Int64Type>();
            let incoming = match c.keep {
                Rows::Incoming | Rows::Outgoing => Some(column("incoming")?.as_boolean()),
                _ => None,
            };
            let kind = match c.keep {
                Rows::Kind(_) => Some(column("kind")?.as_string::<i32>()),
                _ => None,
            };
            let dims = c
                .dims
                .iter()
                .map(|d| Ok(column(d)?.as_string::<i32>()))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut local: HashMap<Key<&str>, i64> = HashMap::new();
            for row in 0..batch.num_rows() {
                let kept = match c.keep {
                    Rows::All => true,
                    Rows::Closed => !t.is_null(row),
                    Rows::Incoming => incoming.is_some_and(|a| a.value(row)),
                    Rows::Outgoing => incoming.is_some_and(|a| !a.value(row)),
                    Rows::Kind(k) => kind.is_some_and(|a| a.value(row) == k),
                };
                if !kept || t.is_null(row) {
                    continue;
                }
                let at = t.value(row);
                let mut key: [Option<&str>; MAX_DIMS] = [None; MAX_DIMS];
                for (k, d) in key.iter_mut().zip(&dims) {
                    *k = (!d.is_null(row)).then(|| d.value(row));
                }
                *local
                    .entry((at - at.rem_euclid(SLOT_MICROS), key))
                    .or_default() += sign;
            }
            let map = &mut self.maps[ci];
            for ((slot, key), n) in local {
                *map.entry((slot, key.map(|k| k.map(Box::from))))
                    .or_default() += n;
            }
        }
        Ok(())
    }
}

/// Deletes the rows of the fact table `table` where `cond` holds (`$1` is `ws`), and
/// counts them out of its cubes' deltas. The deleted rows come back from the DELETE
/// itself (`RETURNING` the columns the cubes read), so counting costs no second lookup.
pub(crate) fn delete(
    conn: &Connection,
    deltas: &mut Deltas,
    table: &str,
    cond: &str,
    ws: &str,
) -> Result<(), StoreError> {
    let cols = read_by_cubes(table);
    if cols.is_empty() {
        conn.execute(&format!("DELETE FROM {table} WHERE {cond}"), [ws])?;
        return Ok(());
    }
    let mut stmt = conn.prepare(&format!(
        "DELETE FROM {table} WHERE {cond} RETURNING {}",
        cols.join(", ")
    ))?;
    // Counted batch by batch: a contact with a million messages is never held whole.
    for batch in stmt.query_arrow([ws])? {
        deltas.count(table, &batch, &cols, -1)?;
    }
    Ok(())
}

/// The columns of the fact table `table` that its cubes read, each once.
pub(crate) fn read_by_cubes(table: &str) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for c in CUBES.iter().filter(|c| c.facts == table) {
        for col in c.reads() {
            if !cols.iter().any(|x| x == col) {
                cols.push(col.to_string());
            }
        }
    }
    cols
}

/// A cube is compacted (one row per key again) once the rows appended since its last
/// compaction pass a quarter of its compacted rows, and at least `TAIL_MIN_ROWS`.
const TAIL_SHARE: i64 = 4;
pub(crate) const TAIL_MIN_ROWS: i64 = 20_000;

/// Appends the nonzero net changes to the cubes of `ws` (a cube key may then have
/// several rows: reports sum them), and compacts a cube whose appended rows grew past
/// its share (and the deltas' `tail_min`).
pub(crate) fn apply(conn: &Connection, ws: &str, deltas: Deltas) -> Result<(), StoreError> {
    let tail_min = deltas.tail_min;
    let mut appended = vec![0i64; CUBES.len()];
    for (ci, map) in deltas.maps.into_iter().enumerate() {
        if map.is_empty() {
            continue;
        }
        let c = &CUBES[ci];
        let mut app = conn.appender_to_catalog_and_db(c.table, "parley", "main")?;
        let mut rows: Vec<(Key<Box<str>>, i64)> =
            map.into_iter().filter(|(_, n)| *n != 0).collect();
        rows.sort_unstable_by_key(|((slot, _), _)| *slot);
        for ((slot, key), n) in &rows {
            let mut values = vec![Value::Text(ws.to_string()), Value::BigInt(*slot)];
            for k in key.iter().take(c.dims.len()) {
                values.push(
                    k.as_ref()
                        .map_or(Value::Null, |s| Value::Text(s.to_string())),
                );
            }
            values.push(Value::BigInt(*n));
            app.append_row(duckdb::appender_params_from_iter(values))?;
        }
        app.flush()?;
        appended[ci] = rows.len() as i64;
    }
    if appended.iter().all(|n| *n == 0) {
        return Ok(());
    }
    let mut tails: HashMap<String, (i64, i64)> = HashMap::new();
    {
        let mut stmt =
            conn.prepare("SELECT cube, compacted, appended FROM cube_tails WHERE workspace = ?")?;
        let rows = stmt.query_map([ws], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
        for row in rows {
            let (cube, counts) = row?;
            tails.insert(cube, counts);
        }
    }
    conn.execute("DELETE FROM cube_tails WHERE workspace = ?", [ws])?;
    let mut app = conn.appender_to_catalog_and_db("cube_tails", "parley", "main")?;
    for (ci, c) in CUBES.iter().enumerate() {
        let (mut compacted, mut tail) = tails.get(c.table).copied().unwrap_or((0, 0));
        tail += appended[ci];
        if tail > (compacted / TAIL_SHARE).max(tail_min) {
            compacted = compact(conn, c, ws)?;
            tail = 0;
        }
        app.append_row(duckdb::params![ws, c.table, compacted, tail])?;
    }
    app.flush()?;
    Ok(())
}

/// Rewrites the cube of `ws` with one row per key; returns its rows.
fn compact(conn: &Connection, c: &Cube, ws: &str) -> Result<i64, StoreError> {
    let (t, dims) = (c.table, c.dims.join(", "));
    conn.execute(
        &format!(
            "CREATE OR REPLACE TEMP TABLE cube_new AS
             SELECT workspace, slot, {dims}, sum(n)::BIGINT AS n FROM {t}
             WHERE workspace = $1 GROUP BY ALL HAVING sum(n) <> 0"
        ),
        [ws],
    )?;
    conn.execute(&format!("DELETE FROM {t} WHERE workspace = $1"), [ws])?;
    let n = conn.execute(
        &format!("INSERT INTO {t} SELECT * FROM cube_new ORDER BY slot"),
        [],
    )?;
    conn.execute_batch("DROP TABLE cube_new")?;
    Ok(n as i64)
}

/// Counts every cube of `ws` again from its facts (after a derivation too large for
/// deltas, or a rebuild).
pub(crate) fn recount(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM cube_tails WHERE workspace = $1", [ws])?;
    for c in CUBES {
        conn.execute(
            &format!("DELETE FROM {} WHERE workspace = $1", c.table),
            [ws],
        )?;
        let n = conn.execute(
            &format!(
                "INSERT INTO {} SELECT * FROM ({}) ORDER BY slot",
                c.table,
                c.aggregate_sql(c.facts, "x.workspace = $1")
            ),
            [ws],
        )?;
        conn.execute(
            "INSERT INTO cube_tails VALUES ($1, $2, $3, 0)",
            duckdb::params![ws, c.table, n as i64],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each cube's SQL row condition is the one its dataset has in `query::source`, and
    /// a cube's dimensions fit its key.
    #[test]
    fn each_cube_tests_its_rows_alike_in_sql_and_rust() {
        for c in CUBES {
            let sql = match c.dataset {
                Dataset::Opened | Dataset::Assignments | Dataset::Connected => "TRUE",
                Dataset::Closed => "x.closed_at IS NOT NULL",
                Dataset::Incoming => "x.incoming",
                Dataset::Outgoing => "NOT x.incoming",
                Dataset::Added => "x.kind = 'added'",
                Dataset::Deleted => "x.kind = 'deleted'",
                Dataset::Merged => "x.kind = 'merged'",
                other => panic!("no cube expected for {other:?}"),
            };
            assert_eq!(c.rows_sql(), sql, "{}", c.table);
            assert!(c.dims.len() <= MAX_DIMS, "{}", c.table);
            assert!(c.reads().any(|col| col == c.t), "{}", c.table);
        }
    }

    /// Staged batches are counted by the column names of their fact table: those are the
    /// `f_*` scratch table's, in its order (no `ch`, whatever columns came after it).
    #[test]
    fn staged_batches_are_named_as_their_scratch_tables() {
        let store = crate::DuckStore::in_memory().unwrap();
        let conn = crate::lock(&store.writer);
        let deltas = Deltas::new(&conn, crate::schema::FACT_TABLES, 0).unwrap();
        for (table, names) in &deltas.columns {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM temp.f_{table} LIMIT 0"))
                .unwrap();
            stmt.execute([]).unwrap();
            assert_eq!(names, &stmt.column_names(), "{table}");
        }
        assert_eq!(deltas.columns.len(), 5);
    }
}
