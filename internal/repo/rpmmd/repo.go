package rpmmd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// StateFile is the state cache inside repodata/: the Package records the
// metadata was made from, so the next publish reads only new packages. It
// is JSON Lines: the header line stateHeader, then one Package per line
// (JSON escapes newlines inside strings), so that records can be decoded
// in parallel and copied unchanged into the next state.
const StateFile = "rpmmd-state.jsonl"

const stateHeader = `{"rpmmd-state":1}`

// parseState splits a state file into its records; ok is false for a
// file of another format or version.
func parseState(data []byte) (records [][]byte, ok bool) {
	header, rest, _ := bytes.Cut(data, []byte("\n"))
	if string(header) != stateHeader {
		return nil, false
	}
	for line := range bytes.SplitSeq(rest, []byte("\n")) {
		if len(line) > 0 {
			records = append(records, line)
		}
	}
	return records, true
}

// stateRecord is a package record as read from the state file.
type stateRecord struct {
	pkg *Package // as stored in the Repo; a different pointer means changed
	raw []byte
}

// Repo is the set of packages of one yum repository (one distro release).
// It is not safe for concurrent use; callers serialize publishes to one
// directory with a lock.
type Repo struct {
	dir     string
	byHref  map[string]*Package
	byNEVRA map[string]*Package
	records map[string]stateRecord // by href
	// Timestamp, when set (Unix seconds), is the revision and timestamp
	// written into repomd.xml. When zero, the newest package file time is
	// used, so the same packages always give the same bytes.
	Timestamp int64
}

// Open loads the repository rooted at dir (Packages/ and repodata/ below
// it). With a state file, each recorded package is checked by a stat
// (size and mtime, as createrepo_c --update does): a package whose file is
// gone is dropped and one that changed is read again; the others are not
// read. Without a state file (a new repository, or one made by another
// tool), every .rpm below dir is read.
func Open(dir string) (*Repo, error) {
	r := &Repo{dir: dir, byHref: map[string]*Package{}, byNEVRA: map[string]*Package{}, records: map[string]stateRecord{}}
	data, err := os.ReadFile(filepath.Join(dir, "repodata", StateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return r.finish(r.scan())
	case err != nil:
		return nil, fmt.Errorf("open yum repository %s: %w", dir, err)
	}
	lines, ok := parseState(data)
	if !ok {
		// The state is only a cache of what the .rpm files say.
		return r.finish(r.scan())
	}
	// Decode and stat in parallel: this is most of the time of adding one
	// package to a large repository.
	type checked struct {
		pkg     *Package
		bad     bool // undecodable or unsafe: rebuild from the files
		gone    bool
		changed bool
	}
	recs := make([]checked, len(lines))
	forEach(len(lines), runtime.GOMAXPROCS(0), func(i int) {
		c := &recs[i]
		if err := json.Unmarshal(lines[i], &c.pkg); err != nil || c.pkg == nil || checkHref(c.pkg.Href) != nil {
			c.bad = true
			return
		}
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(c.pkg.Href)))
		c.gone = err != nil
		c.changed = err == nil && (fi.Size() != c.pkg.PackageSize || fi.ModTime().Unix() != c.pkg.FileTime)
	})
	var reread []string
	for i, c := range recs {
		switch {
		case c.bad:
			return r.finish(r.scan())
		case c.gone:
		case c.changed:
			reread = append(reread, c.pkg.Href)
		default:
			if err := r.add(c.pkg, c.pkg.Href, false); err != nil {
				return r.finish(r.scan())
			}
			r.records[c.pkg.Href] = stateRecord{r.byHref[c.pkg.Href], lines[i]}
		}
	}
	return r.finish(r.readAll(reread))
}

// finish returns r, or only the error when loading failed.
func (r *Repo) finish(err error) (*Repo, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}

// scan reads every regular .rpm file below the root (symbolic links are
// not followed: the repository names only what it holds).
func (r *Repo) scan() error {
	var hrefs []string
	err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == r.dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		name := d.Name()
		if d.IsDir() && p != r.dir && (name == "repodata" || strings.HasPrefix(name, ".")) {
			return fs.SkipDir
		}
		if d.Type().IsRegular() && strings.HasSuffix(name, ".rpm") && !strings.HasPrefix(name, ".") {
			rel, err := filepath.Rel(r.dir, p)
			if err != nil {
				return err
			}
			hrefs = append(hrefs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan yum repository %s: %w", r.dir, err)
	}
	return r.readAll(hrefs)
}

// readAll reads the packages at hrefs below the root in parallel and adds
// them; the first error wins.
func (r *Repo) readAll(hrefs []string) error {
	pkgs := make([]*Package, len(hrefs))
	errs := make([]error, len(hrefs))
	// More workers than CPUs: a read often waits for the disk.
	forEach(len(hrefs), max(4, 2*runtime.GOMAXPROCS(0)), func(i int) {
		pkgs[i], errs[i] = ReadPackage(filepath.Join(r.dir, filepath.FromSlash(hrefs[i])))
	})
	for i, p := range pkgs {
		if errs[i] != nil {
			return errs[i]
		}
		if err := r.add(p, hrefs[i], false); err != nil { // p.FileTime is this file's
			return err
		}
	}
	return nil
}

// forEach runs f(0), ..., f(n-1) on up to workers goroutines.
func forEach(n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// checkHref refuses locations that could name something outside the
// repository or that clients would resolve differently.
func checkHref(href string) error {
	if href == "" || strings.HasPrefix(href, "/") || strings.Contains(href, "\\") ||
		path.Clean(href) != href || href == ".." || strings.HasPrefix(href, "../") ||
		strings.HasPrefix(href, "repodata/") || !strings.HasSuffix(href, ".rpm") {
		return fmt.Errorf("package location %q must be a clean relative path to an .rpm inside the repository, outside repodata/", href)
	}
	// Clients join the location onto the repository URL: characters a URL
	// gives meaning to would make them fetch another file.
	if i := strings.IndexFunc(href, func(c rune) bool { return c <= ' ' || c == 0x7f || strings.ContainsRune("%?#", c) }); i >= 0 {
		return fmt.Errorf("package location %q holds %q, which clients would not fetch as written: rename the file", href, href[i])
	}
	return nil
}

// Add puts p into the repository at location href (relative to the root,
// for example "Packages/criu-4.2.1-1.el9.x86_64.rpm"). Adding the same
// package again is a no-op; another package with the same name, epoch,
// version, release and arch but other content is refused, as is another
// package at an href already in use. When the file at href exists under
// the root and has p's size, its mtime becomes p's file time, so the state
// stays valid for the next Open.
func (r *Repo) Add(p *Package, href string) error { return r.add(p, href, true) }

// add is Add; takeFileTime says whether to take the file time from the file
// at href (Open already compared it with the record).
func (r *Repo) add(p *Package, href string, takeFileTime bool) error {
	if err := checkHref(href); err != nil {
		return fmt.Errorf("add %s: %w", p.NEVRA(), err)
	}
	if old, ok := r.byHref[href]; ok {
		if old.Checksum == p.Checksum {
			return nil
		}
		return fmt.Errorf("add %s: %s already holds %s with other content; remove it first", p.NEVRA(), href, old.NEVRA())
	}
	nevra := p.NEVRA()
	if old, ok := r.byNEVRA[nevra]; ok {
		if old.Checksum == p.Checksum {
			return nil
		}
		return fmt.Errorf("add %s: the repository already has this version with other content (at %s, sha256 %s, new sha256 %s): bump the release instead of rebuilding the same version",
			nevra, old.Href, old.Checksum, p.Checksum)
	}
	cp := *p
	cp.Href = href
	if takeFileTime {
		if fi, err := os.Stat(filepath.Join(r.dir, filepath.FromSlash(href))); err == nil && fi.Size() == p.PackageSize {
			cp.FileTime = fi.ModTime().Unix()
		}
	}
	r.byHref[href] = &cp
	r.byNEVRA[nevra] = &cp
	return nil
}

// Remove drops the package at href; an unknown href is not an error.
func (r *Repo) Remove(href string) {
	if p, ok := r.byHref[href]; ok {
		delete(r.byNEVRA, p.NEVRA())
		delete(r.byHref, href)
	}
}

// Packages returns the packages sorted by location.
func (r *Repo) Packages() []*Package {
	out := make([]*Package, 0, len(r.byHref))
	for _, p := range r.byHref {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Package) int { return strings.Compare(a.Href, b.Href) })
	return out
}

// metadataName matches the files Write names after their content, and
// the temporary files a killed Write may have left (writers are
// serialized, so none is in use by another one).
var metadataName = regexp.MustCompile(`^([0-9a-f]{64}-(primary|filelists|other)\.xml\.gz|\..+\.tmp-[0-9]+)$`)

// Write writes outDir/repodata/: primary, filelists and other (gzip, named
// after their sha256 so a client never mixes two generations), the state
// file, repomd.xml.asc when sign is not nil (sign gets repomd.xml and
// returns an armored detached signature), and last repomd.xml. All is
// rendered and signed before the first file is written, so a failure there
// changes nothing; then the files are written aside and renamed into place,
// repomd.xml last, and the metadata files of earlier writes to outDir are
// removed. outDir is the root itself for an in-place update, or a new
// generation's directory that the caller later makes the root's repodata/
// (hrefs stay relative to the root given to Open, where every package must
// already be). Nothing outside outDir/repodata is written.
func (r *Repo) Write(outDir string, sign func(repomd []byte) ([]byte, error)) error {
	pkgs := r.Packages()
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(r.dir, filepath.FromSlash(p.Href))); err != nil {
			return fmt.Errorf("write yum metadata: %s is not in %s (put the package in place before writing metadata): %w", p.Href, r.dir, err)
		}
	}
	repodata := filepath.Join(outDir, "repodata")
	if err := fsutil.InsideRoot(outDir, filepath.Join(repodata, "repomd.xml")); err != nil {
		return fmt.Errorf("write yum metadata: %w", err)
	}
	if fi, err := os.Lstat(repodata); err == nil && !fi.IsDir() {
		return fmt.Errorf("write yum metadata: %s is not a directory", repodata)
	}

	// Render the three files and the state concurrently.
	renderers := []struct {
		kind   string
		render func(xmlWriter, []*Package)
	}{{"primary", writePrimary}, {"filelists", writeFilelists}, {"other", writeOther}}
	files := make([]metadataFile, len(renderers))
	errs := make([]error, len(renderers)+1)
	var stateJSON []byte
	var wg sync.WaitGroup
	for i, m := range renderers {
		wg.Go(func() {
			files[i], errs[i] = renderMetadata(m.kind, func(bw *bufio.Writer) { m.render(xmlWriter{bw}, pkgs) })
		})
	}
	wg.Go(func() {
		stateJSON, errs[len(renderers)] = r.encodeState(pkgs)
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("write yum metadata: %w", err)
	}
	records := make([]repomdRecord, len(files))
	for i, f := range files {
		records[i] = f.record
	}
	ts := r.Timestamp
	if ts == 0 {
		for _, p := range pkgs {
			ts = max(ts, p.FileTime)
		}
	}
	var repomd bytes.Buffer
	bw := bufio.NewWriter(&repomd)
	writeRepomd(xmlWriter{bw}, strconv.FormatInt(ts, 10), ts, records)
	bw.Flush()
	var sig []byte
	if sign != nil {
		var err error
		if sig, err = sign(repomd.Bytes()); err != nil {
			return fmt.Errorf("sign repomd.xml: %w", err)
		}
	}

	// One batch, repomd.xml last: it is renamed into place only after
	// everything it names.
	var batch []fsutil.NamedFile
	for _, f := range files {
		if !f.stored(repodata) {
			batch = append(batch, fsutil.NamedFile{Name: path.Base(f.record.href), Data: f.gz})
		}
	}
	batch = append(batch, fsutil.NamedFile{Name: StateFile, Data: stateJSON})
	ascPath := filepath.Join(repodata, "repomd.xml.asc")
	if sig != nil {
		batch = append(batch, fsutil.NamedFile{Name: "repomd.xml.asc", Data: sig})
	} else if err := os.Remove(ascPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale signature: %w", err)
	}
	batch = append(batch, fsutil.NamedFile{Name: "repomd.xml", Data: repomd.Bytes()})
	if err := fsutil.WriteFilesAtomic(repodata, 0o644, batch...); err != nil {
		return fmt.Errorf("write yum metadata: %w", err)
	}
	return pruneMetadata(repodata, records)
}

// encodeState encodes the state file, reusing the records read by Open for
// the packages that did not change.
func (r *Repo) encodeState(pkgs []*Package) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(stateHeader + "\n")
	for _, p := range pkgs {
		if rec, ok := r.records[p.Href]; ok && rec.pkg == p {
			b.Write(rec.raw)
		} else {
			raw, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			b.Write(raw)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// metadataFile is one rendered, compressed metadata file, not yet stored.
type metadataFile struct {
	record repomdRecord
	gz     []byte
}

// renderMetadata renders one metadata file and gzips it in memory.
func renderMetadata(kind string, render func(*bufio.Writer)) (metadataFile, error) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	open := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(zw, open)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	render(bw)
	if err := bw.Flush(); err != nil {
		return metadataFile{}, fmt.Errorf("%s: %w", kind, err)
	}
	if err := zw.Close(); err != nil {
		return metadataFile{}, fmt.Errorf("%s: %w", kind, err)
	}
	sum := sha256.Sum256(gz.Bytes())
	return metadataFile{
		record: repomdRecord{
			kind:         kind,
			href:         "repodata/" + hex.EncodeToString(sum[:]) + "-" + kind + ".xml.gz",
			checksum:     hex.EncodeToString(sum[:]),
			openChecksum: hex.EncodeToString(open.Sum(nil)),
			size:         int64(gz.Len()),
			openSize:     cw.n,
		},
		gz: gz.Bytes(),
	}, nil
}

// stored reports whether repodata already holds this file: its name is
// its content's hash, so one of that name and size is the same file.
func (m metadataFile) stored(repodata string) bool {
	fi, err := os.Lstat(filepath.Join(repodata, path.Base(m.record.href)))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == m.record.size
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// pruneMetadata removes metadata files that the new repomd.xml no longer
// names and leftover temporary files. Only names Write itself makes are
// touched.
func pruneMetadata(repodata string, keep []repomdRecord) error {
	entries, err := os.ReadDir(repodata)
	if err != nil {
		return fmt.Errorf("prune old yum metadata: %w", err)
	}
	kept := map[string]bool{}
	for _, r := range keep {
		kept[path.Base(r.href)] = true
	}
	for _, e := range entries {
		if metadataName.MatchString(e.Name()) && !kept[e.Name()] {
			if err := os.Remove(filepath.Join(repodata, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("prune old yum metadata: %w", err)
			}
		}
	}
	return nil
}
