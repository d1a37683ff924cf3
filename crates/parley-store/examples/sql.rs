//! Runs SQL against a parley data dir's database and prints each row, tab-separated:
//! `cargo run --release --example sql -- DIR/parley.duckdb "EXPLAIN ANALYZE SELECT …"`.
//! A profiling aid (read-only); not part of the product.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, sql] = args.as_slice() else {
        return Err("usage: sql DATABASE SQL".into());
    };
    let conn = duckdb::Connection::open_in_memory()?;
    conn.execute_batch(&format!(
        "ATTACH '{}' AS parley (READ_ONLY); USE parley;",
        path.replace('\'', "''")
    ))?;
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let n = row.as_ref().column_count();
        let cells: Vec<String> = (0..n)
            .map(|i| match row.get_ref(i) {
                Ok(v) => format!("{:?}", v.to_owned()),
                Err(e) => e.to_string(),
            })
            .collect();
        println!("{}", cells.join("\t"));
    }
    Ok(())
}
