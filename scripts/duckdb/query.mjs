// Runs one DuckDB query as an analyst would (a README snippet's SQL, from the
// current folder) and prints, as JSON, its columns with DuckDB's types, its
// rows, and the nulls of each column.
// Usage: node query.mjs SQL
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv[2];
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const desc = await con.runAndReadAll(`DESCRIBE ${sql}`);
const columns = {};
const names = [];
for (const row of desc.getRowObjects()) {
  columns[row.column_name] = row.column_type;
  names.push(row.column_name);
}
const q = (n) => '"' + n.replaceAll('"', '""') + '"';
const counts = names.map((n, i) => `(count(*) - count(${q(n)}))::BIGINT AS c${i}`);
const res = await con.runAndReadAll(`SELECT count(*)::BIGINT AS n, ${counts.join(', ')} FROM (${sql})`);
const r = res.getRowObjects()[0];
const nulls = {};
names.forEach((n, i) => { nulls[n] = Number(r[`c${i}`]); });
console.log(JSON.stringify({ columns, rows: Number(r.n), nulls }));
