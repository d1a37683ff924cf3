//! Runs SQL against a parley data dir's database and prints each row, tab-separated:
//! `cargo run --release --example sql -- DIR/parley.duckdb "EXPLAIN ANALYZE SELECT …" [RUNS]`;
//! with RUNS, the query runs that many times and each run's time goes to stderr.
//! A profiling aid (read-only); not part of the product.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (path, sql, runs) = match args.as_slice() {
        [_, path, sql] => (path, sql, 1),
        [_, path, sql, runs] => (path, sql, runs.parse()?),
        _ => return Err("usage: sql DATABASE SQL [RUNS]".into()),
    };
    let conn = duckdb::Connection::open_in_memory()?;
    conn.execute_batch(&format!(
        "ATTACH '{}' AS parley (READ_ONLY); USE parley;",
        path.replace('\'', "''")
    ))?;
    let mut stmt = conn.prepare(sql)?;
    for _ in 1..runs {
        let t = std::time::Instant::now();
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        eprintln!("{:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    }
    let t = std::time::Instant::now();
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
    if runs > 1 {
        eprintln!("{:.1} ms (printed)", t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(())
}
