// Package pqfile writes the warehouse's Parquet files: row groups of
// Arrow records, their columns encoded side by side, byte for byte the
// files arrow-go's own writers write.
package pqfile
