package warehouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gofrs/flock"
)

// File and folder modes of everything cpi writes (DESIGN §11).
const (
	FileMode    fs.FileMode = 0o640
	ArchiveMode fs.FileMode = 0o440
	dirMode     fs.FileMode = 0o750
)

// The warehouse's layout. Everything a run changes lives in a generation
// folder gen/NNNNNNNN; the symlink "current" names the committed one and is
// switched by a single rename, so a reader sees the warehouse as before a run
// or as after it, never between. tables, ledger, problems and reports are
// fixed symlinks through current.
//
//	W/archive/<sha256>   every export received, byte for byte, read-only
//	W/archive/receipts/  a read-only record of every arrival and accept
//	W/gen/<n>/…          generations
//	W/current            -> gen/<n>
//	W/tables             -> current/tables
//	W/ledger             -> current/ledger
//	W/problems           -> current/problems
//	W/reports            -> current/reports
//	W/.lock              the run lock
var WarehouseLinks = []string{"tables", "ledger", "problems", "reports"}

// ErrLocked is returned when another cpi process holds the warehouse.
var ErrLocked = errors.New("another cpi run holds the warehouse lock; try again when it has finished")

// Warehouse is an open warehouse folder.
type Warehouse struct {
	Dir  string
	lock *flock.Flock
}

// OpenWarehouse opens (and with create, makes) the warehouse at dir. It takes
// no lock; Lock does.
func OpenWarehouse(dir string, create bool) (*Warehouse, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("warehouse %s: %w", dir, err)
	}
	w := &Warehouse{Dir: abs}
	if _, err := os.Stat(filepath.Join(abs, "current")); err == nil {
		return w, nil
	}
	if !create {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("warehouse %s: %w", dir, err)
		}
		return nil, fmt.Errorf("warehouse %s: not a warehouse yet (run cpi ingest or cpi run first)", dir)
	}
	for _, d := range []string{abs, filepath.Join(abs, "archive"), filepath.Join(abs, "gen")} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("create warehouse: %w", err)
		}
	}
	return w, nil
}

// Lock takes the run lock without waiting. The lock is an flock on W/.lock:
// the kernel releases it when the process dies, so a crashed run never
// leaves it stuck.
func (w *Warehouse) Lock() error {
	w.lock = flock.New(filepath.Join(w.Dir, ".lock"), flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(FileMode))
	ok, err := w.lock.TryLock()
	if err != nil {
		return fmt.Errorf("lock warehouse: %w", err)
	}
	if !ok {
		return ErrLocked
	}
	return nil
}

// Unlock releases the run lock.
func (w *Warehouse) Unlock() {
	if w.lock != nil {
		_ = w.lock.Unlock()
	}
}

// currentGen is the committed generation number, 0 when there is none.
func (w *Warehouse) currentGen() (int, error) {
	target, err := os.Readlink(filepath.Join(w.Dir, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read current generation: %w", err)
	}
	n, err := strconv.Atoi(filepath.Base(target))
	if err != nil {
		return 0, fmt.Errorf("current generation %q is not a number", target)
	}
	return n, nil
}

// CurrentDir is the folder of the committed generation ("" when none).
func (w *Warehouse) CurrentDir() (string, error) {
	n, err := w.currentGen()
	if err != nil || n == 0 {
		return "", err
	}
	return w.GenDir(n), nil
}

func (w *Warehouse) GenDir(n int) string {
	return filepath.Join(w.Dir, "gen", fmt.Sprintf("%08d", n))
}

// ArchivePath is where an export with the given SHA-256 is kept.
func (w *Warehouse) ArchivePath(sha string) string { return filepath.Join(w.Dir, "archive", sha) }

// ErrFileChanged is returned by Archive when the file's bytes are no longer
// those hashed: it is still being written.
var ErrFileChanged = errors.New("file changed since it was hashed")

// Archive copies the file at src into the archive under its SHA-256 (already
// known), read-only. The archive is content-addressed and append-only, so a
// copy left by a crashed run is the same bytes a later run would write.
func (w *Warehouse) Archive(ctx context.Context, src, sha string) error {
	dst := w.ArchivePath(sha)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("archive %s: %w", filepath.Base(src), err)
	}
	defer in.Close()
	err = WriteFileAtomic(dst, ArchiveMode, func(out io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, in}); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sha {
			return fmt.Errorf("%w (hash %s, then %s)", ErrFileChanged, sha[:12], got[:12])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", filepath.Base(src), err)
	}
	return nil
}

// Tx is a generation being written. Nothing a Tx writes is visible until
// Commit; Rollback (or a crash) leaves the warehouse as it was.
type Tx struct {
	W       *Warehouse
	gen     int
	Dir     string
	hooks   CrashHooks
	mu      sync.Mutex      // guards written: stages may write files from several goroutines
	written map[string]bool // tables rewritten in this generation
	// Switched is set once "current" names this generation.
	Switched bool
	// attempt marks the archive records this run attempt writes.
	attempt string
	// Ledger is the ledger as of the last committed generation; stages add
	// to it and Commit writes it with the tables.
	Ledger *Ledger
	// Summary collects what the run did, for the run summary and the ledger.
	Summary *Summary
}

// CrashHooks lets tests stop a run at a named write step.
type CrashHooks interface{ Step(name string) error }

// Begin starts a new generation: a copy of the current one made of hard
// links (cheap), into which stages write new files by temp-and-rename, never
// in place, so the old generation's files are never changed.
func (w *Warehouse) Begin(hooks CrashHooks) (*Tx, error) {
	cur, err := w.currentGen()
	if err != nil {
		return nil, err
	}
	if err := w.removeUncommitted(cur); err != nil {
		return nil, err
	}
	tx := &Tx{W: w, gen: cur + 1, Dir: w.GenDir(cur + 1), hooks: hooks, written: map[string]bool{}}
	if cur > 0 {
		if tx.Ledger, err = ReadLedger(w.GenDir(cur)); err != nil {
			return nil, err
		}
	} else {
		tx.Ledger = &Ledger{}
	}
	tx.Summary = NewSummary(tx.Ledger.NextRunID())
	if cur > 0 {
		err = linkTree(w.GenDir(cur), tx.Dir)
	} else {
		err = os.MkdirAll(tx.Dir, dirMode)
	}
	if err != nil {
		return nil, fmt.Errorf("start generation: %w", err)
	}
	for _, d := range WarehouseLinks {
		if err := os.MkdirAll(filepath.Join(tx.Dir, d), dirMode); err != nil {
			return nil, fmt.Errorf("start generation: %w", err)
		}
	}
	return tx, nil
}

// BeginFresh starts an empty generation, built from nothing the current
// generation holds (which may be damaged: that is what `cpi rebuild` is
// for), with an empty ledger. Leftovers of a run that crashed before its
// switch are removed as Begin does; when "current" is missing or unreadable
// no generation is removed and the new one is numbered after the highest.
func (w *Warehouse) BeginFresh(hooks CrashHooks) (*Tx, error) {
	if err := os.MkdirAll(filepath.Join(w.Dir, "gen"), dirMode); err != nil {
		return nil, fmt.Errorf("start generation: %w", err)
	}
	cur, err := w.currentGen()
	if err != nil {
		cur = 0
	}
	if cur > 0 {
		if err := w.removeUncommitted(cur); err != nil {
			return nil, err
		}
	}
	top := cur
	entries, err := os.ReadDir(filepath.Join(w.Dir, "gen"))
	if err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > top {
			top = n
		}
	}
	tx := &Tx{W: w, gen: top + 1, Dir: w.GenDir(top + 1), hooks: hooks, written: map[string]bool{}, Ledger: &Ledger{}}
	for _, d := range WarehouseLinks {
		if err := os.MkdirAll(filepath.Join(tx.Dir, d), dirMode); err != nil {
			return nil, fmt.Errorf("start generation: %w", err)
		}
	}
	return tx, nil
}

// Step gives a test hook the chance to stop the run here.
func (tx *Tx) Step(name string) error {
	if tx.hooks == nil {
		return nil
	}
	return tx.hooks.Step(name)
}

// Path is a path inside the generation.
func (tx *Tx) Path(elem ...string) string {
	return filepath.Join(append([]string{tx.Dir}, elem...)...)
}

// Written lists the tables rewritten in this generation, sorted.
func (tx *Tx) Written() []string {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	out := make([]string, 0, len(tx.written))
	for t := range tx.written {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Commit makes the generation current: sync it, then switch the "current"
// symlink with one rename, then remove generations older than the previous
// one (kept so a reader that started before the switch can finish).
func (tx *Tx) Commit() error {
	if err := tx.Ledger.write(tx); err != nil {
		return err
	}
	if err := tx.Step("commit:sync"); err != nil {
		return err
	}
	if err := syncTree(tx.Dir); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := tx.Step("commit:switch"); err != nil {
		return err
	}
	tmp := filepath.Join(tx.W.Dir, ".current.tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join("gen", filepath.Base(tx.Dir)), tmp); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(tx.W.Dir, "current")); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	tx.Switched = true
	if err := syncDir(tx.W.Dir); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, l := range WarehouseLinks {
		p := filepath.Join(tx.W.Dir, l)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(filepath.Join("current", l), p); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
	}
	if err := tx.Step("commit:cleanup"); err != nil {
		return err
	}
	return tx.W.removeOld(tx.gen)
}

// Rollback abandons the generation, unless it has become current: once
// the switch is made nothing deletes it.
func (tx *Tx) Rollback() {
	if tx.Switched {
		return
	}
	_ = os.RemoveAll(tx.Dir)
}

// removeUncommitted deletes generations newer than the committed one: the
// leftovers of a run that crashed before its switch.
func (w *Warehouse) removeUncommitted(cur int) error {
	return w.removeGens(func(n int) bool { return n > cur })
}

func (w *Warehouse) removeOld(cur int) error {
	return w.removeGens(func(n int) bool { return n < cur-1 })
}

func (w *Warehouse) removeGens(drop func(int) bool) error {
	entries, err := os.ReadDir(filepath.Join(w.Dir, "gen"))
	if err != nil {
		return fmt.Errorf("list generations: %w", err)
	}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || !drop(n) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(w.Dir, "gen", e.Name())); err != nil {
			return fmt.Errorf("remove generation %s: %w", e.Name(), err)
		}
	}
	return nil
}

// linkTree recreates src's folders under dst and hard-links its files.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, dirMode)
		}
		return os.Link(p, target)
	})
}

func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		return nil
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// CheckPathElem refuses text that is to become one element of a path in the
// warehouse or an output folder (a trust or team code, a table or file name)
// unless it is a plain name: not empty, not . or .., no separator, no
// control character. The study definition is checked when it is loaded
// (schemas.Load); this is the path builders' own guard.
func CheckPathElem(what, s string) error {
	bad := s == "" || s == "." || s == ".." || len(s) > 255 || strings.ContainsAny(s, `/\`) || strings.ContainsRune(s, filepath.Separator)
	for _, r := range s {
		bad = bad || r < 0x20 || r == 0x7f
	}
	if bad {
		return fmt.Errorf("%s %q is not a plain file name", what, truncate(s, 40))
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// WriteFileAtomic writes a file by writing a temporary file beside it,
// syncing it and renaming it into place.
func WriteFileAtomic(path string, mode fs.FileMode, write func(io.Writer) error) error {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return fmt.Errorf("%s is a folder, not a file", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := write(f); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		var le *os.LinkError
		if errors.As(err, &le) {
			err = fmt.Errorf("write %s: %w", path, le.Err) // not the temporary file's name
		}
		return err
	}
	return nil
}

// IsTemp reports whether a file name is one of writeFileAtomic's temporaries.
func IsTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp") }

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func HashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ReadableLedger is the current generation's ledger, or nil when it is
// missing or cannot be read (said in the log).
func (w *Warehouse) ReadableLedger(env Env) *Ledger {
	gen, err := w.CurrentDir()
	if err == nil && gen == "" {
		err = errors.New("no current generation")
	}
	var l *Ledger
	if err == nil {
		l, err = ReadLedger(gen)
	}
	if err != nil {
		env.Logger().Warn("rebuild: no readable ledger; rebuilding from the archive's records alone (the run history is lost)", "error", err)
		return nil
	}
	return l
}
