package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// suitePlan is what a suite's dists/ files are made from.
type suitePlan struct {
	digest string
	archs  []string
	recs   []*record
}

// suiteDigests groups the records by suite and fingerprints each group with
// everything its metadata depends on.
func suiteDigests(st *state, opts *PublishOptions) map[string]*suitePlan {
	plans := map[string]*suitePlan{}
	for _, r := range st.Debs {
		p := plans[r.Suite]
		if p == nil {
			p = &suitePlan{}
			plans[r.Suite] = p
		}
		p.recs = append(p.recs, r)
		if r.Deb.Arch != "all" && !slices.Contains(p.archs, r.Deb.Arch) {
			p.archs = append(p.archs, r.Deb.Arch)
		}
	}
	for _, p := range plans {
		for _, a := range opts.Architectures {
			if a != "all" && !slices.Contains(p.archs, a) {
				p.archs = append(p.archs, a)
			}
		}
		if len(p.archs) == 0 {
			p.archs = []string{"amd64"} // a suite of only "all" packages still needs one binary index
		}
		sort.Strings(p.archs)
		h := sha256.New()
		fmt.Fprintf(h, "%d\n%s\n%s\n%s\n%s\n", stateFormat, opts.Origin, opts.Label, opts.Signer.Fingerprint(), strings.Join(p.archs, " "))
		lines := make([]string, 0, len(p.recs))
		for _, r := range p.recs {
			lines = append(lines, r.Filename+" "+r.Deb.SHA256)
		}
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Fprintln(h, l)
		}
		p.digest = hex.EncodeToString(h.Sum(nil))
	}
	return plans
}

func sameDigests(cur *state, plans map[string]*suitePlan) bool {
	if len(cur.Suites) != len(plans) {
		return false
	}
	for name, p := range plans {
		if s := cur.Suites[name]; s == nil || s.Digest != p.digest {
			return false
		}
	}
	return true
}

func sameYum(cur *state, plans map[string]*yumPlan) bool {
	if len(cur.Yum) != len(plans) {
		return false
	}
	for key, p := range plans {
		if cur.Yum[key] != p.digest {
			return false
		}
	}
	return true
}

// generationWriter writes one new generation directory. Files are written
// plainly and fsynced all together (in parallel) before the switch: one
// fsync after the other costs more than the rest of an incremental publish.
type generationWriter struct {
	repo  string // the repository directory
	root  string // .gen/<n>
	prev  string // .gen/<n-1>, "" for the first
	dirs  map[string]bool
	files []string
}

func (g *generationWriter) mkdirFor(p string) error {
	d := filepath.Dir(p)
	if g.dirs[d] {
		return nil
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	for ; strings.HasPrefix(d, g.root); d = filepath.Dir(d) {
		g.dirs[d] = true
	}
	return nil
}

func (g *generationWriter) write(rel string, data []byte) error {
	p := filepath.Join(g.root, filepath.FromSlash(rel))
	if err := g.mkdirFor(p); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	g.files = append(g.files, p)
	return nil
}

// linkFrom hard-links src (a file of this or the previous generation:
// generation files never change) to rel; it copies where links fail.
func (g *generationWriter) linkFrom(src, rel string) error {
	p := filepath.Join(g.root, filepath.FromSlash(rel))
	if err := g.mkdirFor(p); err != nil {
		return err
	}
	err := os.Link(src, p)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return g.write(rel, data)
}

// link carries a file of the previous generation into this one.
func (g *generationWriter) link(rel string) error {
	return g.linkFrom(filepath.Join(g.prev, filepath.FromSlash(rel)), rel)
}

func (g *generationWriter) sync() error {
	dirs := make([]string, 0, len(g.dirs))
	for d := range g.dirs {
		dirs = append(dirs, d)
	}
	return syncAll(g.files, dirs)
}

// syncAll fsyncs files and directories (so renames and links inside them
// are durable too), in parallel: the switch comes only after all of them,
// so their order does not matter, and ext4 commits parallel fsyncs together.
func syncAll(files, dirs []string) error {
	paths := append(slices.Clone(files), dirs...)
	errs := make([]error, len(paths))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f, err := os.Open(p)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}

// writeGeneration writes (without fsync: see generationWriter) .gen/<next.Generation>: dists/ of every suite (an
// unchanged suite hard-linked from the live generation), the public key and
// the state.
func writeGeneration(dir string, cur, next *state, plans map[string]*suitePlan, opts *PublishOptions) (*generationWriter, error) {
	g := &generationWriter{repo: dir, root: genPath(dir, next.Generation), dirs: map[string]bool{}}
	if cur.Generation > 0 {
		g.prev = genPath(dir, cur.Generation)
	}
	cache := newChunkCache(filepath.Join(dir, genDir, chunksDir))
	if err := os.MkdirAll(g.root, 0o755); err != nil {
		return nil, fmt.Errorf("create generation %d: %w", next.Generation, err)
	}
	g.dirs[g.root] = true
	now := opts.Now()
	next.Suites = map[string]*suiteState{}
	names := make([]string, 0, len(plans))
	for name := range plans {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := plans[name]
		base := path.Join(distsDir, name)
		prev := cur.Suites[name]
		if g.prev != "" && prev != nil && prev.Digest == p.digest {
			for _, f := range prev.Files {
				if err := g.link(path.Join(base, f)); err != nil {
					return nil, fmt.Errorf("carry %s/%s into generation %d: %w", base, f, next.Generation, err)
				}
			}
			next.Suites[name] = prev
			continue
		}
		files, err := buildSuite(name, p.archs, p.recs, opts, now, cache)
		if err != nil {
			return nil, err
		}
		ss := &suiteState{Digest: p.digest, Archs: p.archs, Chunks: files.Chunks}
		put := func(rel string, data []byte) error {
			ss.Files = append(ss.Files, rel)
			return g.write(path.Join(base, rel), data)
		}
		for _, f := range files.Indexes {
			if err := put(f.Name, f.Data); err != nil {
				return nil, fmt.Errorf("write %s/%s: %w", base, f.Name, err)
			}
			bh := byHashPath(f)
			if slices.Contains(ss.ByHash, bh) {
				continue // two identical indexes (e.g. two empty architectures)
			}
			ss.ByHash = append(ss.ByHash, bh)
			ss.Files = append(ss.Files, bh)
			if err := g.linkFrom(filepath.Join(g.root, base, f.Name), path.Join(base, bh)); err != nil {
				return nil, fmt.Errorf("write %s/%s: %w", base, bh, err)
			}
		}
		for rel, data := range map[string][]byte{"Release": files.Release, "InRelease": files.InRelease, "Release.gpg": files.ReleaseGPG} {
			if err := put(rel, data); err != nil {
				return nil, fmt.Errorf("write %s/%s: %w", base, rel, err)
			}
		}
		sort.Strings(ss.Files)
		// A client that read the previous InRelease just before the switch
		// fetches the previous indexes by hash: they stay one generation.
		if g.prev != "" && prev != nil {
			for _, bh := range prev.ByHash {
				if err := g.link(path.Join(base, bh)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("carry %s/%s into generation %d: %w", base, bh, next.Generation, err)
				}
			}
		}
		next.Suites[name] = ss
	}

	if err := writeYum(g, cur, next, yumPlans(next, opts), opts); err != nil {
		return nil, err
	}
	for name, armored := range map[string]bool{KeyringName: false, keyringArmor: true} {
		key, err := opts.Signer.PublicKey(armored)
		if err != nil {
			return nil, err
		}
		if err := g.write(name, key); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := cache.save(g); err != nil {
		return nil, fmt.Errorf("write index chunks: %w", err)
	}
	data, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := g.write(stateFile, data); err != nil {
		return nil, fmt.Errorf("write state: %w", err)
	}
	return g, nil
}

// rootLinks are the repository's public names, each a symbolic link through
// .gen/current, so one rename switches all of them at once.
var rootLinks = []string{distsDir, yumDir, KeyringName, keyringArmor}

func rootLinkTarget(name string) string { return genDir + "/" + currentLink + "/" + name }

// checkRootLinks refuses a directory whose public names are something else
// than our links (another tool's repository, or files put there by hand).
func checkRootLinks(dir string) error {
	for _, name := range rootLinks {
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if t, _ := os.Readlink(p); t == rootLinkTarget(name) {
				continue
			}
		}
		return fmt.Errorf("repository %s: %s exists and was not made by criu-forge: publish into an empty or criu-forge directory", dir, name)
	}
	return nil
}

// switchGeneration makes generation n live: a new link .gen/current.tmp
// renamed over .gen/current (rename(2) is atomic), then fsync.
func switchGeneration(dir string, n int) error {
	gdir := filepath.Join(dir, genDir)
	if err := replaceLink(gdir, currentLink, strconv.Itoa(n)); err != nil {
		return fmt.Errorf("switch to generation %d: %w", n, err)
	}
	return ensureRootLinks(dir)
}

func ensureRootLinks(dir string) error {
	for _, name := range rootLinks {
		if t, err := os.Readlink(filepath.Join(dir, name)); err == nil && t == rootLinkTarget(name) {
			continue
		}
		if err := replaceLink(dir, name, rootLinkTarget(name)); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	return nil
}

func replaceLink(dir, name, target string) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}
