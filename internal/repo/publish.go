package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/repo/rpmmd"
	"github.com/criu-forge/criu-forge/internal/signing"
)

// Names in the repository directory.
const (
	genDir      = ".gen"
	currentLink = "current"
	stateFile   = "state.json"
	lockFile    = ".lock"
	poolDir     = "pool"
	distsDir    = "dists"
	// KeyringName is the binary public keyring for apt's signed-by; the
	// same key armored is KeyringName with .asc instead of .gpg.
	KeyringName   = "criu-forge-archive-keyring.gpg"
	keyringArmor  = "criu-forge-archive-keyring.asc"
	stateFormat   = 1
	defaultOrigin = "criu-forge"
)

// Input is one package to publish. Suite "" means: take it from the distro
// tag of the package's version (see TargetSuites).
type Input struct {
	Path  string
	Suite string
}

// PublishOptions says what to publish where.
type PublishOptions struct {
	Dir      string
	Packages []Input
	Signer   *signing.Signer
	// Keep is how many versions of each package (per apt suite or yum
	// release, and architecture) stay published; 0 keeps all.
	Keep int
	// Origin and Label go into every Release ("criu-forge" by default).
	Origin, Label string
	// Architectures, when set, are the only architectures a package may
	// have (besides "all"); by default a suite gets the architectures of
	// its packages.
	Architectures []string
	Log           io.Writer        // progress, one line per change; nil = quiet
	Now           func() time.Time // Release dates; nil = time.Now
}

// Report says what a publish changed.
type Report struct {
	Generation int      // the live metadata generation
	Added      []string // suite/name_version_arch
	Unchanged  []string // already published with the same content
	Removed    []string // dropped by Keep
	Deleted    []string // pool files no longer referenced, deleted
	Suites     []string // every published apt suite, then yum/<release>/<arch>
}

// record is one package in one suite.
type record struct {
	Suite    string   `json:"suite"`
	Filename string   `json:"filename"` // pool path, relative to the repository root
	Deb      *debInfo `json:"deb"`
	source   string   // the input file, until it is copied into the pool
}

func (r *record) id() string {
	return r.Suite + "/" + r.Deb.Package + "_" + r.Deb.Version + "_" + r.Deb.Arch
}

// suiteState remembers what produced a suite's dists/ files, so an
// unchanged suite is hard-linked into the next generation, not rebuilt.
type suiteState struct {
	Digest string   `json:"digest"`
	Archs  []string `json:"archs"`
	Files  []string `json:"files"`   // own files, relative to dists/<suite>/
	ByHash []string `json:"by_hash"` // own by-hash files (carried one generation further)
	Chunks []string `json:"chunks"`  // compressed index chunks (see chunks.go)
}

// state is the content of one generation, stored in it (so it switches
// together with the metadata it describes).
type state struct {
	Format     int                    `json:"format"`
	Generation int                    `json:"generation"`
	Debs       []*record              `json:"debs"`
	Suites     map[string]*suiteState `json:"suites"`
	Rpms       []*rpmRecord           `json:"rpms,omitempty"`
	Yum        map[string]string      `json:"yum,omitempty"` // digest of each yum/<release>/<arch>
}

// Publish adds packages to the repository in opts.Dir and switches it to a
// new, signed metadata generation. See the package documentation for the
// guarantees.
func Publish(ctx context.Context, opts PublishOptions) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("publish: create repository %s: %w", dir, err)
	}
	lock, err := fsutil.Acquire(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", dir, err)
	}
	defer lock.Release()

	if err := checkRootLinks(dir); err != nil {
		return nil, err
	}
	cur, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	if err := cleanLeftovers(dir, cur, opts.Log); err != nil {
		return nil, err
	}
	if cur.Generation > 0 {
		// A publish killed right after its switch may not have made these.
		if err := ensureRootLinks(dir); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	started := time.Now()
	next, report, err := plan(cur, &opts)
	if err != nil {
		return nil, err
	}
	report.Generation = cur.Generation
	digests := suiteDigests(next, &opts)
	if len(report.Added) == 0 && len(report.Removed) == 0 && cur.Generation > 0 && sameDigests(cur, digests) && sameYum(cur, yumPlans(next, &opts)) {
		fmt.Fprintf(opts.Log, "nothing to publish: generation %d stays live\n", cur.Generation)
		report.Suites = sortedSuites(cur)
		return report, nil
	}

	// Pool files first: the new metadata may only name files that exist.
	// The intent file lets the next publish delete what a killed one added
	// to the pool or had yet to delete from it.
	added, dropped := poolChanges(cur, next)
	if err := writeIntent(dir, intent{Pool: append(slices.Clone(added), dropped...)}); err != nil {
		return nil, err
	}
	written, touchedDirs, err := copyNewToPool(dir, next, added)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	read, pooled := started, time.Now()
	next.Generation = cur.Generation + 1
	g, err := writeGeneration(dir, cur, next, digests, &opts)
	if err != nil {
		os.RemoveAll(genPath(dir, next.Generation))
		return nil, err
	}
	// Everything the new generation names is made durable in one parallel
	// round (a power cut must not leave a switched link to lost files).
	g.files = append(g.files, written...)
	g.files = append(g.files, intentPath(dir))
	for _, d := range append(touchedDirs, filepath.Join(dir, genDir)) {
		g.dirs[d] = true
	}
	if err := g.sync(); err != nil {
		return nil, err
	}
	if err := switchGeneration(dir, next.Generation); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "generation %d is live (packages read and pooled in %v, metadata in %v)\n", next.Generation, pooled.Sub(read).Round(time.Millisecond), time.Since(pooled).Round(time.Millisecond))
	report.Generation = next.Generation
	report.Suites = sortedSuites(next)

	// Only now may what the old metadata names go away.
	if err := retire(dir, cur, next, dropped, report, opts.Log); err != nil {
		return report, fmt.Errorf("%w (the next publish retries)", err)
	}
	return report, nil
}

// poolChanges lists the pool files next adds and those it no longer names.
func poolChanges(cur, next *state) (added, dropped []string) {
	referenced, live := poolFiles(next), poolFiles(cur)
	seen := map[string]bool{}
	add := func(filename, source string) {
		if source != "" && !live[filename] && !seen[filename] {
			seen[filename] = true
			added = append(added, filename)
		}
	}
	for _, r := range next.Debs {
		add(r.Filename, r.source)
	}
	for _, r := range next.Rpms {
		add(r.Filename, r.source)
	}
	for f := range live {
		if !referenced[f] {
			dropped = append(dropped, f)
		}
	}
	sort.Strings(dropped)
	return added, dropped
}

// copyNewToPool copies the added packages into the pool and returns the
// files and directories to fsync before the switch.
func copyNewToPool(dir string, next *state, added []string) (written, dirs []string, err error) {
	pending := map[string]bool{}
	for _, f := range added {
		pending[f] = true
	}
	pool := func(filename, source, sha string) error {
		if source == "" || !pending[filename] {
			return nil
		}
		delete(pending, filename) // the same file in a second suite
		p, err := copyToPool(dir, filename, source, sha)
		if p != "" {
			written = append(written, p)
			dirs = append(dirs, parentsBelow(dir, p)...)
		}
		return err
	}
	for _, r := range next.Debs {
		if err := pool(r.Filename, r.source, r.Deb.SHA256); err != nil {
			return nil, nil, err
		}
	}
	for _, r := range next.Rpms {
		if err := pool(r.Filename, r.source, r.SHA256); err != nil {
			return nil, nil, err
		}
		if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(r.Filename))); err == nil && r.pkg != nil {
			r.pkg.FileTime = fi.ModTime().Unix() // what rpmmd compares with the pool file's hard links later
		}
	}
	return written, dirs, nil
}

// retire removes, after the switch, the old generation, the pool files and
// index chunks the new one does not name, and the intent file.
func retire(dir string, cur, next *state, dropped []string, report *Report, log io.Writer) error {
	if cur.Generation > 0 {
		if err := os.RemoveAll(genPath(dir, cur.Generation)); err != nil {
			return fmt.Errorf("remove old generation %d: %w", cur.Generation, err)
		}
	}
	for _, f := range dropped {
		if err := removePoolFile(dir, f); err != nil {
			return fmt.Errorf("delete %s: %w", f, err)
		}
		report.Deleted = append(report.Deleted, f)
		fmt.Fprintf(log, "delete %s\n", f)
	}
	if err := pruneChunks(filepath.Join(dir, genDir, chunksDir), next); err != nil {
		return fmt.Errorf("prune index chunks: %w", err)
	}
	if err := os.Remove(intentPath(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// intent lists the pool files a publish may leave unreferenced if it is
// killed: those it adds, and those it deletes after the switch.
type intent struct {
	Pool []string `json:"pool"`
}

func intentPath(dir string) string { return filepath.Join(dir, genDir, "intent.json") }

func writeIntent(dir string, in intent) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	// Written aside and renamed; fsynced with the new generation, before
	// the switch (a killed process loses nothing of the page cache).
	tmp := intentPath(dir) + ".tmp"
	if err := os.MkdirAll(filepath.Dir(tmp), 0o755); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := os.Rename(tmp, intentPath(dir)); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// parentsBelow lists the directories from p's up to (not including) dir.
func parentsBelow(dir, p string) []string {
	var out []string
	for d := filepath.Dir(p); d != dir && strings.HasPrefix(d, dir); d = filepath.Dir(d) {
		out = append(out, d)
	}
	return out
}

// removePoolFile deletes a pool file (and temporary files beside it) and
// the directories that become empty. rel comes from our own state or
// intent file, but is still checked to stay inside pool/.
func removePoolFile(dir, rel string) error {
	p, err := fsutil.SafeJoin(dir, filepath.FromSlash(rel))
	if err != nil || !strings.HasPrefix(rel, poolDir+"/") {
		return fmt.Errorf("%q is not a pool file", rel)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	for d := filepath.Dir(p); d != filepath.Join(dir, poolDir) && strings.HasPrefix(d, dir); d = filepath.Dir(d) {
		if os.Remove(d) != nil { // not empty
			break
		}
	}
	return nil
}

// check validates the options and fills in the defaults.
func (opts *PublishOptions) check() error {
	if opts.Dir == "" {
		return errors.New("publish: no repository directory given")
	}
	if opts.Signer == nil {
		return errors.New("publish: no signing key: a repository is only published signed (give a key file or environment variable)")
	}
	if opts.Origin == "" {
		opts.Origin = defaultOrigin
	}
	if opts.Label == "" {
		opts.Label = opts.Origin
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Keep < 0 {
		return fmt.Errorf("publish: keep %d: must be 0 (all) or more", opts.Keep)
	}
	for _, f := range []string{opts.Origin, opts.Label} {
		if strings.ContainsAny(f, "\n\r") {
			return errors.New("publish: Origin and Label must be one line")
		}
	}
	return nil
}

func genPath(dir string, n int) string { return filepath.Join(dir, genDir, strconv.Itoa(n)) }

// loadState reads the live generation's state; an empty repository has
// generation 0.
func loadState(dir string) (*state, error) {
	empty := &state{Format: stateFormat, Suites: map[string]*suiteState{}}
	target, err := os.Readlink(filepath.Join(dir, genDir, currentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	}
	n, err := strconv.Atoi(target)
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("repository %s: %s/%s points to %q, not a generation: the repository was changed by hand", dir, genDir, currentLink, target)
	}
	data, err := os.ReadFile(filepath.Join(genPath(dir, n), stateFile))
	if err != nil {
		return nil, fmt.Errorf("repository %s: live generation %d has no readable state: %w", dir, n, err)
	}
	st := &state{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("repository %s: state of generation %d is damaged: %w", dir, n, err)
	}
	if st.Format != stateFormat || st.Generation != n {
		return nil, fmt.Errorf("repository %s: state of generation %d has format %d, generation %d: made by another criu-forge version?", dir, n, st.Format, st.Generation)
	}
	if st.Suites == nil {
		st.Suites = map[string]*suiteState{}
	}
	for _, r := range st.Debs {
		if r.Deb == nil {
			return nil, fmt.Errorf("repository %s: state of generation %d is damaged: package record without data", dir, n)
		}
	}
	return st, nil
}

// cleanLeftovers removes what an interrupted publish may have left: pool
// files its intent file names that the live state does not, temporary
// files, an unswitched generation, a half-made link, old generations.
func cleanLeftovers(dir string, cur *state, log io.Writer) error {
	if data, err := os.ReadFile(intentPath(dir)); err == nil {
		var in intent
		if err := json.Unmarshal(data, &in); err != nil {
			return fmt.Errorf("repository %s: damaged %s: %w", dir, intentPath(dir), err)
		}
		live := poolFiles(cur)
		for _, f := range in.Pool {
			if live[f] {
				continue
			}
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f))); err == nil {
				fmt.Fprintf(log, "clean up %s (left by an interrupted publish)\n", f)
			}
			if err := removePoolFile(dir, f); err != nil {
				return fmt.Errorf("clean up %s: %w", f, err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := pruneChunks(filepath.Join(dir, genDir, chunksDir), cur); err != nil {
		return fmt.Errorf("clean up index chunks: %w", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, genDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if e.Name() == currentLink || e.Name() == chunksDir || e.Name() == strconv.Itoa(cur.Generation) {
			continue
		}
		fmt.Fprintf(log, "clean up %s/%s (left by an interrupted publish)\n", genDir, e.Name())
		if err := os.RemoveAll(filepath.Join(dir, genDir, e.Name())); err != nil {
			return fmt.Errorf("clean up %s: %w", e.Name(), err)
		}
	}
	return nil
}

func poolFiles(st *state) map[string]bool {
	m := map[string]bool{}
	for _, r := range st.Debs {
		m[r.Filename] = true
	}
	for _, r := range st.Rpms {
		m[r.Filename] = true
	}
	return m
}

// plan reads the inputs and computes the next state; it changes nothing on
// disk, so bad input leaves the repository as it was.
func plan(cur *state, opts *PublishOptions) (*state, *Report, error) {
	report := &Report{}
	next := &state{Format: stateFormat, Suites: cur.Suites}
	next.Debs = append(next.Debs, cur.Debs...)
	next.Rpms = append(next.Rpms, cur.Rpms...)
	rpmByFile := map[string]*rpmRecord{}
	rpmByNEVRA := map[string]*rpmRecord{}
	for _, r := range cur.Rpms {
		rpmByFile[r.Filename] = r
		rpmByNEVRA[r.Release+" "+r.NEVRA] = r
	}
	byFile := map[string]*record{}
	bySuiteFile := map[string]bool{}
	for _, r := range cur.Debs {
		byFile[r.Filename] = r
		bySuiteFile[r.Suite+"\x00"+r.Filename] = true
	}
	allowed := map[string]bool{"all": true}
	for _, a := range opts.Architectures {
		allowed[a] = true
	}
	var errs []error
	for _, in := range opts.Packages {
		if strings.HasSuffix(in.Path, ".rpm") {
			r, err := readRPMInput(in)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			old := rpmByFile[r.Filename]
			if old == nil {
				old = rpmByNEVRA[r.Release+" "+r.NEVRA]
			}
			switch {
			case old != nil && old.SHA256 != r.SHA256:
				errs = append(errs, fmt.Errorf("%s: %s is already published in %s with other content (sha256 %s, this file %s): a published version never changes, bump the release", in.Path, r.NEVRA, r.Release, old.SHA256, r.SHA256))
			case old != nil:
				report.Unchanged = append(report.Unchanged, r.id())
				fmt.Fprintf(opts.Log, "unchanged %s\n", r.id())
			default:
				rpmByFile[r.Filename], rpmByNEVRA[r.Release+" "+r.NEVRA] = r, r
				next.Rpms = append(next.Rpms, r)
				report.Added = append(report.Added, r.id())
			}
			continue
		}
		r, err := readInput(in)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(opts.Architectures) > 0 && !allowed[r.Deb.Arch] {
			errs = append(errs, fmt.Errorf("%s: architecture %s is not one of this repository's (%s)", in.Path, r.Deb.Arch, strings.Join(opts.Architectures, ", ")))
			continue
		}
		if old, ok := byFile[r.Filename]; ok && old.Deb.SHA256 != r.Deb.SHA256 {
			what := "already published"
			if old.source != "" {
				what = "also given as " + old.source
			}
			errs = append(errs, fmt.Errorf("%s: %s %s (%s) is %s with other content (sha256 %s, this file %s): a published version never changes, build it with a new version", in.Path, r.Deb.Package, r.Deb.Version, r.Deb.Arch, what, old.Deb.SHA256, r.Deb.SHA256))
			continue
		}
		key := r.Suite + "\x00" + r.Filename
		if bySuiteFile[key] {
			report.Unchanged = append(report.Unchanged, r.id())
			fmt.Fprintf(opts.Log, "unchanged %s\n", r.id())
			continue
		}
		bySuiteFile[key] = true
		if _, ok := byFile[r.Filename]; !ok {
			byFile[r.Filename] = r
		}
		next.Debs = append(next.Debs, r)
		report.Added = append(report.Added, r.id())
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("publish: nothing changed: %w", errors.Join(errs...))
	}
	if opts.Keep > 0 {
		var removed []string
		var debs []*record
		next.Debs, debs = keepNewest(next.Debs, opts.Keep,
			func(r *record) string { return r.Suite + "\x00" + r.Deb.Package + "\x00" + r.Deb.Arch },
			func(a, b *record) int { return compareVersions(a.Deb.Version, b.Deb.Version) })
		for _, r := range debs {
			removed = append(removed, r.id())
		}
		var rpms []*rpmRecord
		next.Rpms, rpms = keepNewest(next.Rpms, opts.Keep,
			func(r *rpmRecord) string { return r.Release + "\x00" + r.Name + "\x00" + r.Arch },
			func(a, b *rpmRecord) int { return rpmmd.CompareEVR(a.evr(), b.evr()) })
		for _, r := range rpms {
			removed = append(removed, r.id())
		}
		for _, id := range removed {
			if i := slices.Index(report.Added, id); i >= 0 {
				report.Added = slices.Delete(report.Added, i, i+1)
				fmt.Fprintf(opts.Log, "skip %s: older than the %d kept versions\n", id, opts.Keep)
				continue
			}
			report.Removed = append(report.Removed, id)
		}
	}
	for _, id := range report.Added {
		fmt.Fprintf(opts.Log, "add %s\n", id)
	}
	for _, id := range report.Removed {
		fmt.Fprintf(opts.Log, "remove %s (keep %d)\n", id, opts.Keep)
	}
	return next, report, nil
}

// readInput reads one package file into a record (not yet in the pool).
func readInput(in Input) (*record, error) {
	d, err := readDeb(in.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Path, err)
	}
	suite := in.Suite
	if suite == "" {
		if suite, err = SuiteForVersion(d.Version); err != nil {
			return nil, fmt.Errorf("%s: %w", in.Path, err)
		}
	}
	if !suiteName.MatchString(suite) {
		return nil, fmt.Errorf("%s: %q is not a suite name", in.Path, suite)
	}
	return &record{Suite: suite, Filename: d.poolPath(), Deb: d, source: in.Path}, nil
}

// keepNewest keeps the newest n records of each group (by compare, newest
// first) and returns the kept, in their first order of groups, and the
// dropped: --keep for apt suites (Debian version order, per suite, package
// and architecture) and yum releases (rpm order, per release, name and
// architecture) alike.
func keepNewest[T any](recs []T, n int, group func(T) string, compare func(a, b T) int) (kept, removed []T) {
	groups := map[string][]T{}
	var order []string
	for _, r := range recs {
		k := group(r)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		g := groups[k]
		sort.SliceStable(g, func(i, j int) bool { return compare(g[i], g[j]) > 0 })
		if len(g) > n {
			removed = append(removed, g[n:]...)
			g = g[:n]
		}
		kept = append(kept, g...)
	}
	return kept, removed
}

// copyToPool copies a new package into the pool (aside, then renamed), and
// checks that the bytes are the ones that were read and validated. It
// returns the file to fsync before the switch.
func copyToPool(dir, filename, source, sha string) (string, error) {
	dst := filepath.Join(dir, filepath.FromSlash(filename))
	if err := fsutil.InsideRoot(dir, dst); err != nil {
		return "", err
	}
	if _, err := os.Lstat(dst); err == nil {
		return "", nil // referenced by the live state with this very hash
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	src, err := os.Open(source)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != sha {
			err = fmt.Errorf("%s changed while being published (sha256 %s, read as %s)", source, got, sha)
		}
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("copy %s into the pool: %w", source, err)
	}
	return dst, nil
}

// sortedSuites names the apt suites, then the yum repositories
// (yum/<release>/<arch>).
func sortedSuites(st *state) []string {
	var s, y []string
	for name := range st.Suites {
		s = append(s, name)
	}
	for key := range st.Yum {
		y = append(y, yumDir+"/"+key)
	}
	sort.Strings(s)
	sort.Strings(y)
	return append(s, y...)
}
