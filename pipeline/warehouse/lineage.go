package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Lineage: every output of a stage (a table, or a set of report files) has
// a record in the ledger of the generation that holds it: its files with
// their sizes and SHA-256s, the content hash of the whole, the stage and run
// that built it, and what it was built from (the content hashes of its input
// tables, the study definition's hash and the program version). A later
// run compares those inputs with the inputs as they are now: an output whose
// inputs changed is stale and is rebuilt by `cpi run`, whichever command
// wrote the inputs; a stage command refuses to build on a stale or missing
// input. The records also let a run detect, before it builds on them, table
// files deleted or changed by hand.

// OutputRecord is the ledger's record of one stage output.
type OutputRecord struct {
	Hash    string            `json:"hash"`
	Files   []FileRecord      `json:"files"`
	Stage   string            `json:"stage"`
	RunID   int64             `json:"run_id"`
	BuiltAt time.Time         `json:"built_at"`
	Inputs  map[string]string `json:"inputs"`
}

// FileRecord is one file of an output, its path relative to the generation.
type FileRecord struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	ModTime time.Time `json:"mod_time"`
}

// Inputs of an output besides tables.
const (
	InputStudy   = "study definition"
	InputProgram = "program version"
)

// StageDef is a stage of the pipeline with what it reads and writes.
// Outputs name tables, or report files as "reports/<glob>".
type StageDef struct {
	Name    string
	Inputs  []string
	Outputs []string
	Run     Stage
}

// IngestOutputs are the tables ingest writes.
var IngestOutputs = []string{"participants", "interviews", "responses", "fidelity_ratings", "rejects", "ingest_files"}

// OutputFiles lists an output's files in a generation, relative to it, in
// path order.
func OutputFiles(genDir, output string) ([]string, error) {
	var abs []string
	var err error
	if strings.HasPrefix(output, "reports/") {
		abs, err = filepath.Glob(filepath.Join(genDir, filepath.FromSlash(output)))
		sort.Strings(abs)
	} else {
		abs, err = TableFiles(genDir, output)
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(abs))
	for i, p := range abs {
		out[i], _ = filepath.Rel(genDir, p)
		out[i] = filepath.ToSlash(out[i])
	}
	return out, nil
}

// hashFiles makes the records of files; a file with the size and
// modification time an earlier record gives (a hard link carried over from
// the previous generation) keeps that record's hash.
func hashFiles(ctx context.Context, genDir string, paths []string, prev []FileRecord) ([]FileRecord, error) {
	known := map[string]FileRecord{}
	for _, r := range prev {
		known[r.Path] = r
	}
	out := make([]FileRecord, 0, len(paths))
	for _, rel := range paths {
		info, err := os.Stat(filepath.Join(genDir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		r := FileRecord{Path: rel, Size: info.Size(), ModTime: info.ModTime().UTC()}
		if k, ok := known[rel]; ok && k.Size == r.Size && k.ModTime.Equal(r.ModTime) && k.SHA256 != "" {
			r.SHA256 = k.SHA256
		} else {
			sha, _, err := HashFile(ctx, filepath.Join(genDir, filepath.FromSlash(rel)))
			if err != nil {
				return nil, err
			}
			r.SHA256 = sha
		}
		out = append(out, r)
	}
	return out, nil
}

// contentHash is the hash of an output: of its files' paths (without the
// generation), sizes and hashes. Two warehouses holding the same bytes
// give the same hash.
func contentHash(files []FileRecord) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", f.Path, f.Size, f.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RecordOutputs records the outputs a stage has just written, built from
// inputs.
func RecordOutputs(ctx context.Context, env Env, tx *Tx, stage string, outputs []string, inputs map[string]string) error {
	if tx.Ledger.Outputs == nil {
		tx.Ledger.Outputs = map[string]*OutputRecord{}
	}
	for _, o := range outputs {
		paths, err := OutputFiles(tx.Dir, o)
		if err != nil {
			return fmt.Errorf("record %s: %w", o, err)
		}
		var prev []FileRecord
		if r := tx.Ledger.Outputs[o]; r != nil {
			prev = r.Files
		}
		files, err := hashFiles(ctx, tx.Dir, paths, prev)
		if err != nil {
			return fmt.Errorf("record %s: %w", o, err)
		}
		rec := &OutputRecord{
			Hash: contentHash(files), Files: files, Stage: stage, RunID: tx.Summary.RunID,
			BuiltAt: env.Clock(), Inputs: inputs,
		}
		if r := tx.Ledger.Outputs[o]; r != nil && r.Hash == rec.Hash && maps.Equal(r.Inputs, rec.Inputs) {
			continue // the same bytes from the same inputs: keep when it was built
		}
		tx.Ledger.Outputs[o] = rec
	}
	return nil
}

// InputsNow are the inputs a stage would be built from now.
func InputsNow(env Env, l *Ledger, inputs []string) map[string]string {
	out := map[string]string{InputStudy: env.Study.Hash, InputProgram: env.Version}
	for _, in := range inputs {
		if r := l.Outputs[in]; r != nil {
			out[in] = r.Hash
		} else {
			out[in] = ""
		}
	}
	return out
}

// DamageError names outputs of the warehouse whose files do not match what
// the ledger recorded: deleted, added or changed by hand.
type DamageError struct{ Problems []string }

func (e *DamageError) Error() string {
	return "the warehouse is damaged (" + strings.Join(e.Problems, "; ") + "): nothing was changed; see `cpi check`, and restore the files or run `cpi rebuild`"
}

// VerifyOutputs compares every recorded output with the files of the
// generation at genDir. With full, every file is hashed; otherwise only the
// files whose size or modification time differ from the record.
func VerifyOutputs(ctx context.Context, genDir string, l *Ledger, full bool) error {
	var problems []string
	names := make([]string, 0, len(l.Outputs))
	for o := range l.Outputs {
		names = append(names, o)
	}
	sort.Strings(names)
	for _, o := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := l.Outputs[o]
		paths, err := OutputFiles(genDir, o)
		if err != nil {
			return fmt.Errorf("check %s: %w", o, err)
		}
		recorded := map[string]FileRecord{}
		for _, f := range r.Files {
			recorded[f.Path] = f
		}
		for _, p := range paths {
			if _, ok := recorded[p]; !ok {
				problems = append(problems, fmt.Sprintf("%s: %s is not in the ledger", o, p))
			}
		}
		for _, f := range r.Files {
			info, err := os.Stat(filepath.Join(genDir, filepath.FromSlash(f.Path)))
			if errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, fmt.Sprintf("%s: %s is missing", o, f.Path))
				continue
			}
			if err != nil {
				return fmt.Errorf("check %s: %w", o, err)
			}
			if info.Size() != f.Size {
				problems = append(problems, fmt.Sprintf("%s: %s has changed size", o, f.Path))
				continue
			}
			if !full && info.ModTime().UTC().Equal(f.ModTime) {
				continue
			}
			sha, _, err := HashFile(ctx, filepath.Join(genDir, filepath.FromSlash(f.Path)))
			if err != nil {
				return fmt.Errorf("check %s: %w", o, err)
			}
			if sha != f.SHA256 {
				problems = append(problems, fmt.Sprintf("%s: %s has changed", o, f.Path))
			}
		}
	}
	if len(problems) > 0 {
		return &DamageError{Problems: problems}
	}
	return nil
}

func ShortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "(none)"
	}
	return s
}
