package pipeline

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/connectingpeople/cpi/pipeline/ingest"
	"github.com/connectingpeople/cpi/pipeline/warehouse"
)

// CheckError says `cpi check` found the warehouse damaged (exit 1); it
// names every problem.
type CheckError struct{ Problems []string }

func (e *CheckError) Error() string {
	return fmt.Sprintf("the warehouse failed its check, %d problems: %s (restore the files, or run `cpi rebuild`)", len(e.Problems), strings.Join(e.Problems, "; "))
}

// Check is `cpi check`: it verifies the whole warehouse at dir without
// changing it, and writes one line per check to w ("ok", "FAIL" or a
// note). It checks that "current" names a generation and the fixed links
// lead through it; that the generation's ledger is readable; every
// recorded output, each file hashed in full against the ledger; that no
// file in tables/ or reports/ is missing from the ledger's records; that
// every export in the archive holds the bytes its name (its SHA-256) says
// and is read-only; that every file in the ledger is archived; and that
// the archive's own records of receipts and accepts are readable,
// read-only, and agree with the ledger. It returns a *CheckError naming
// every problem, nil when all is well, and another error only when it
// could not check at all.
func Check(ctx context.Context, env warehouse.Env, dir string, w io.Writer) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if info, err := os.Stat(abs); err != nil || !info.IsDir() {
		return fmt.Errorf("check: no warehouse at %s", dir)
	}
	wh := &warehouse.Warehouse{Dir: abs}
	c := &checker{w: w}
	fmt.Fprintf(w, "checking warehouse %s\n", abs)

	gen := c.current(wh)
	var l *warehouse.Ledger
	if gen != "" {
		if l, err = warehouse.ReadLedger(gen); err != nil {
			c.fail("ledger", err.Error())
		} else {
			c.ok("ledger", fmt.Sprintf("%d files, %d receipts, %d runs", len(l.Files), len(l.Receipts), len(l.Runs)))
		}
	}
	if l != nil {
		if err := c.outputs(ctx, gen, l); err != nil {
			return err
		}
	}
	if err := c.archive(ctx, wh, l); err != nil {
		return err
	}
	if err := c.records(wh, l); err != nil {
		return err
	}
	if len(c.problems) > 0 {
		fmt.Fprintf(w, "%d problems found\n", len(c.problems))
		return &CheckError{Problems: c.problems}
	}
	fmt.Fprintln(w, "the warehouse is sound")
	return nil
}

// checker writes the lines of a check and collects its problems.
type checker struct {
	w        io.Writer
	problems []string
}

func (c *checker) ok(what, detail string) { fmt.Fprintf(c.w, "ok    %-10s %s\n", what, detail) }

func (c *checker) note(what, detail string) { fmt.Fprintf(c.w, "note  %-10s %s\n", what, detail) }

func (c *checker) fail(what, problem string) {
	fmt.Fprintf(c.w, "FAIL  %-10s %s\n", what, problem)
	c.problems = append(c.problems, what+": "+problem)
}

// current checks the "current" link and the fixed links through it, and
// returns the generation's folder ("" when there is none to check).
func (c *checker) current(wh *warehouse.Warehouse) string {
	target, err := os.Readlink(filepath.Join(wh.Dir, "current"))
	if err != nil {
		c.fail("current", "the link naming the committed generation is missing or not a link")
		return ""
	}
	n, err := strconv.Atoi(filepath.Base(target))
	if err != nil || filepath.Dir(target) != "gen" {
		c.fail("current", fmt.Sprintf("the link names %q, not a generation", target))
		return ""
	}
	gen := wh.GenDir(n)
	if info, err := os.Stat(gen); err != nil || !info.IsDir() {
		c.fail("current", fmt.Sprintf("generation %s is missing", target))
		return ""
	}
	failed := false
	for _, l := range warehouse.WarehouseLinks {
		t, err := os.Readlink(filepath.Join(wh.Dir, l))
		if err != nil || t != filepath.Join("current", l) {
			c.fail("current", fmt.Sprintf("%s should be a link to current/%s", l, l))
			failed = true
		}
	}
	if !failed {
		c.ok("current", target)
	}
	return gen
}

// outputs checks every recorded output in full, and that tables/ and
// reports/ hold no file the ledger does not record.
func (c *checker) outputs(ctx context.Context, gen string, l *warehouse.Ledger) error {
	if l.Outputs == nil {
		c.note("outputs", "the ledger records no outputs (written by an older cpi): run `cpi run` once to record them")
		return nil
	}
	before := len(c.problems)
	err := warehouse.VerifyOutputs(ctx, gen, l, true)
	var de *warehouse.DamageError
	switch {
	case errors.As(err, &de):
		for _, p := range de.Problems {
			c.fail("outputs", p)
		}
	case err != nil:
		return fmt.Errorf("check: %w", err)
	}
	known := map[string]bool{}
	files := 0
	for o, r := range l.Outputs {
		for _, f := range r.Files {
			known[f.Path] = true
			files++
		}
		// verifyOutputs has named the unrecorded files of recorded outputs.
		paths, err := warehouse.OutputFiles(gen, o)
		if err != nil {
			return fmt.Errorf("check %s: %w", o, err)
		}
		for _, p := range paths {
			known[p] = true
		}
	}
	// The data package is written with every generation, beside the table
	// folders: no stage's output, so in no record of the ledger.
	known[DataPackageFile] = true
	var extra []string
	for _, d := range []string{"tables", "reports"} {
		err := filepath.WalkDir(filepath.Join(gen, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(gen, p)
			if rel = filepath.ToSlash(rel); !known[rel] {
				extra = append(extra, rel)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", d, err)
		}
	}
	slices.Sort(extra)
	for _, p := range extra {
		c.fail("outputs", p+" is in no output the ledger records")
	}
	if len(c.problems) == before {
		c.ok("outputs", fmt.Sprintf("%d outputs, %d files hashed in full, as recorded", len(l.Outputs), files))
	}
	return nil
}

// archive checks every archived export against its name (its SHA-256) and
// its mode, and that every file of the ledger is archived.
func (c *checker) archive(ctx context.Context, wh *warehouse.Warehouse, l *warehouse.Ledger) error {
	entries, err := os.ReadDir(filepath.Join(wh.Dir, "archive"))
	if errors.Is(err, fs.ErrNotExist) {
		c.fail("archive", "the archive folder is missing")
		return nil
	}
	if err != nil {
		return fmt.Errorf("check archive: %w", err)
	}
	before := len(c.problems)
	archived := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || warehouse.IsTemp(name) {
			continue
		}
		if _, err := hex.DecodeString(name); err != nil || len(name) != 64 {
			c.fail("archive", "archive/"+name+" is not an export named by its SHA-256")
			continue
		}
		archived[name] = true
		p := filepath.Join(wh.Dir, "archive", name)
		info, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("check archive: %w", err)
		}
		if !info.Mode().IsRegular() {
			c.fail("archive", "archive/"+name+" is not a regular file")
			continue
		}
		if info.Mode().Perm()&0o222 != 0 {
			c.fail("archive", fmt.Sprintf("archive/%s is writable (%v); the archive is read-only", name, info.Mode().Perm()))
		}
		sha, _, err := warehouse.HashFile(ctx, p)
		if err != nil {
			return fmt.Errorf("check archive/%s: %w", name, err)
		}
		if sha != name {
			c.fail("archive", fmt.Sprintf("archive/%s does not hold the bytes received (%s)", name, archivedName(l, name)))
		}
	}
	unledgered := len(archived)
	if l != nil {
		for _, f := range l.Files {
			if !archived[f.SHA256] {
				c.fail("archive", fmt.Sprintf("archive/%s (%s) is missing", f.SHA256, f.Name))
			} else {
				unledgered--
			}
		}
		// A REDCap export split into the trusts' parts has no receipt of
		// its own: its parts' receipts (new or duplicate) cover it.
		split, err := ingest.SplitExports(wh)
		if err != nil {
			c.fail("archive", err.Error())
		}
		if _, err := ingest.SplitRecords(wh); err != nil {
			c.fail("archive", err.Error())
		}
		received := map[string]bool{}
		for _, rc := range l.Receipts {
			received[rc.SHA256] = true
		}
		for sha, x := range split {
			covered := archived[sha] && l.File(sha) == nil && len(x.Parts) > 0
			for _, p := range x.Parts {
				covered = covered && received[p]
			}
			if covered {
				unledgered--
			}
		}
	}
	if len(c.problems) == before {
		c.ok("archive", fmt.Sprintf("%d exports, each hashed: the bytes received, read-only", len(archived)))
	}
	if l != nil && unledgered > 0 {
		c.note("archive", fmt.Sprintf("%d exports archived by runs that did not commit (kept; a later run or cpi rebuild may use them)", unledgered))
	}
	return nil
}

func archivedName(l *warehouse.Ledger, sha string) string {
	if l != nil {
		if f := l.File(sha); f != nil {
			return f.Name
		}
	}
	return "not in the ledger"
}

// records checks the archive's records of receipts and accepts: readable,
// read-only, naming archived exports, and in agreement with the ledger:
// every receipt of the ledger has its record, and the record of a file's
// first arrival says what its ledger entry says.
func (c *checker) records(wh *warehouse.Warehouse, l *warehouse.Ledger) error {
	recs, bad, err := wh.ReadArchiveRecords()
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	before := len(c.problems)
	for _, b := range bad {
		c.fail("records", b)
	}
	for _, r := range recs {
		rel := "archive/receipts/" + r.File
		info, err := os.Stat(filepath.Join(wh.ReceiptsDir(), r.File))
		if err != nil {
			return fmt.Errorf("check %s: %w", rel, err)
		}
		if info.Mode().Perm()&0o222 != 0 {
			c.fail("records", rel+" is writable; the archive is read-only")
		}
		a, err := os.Stat(wh.ArchivePath(r.SHA256))
		switch {
		case err != nil:
			c.fail("records", fmt.Sprintf("%s names %s, whose export is not in the archive", rel, r.Name))
		case a.Size() != r.Size:
			c.fail("records", fmt.Sprintf("%s gives %s %d bytes, the archive holds %d", rel, r.Name, r.Size, a.Size()))
		}
	}
	committed := 0
	if l != nil {
		ix := warehouse.IndexReceipts(recs)
		for _, rc := range l.Receipts {
			i := ix.Find(rc)
			if i < 0 {
				c.fail("records", fmt.Sprintf("the receipt of %s in run %d has no record in the archive (cpi rebuild writes it from the ledger)", rc.Name, rc.RunID))
				continue
			}
			committed++
			if f := l.FileFor(rc); rc.Status == warehouse.ReceiptNew && (f == nil || recs[i].Seq != f.Seq) {
				c.fail("records", fmt.Sprintf("archive/receipts/%s disagrees with the ledger's entry for %s", recs[i].File, rc.Name))
			}
		}
		for _, r := range recs {
			if r.Kind == warehouse.RecordAccept && l.File(r.SHA256) == nil {
				c.fail("records", fmt.Sprintf("archive/receipts/%s accepts %s, which the ledger never received", r.File, r.Name))
			}
		}
	}
	if len(c.problems) == before {
		c.ok("records", fmt.Sprintf("%d receipt and accept records, read-only, in agreement with the ledger", len(recs)))
	}
	accepts := 0
	for _, r := range recs {
		if r.Kind == warehouse.RecordAccept {
			accepts++
		}
	}
	if l != nil && len(recs)-accepts > committed {
		c.note("records", fmt.Sprintf("%d receipts of run attempts that did not commit (cpi rebuild leaves them out)", len(recs)-accepts-committed))
	}
	return nil
}
