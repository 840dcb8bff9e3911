// The DuckDB side of the national-scale benchmark (scripts/bench/national.sh):
// the nearest equivalent of `cpi ingest` that a data engineer would write.
// It reads every canonical participants export in IN (DESIGN §5.1,
// `<TRUST>_participants_<YYYYMMDD>.csv`) with explicit column types, turns the
// item columns (rg01 … su_*: the header minus its ten leading
// participant columns) into a long table with one row per interview × item
// asked at that wave (blank answers kept as nulls, as cpi's responses table
// does; GAS is asked at follow-up only), for the rows with an interview date,
// and writes it as zstd Parquet partitioned by trust into OUT (which must not
// exist). It prints one line of JSON: the rows written and the item count.
//
// Usage: node ingest_long.mjs IN OUT
// DuckDB's threads default to the number of cores; its settings are left at
// their defaults.
import { DuckDBInstance } from '@duckdb/node-api';
import { readdirSync, openSync, readSync, closeSync, existsSync, createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

const [inDir, outDir] = process.argv.slice(2);
if (!inDir || !outDir) {
  console.error('usage: node ingest_long.mjs IN OUT');
  process.exit(2);
}
if (existsSync(outDir)) {
  console.error(`ingest_long: ${outDir} exists`);
  process.exit(2);
}

const files = readdirSync(inDir).filter((f) => /^[A-Z]+_participants_\d{8}\.csv$/.test(f)).sort();
if (files.length === 0) {
  console.error(`ingest_long: no *_participants_*.csv in ${inDir}`);
  process.exit(1);
}

// The header line of a file (the first 64 KiB hold it many times over).
function header(path) {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(64 * 1024);
  const n = readSync(fd, buf, 0, buf.length, 0);
  closeSync(fd);
  let line = buf.subarray(0, n).toString('utf8').split('\n')[0].replace(/\r$/, '');
  if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
  return line.split(',');
}

const lead = ['participant_id', 'team_code', 'wave', 'interview_date', 'age_band', 'gender',
  'ethnicity', 'living_alone', 'diagnosis_group', 'withdrawn'];
const cols = header(join(inDir, files[0]));
for (const f of files.slice(1)) {
  if (header(join(inDir, f)).join(',') !== cols.join(',')) {
    console.error(`ingest_long: ${f} has another header than ${files[0]}`);
    process.exit(1);
  }
}
if (cols.slice(0, lead.length).join(',') !== lead.join(',')) {
  console.error('ingest_long: not the canonical participants header');
  process.exit(1);
}
const items = cols.slice(lead.length);
// The items of the default study's instruments: rguk first, then swemwbs,
// qpr, ucla3, eq5d5l, gas and the service use (csri, su_*).
const prefixes = ['rg', 'swemwbs', 'qpr', 'ucla', 'eq5d', 'gas', 'su_'];
if (items[0] !== 'rg01' || !items.every((c) => prefixes.some((p) => c.startsWith(p)))) {
  console.error('ingest_long: the item columns are not those of the default study (rg01 … su_*)');
  process.exit(1);
}

// Explicit types, as the canonical format says (§5.1): codes are text,
// interview_date a DATE, the rest integers.
const types = {};
for (const c of cols) types[c] = 'INTEGER';
for (const c of ['participant_id', 'team_code', 'wave', 'age_band', 'gender', 'ethnicity', 'diagnosis_group']) types[c] = 'VARCHAR';
types.interview_date = 'DATE';

const q = (s) => `'${s.replaceAll("'", "''")}'`;
const id = (s) => `"${s.replaceAll('"', '""')}"`;
const typeList = cols.map((c) => `${q(c)}: ${q(types[c])}`).join(', ');
const fileList = files.map((f) => q(join(inDir, f))).join(', ');

// The same columns as cpi's responses table (DESIGN §7): the source file's
// SHA-256 (hashed here, as cpi hashes every file it receives) and line, the
// instrument of each item, the team's arm (teams <TRUST>-01 are the
// intervention arm in the default study), and trust kept inside the files.
// The line is the row's place in its file: the synthetic exports are in
// participant and wave order, so the window orders by them (a window
// without an order would number rows as DuckDB's parallel reader meets them).
async function sha256(path) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk);
  return h.digest('hex');
}
const shaCase = (await Promise.all(files.map(async (f) => `WHEN ${q(join(inDir, f))} THEN ${q(await sha256(join(inDir, f)))}`))).join(' ');
const instrument = `CASE WHEN starts_with(item, 'rg') THEN 'rguk' WHEN starts_with(item, 'swemwbs') THEN 'swemwbs'
  WHEN starts_with(item, 'qpr') THEN 'qpr' WHEN starts_with(item, 'ucla') THEN 'ucla3'
  WHEN starts_with(item, 'eq5d') THEN 'eq5d5l' WHEN starts_with(item, 'su_') THEN 'csri' ELSE 'gas' END`;

const sql = `
COPY (
  WITH rows AS (
    SELECT filename, team_code, wave, interview_date, participant_id, ${items.map(id).join(', ')},
           row_number() OVER (PARTITION BY filename ORDER BY participant_id, wave) + 1 AS source_line
    FROM read_csv([${fileList}], header = true, auto_detect = false, delim = ',', quote = '"',
                  dateformat = '%Y-%m-%d', filename = true, columns = {${typeList}})
  ), interviews AS (
    SELECT split_part(parse_filename(filename), '_', 1) AS trust,
           split_part(parse_filename(filename), '_', 1) || '-' || participant_id AS study_id,
           wave, team_code AS team,
           CASE WHEN ends_with(team_code, '-01') THEN 'intervention' ELSE 'control' END AS arm,
           CASE filename ${shaCase} END AS source_sha256,
           source_line::INTEGER AS source_line,
           ${items.map(id).join(', ')}
    FROM rows
    WHERE interview_date IS NOT NULL
  )
  SELECT study_id, wave, ${instrument} AS instrument, item, trust, team, arm, value, source_sha256, source_line
  FROM interviews
  UNPIVOT INCLUDE NULLS (value FOR item IN (${items.map(id).join(', ')}))
  WHERE NOT (wave = 'baseline' AND starts_with(item, 'gas'))
) TO ${q(outDir)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (trust), WRITE_PARTITION_COLUMNS true)`;

const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const res = await con.runAndReadAll(sql);
const rows = res.getRows();
const written = rows.length > 0 ? Number(rows[0][0]) : -1;
console.log(JSON.stringify({ files: files.length, items: items.length, rows: written }));
