// Prints, as JSON, every table of a cpi warehouse as DuckDB reads it with one
// call (hive partitions on): its columns with DuckDB's types and its rows.
// Usage: node describe_tables.mjs WAREHOUSE
import { DuckDBInstance } from '@duckdb/node-api';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const wh = process.argv[2];
const tablesDir = join(wh, 'tables');
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const out = {};
// Table folders only: tables/ also holds datapackage.json.
const tables = readdirSync(tablesDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
for (const t of tables) {
  const glob = join(tablesDir, t, '**', '*.parquet').replaceAll("'", "''");
  const desc = await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${glob}', hive_partitioning = true)`);
  const cols = {};
  for (const row of desc.getRowObjects()) cols[row.column_name] = row.column_type;
  const n = await con.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM read_parquet('${glob}', hive_partitioning = true)`);
  out[t] = { columns: cols, rows: Number(n.getRowObjects()[0].n) };
}
console.log(JSON.stringify(out));
