package series

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/patch"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/source"
)

// Prepared is a patched source tree and what went into it.
type Prepared struct {
	Dir      string
	Base     *source.Base
	Head     plumbing.Hash
	Lock     *Lock
	Outcomes []patch.Outcome
}

// Applied counts the patches that became commits.
func (p *Prepared) Applied() int {
	n := 0
	for _, o := range p.Outcomes {
		if o.Status == patch.Applied {
			n++
		}
	}
	return n
}

// Prepare builds the patched tree of a recipe into outDir from its lock
// alone (no GitHub call): the pinned base from the first alternative that
// answers, then each locked patch, checked against its hash, as a commit.
// Nothing is left at outDir unless the whole series applied.
func Prepare(ctx context.Context, r *recipe.Recipe, outDir string, opts Options) (*Prepared, error) {
	lock, err := ReadLock(r.LockPath())
	if err != nil {
		return nil, err
	}
	if err := lock.CheckCurrent(r, r.LockPath()); err != nil {
		return nil, err
	}
	alts, err := pinnedAlternatives(r, lock)
	if err != nil {
		return nil, err
	}
	base, err := source.Fetch(ctx, alts, source.Options{CacheDir: opts.CacheDir, Offline: opts.Offline, Log: opts.Log, HTTPClient: opts.HTTPClient})
	if err != nil {
		return nil, err
	}
	if err := checkBasePin(base, lock, alts); err != nil {
		return nil, err
	}
	s := &resolver{r: r, opts: opts, old: lock, mirrors: map[string]*source.Mirror{}, pinned: true}
	patches, err := s.lockedPatches(ctx, lock)
	if err != nil {
		return nil, err
	}
	head, outcomes, err := patch.Apply(ctx, base.Repo, base.Commit, patches, patch.Options{Fuzz: r.Apply.Fuzz, Strict: r.Apply.Strict})
	if err != nil {
		return nil, err
	}
	for _, o := range outcomes {
		if o.Status == patch.Contained {
			fmt.Fprintf(opts.log(), "prepare: %s: already contained in the base, skipped\n", o.Patch)
		}
	}
	if err := patch.Checkout(ctx, base.Repo, head, outDir); err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(outDir)
	return &Prepared{Dir: abs, Base: base, Head: head, Lock: lock, Outcomes: outcomes}, nil
}

func pinnedAlternatives(r *recipe.Recipe, lock *Lock) ([]source.Alternative, error) {
	if len(lock.Upstream) != len(r.Upstream.Sources) {
		return nil, fmt.Errorf("lock %s pins %d upstream sources, the recipe names %d: run sync", r.LockPath(), len(lock.Upstream), len(r.Upstream.Sources))
	}
	var alts []source.Alternative
	for i, src := range r.Upstream.Sources {
		pin := lock.Upstream[i]
		if pin.Unresolved != "" {
			continue
		}
		switch {
		case src.Git != nil:
			// The pinned commit, not the ref: a tag that moved upstream
			// must not change what we build.
			alts = append(alts, source.Alternative{Git: &source.GitSpec{URL: src.Git.URL, Ref: pin.Commit, Commit: pin.Commit}})
		case src.Tarball != nil:
			alts = append(alts, source.Alternative{Tarball: &source.TarballSpec{URL: src.Tarball.URL, SHA256: pin.SHA256}})
		case src.DebianSource != nil:
			d := src.DebianSource
			alts = append(alts, source.Alternative{Debian: &source.DebianSpec{Package: d.Package, Version: d.Version, Suite: d.Suite, Mirror: d.Mirror, Keyring: d.Keyring}})
		}
	}
	if len(alts) == 0 {
		return nil, fmt.Errorf("lock %s pins no upstream source: run sync where the upstream answers", r.LockPath())
	}
	return alts, nil
}

// checkBasePin refuses a base whose content differs from what the lock
// pinned: the Debian archive serving another orig tarball for the same
// version must not change the build silently.
func checkBasePin(base *source.Base, lock *Lock, alts []source.Alternative) error {
	alt := alts[base.Alternative]
	if alt.Debian == nil {
		return nil // git pins by commit, tarballs by sha256: source verified both
	}
	for _, pin := range lock.Upstream {
		if pin.Kind == "debian-source" && pin.Package == alt.Debian.Package && pin.Version == alt.Debian.Version {
			if !strings.EqualFold(pin.SHA256, base.SHA256) {
				return fmt.Errorf("debian-source %s %s now has sha256 %s, the lock pins %s: the archive changed the orig tarball; review it and run sync", pin.Package, pin.Version, base.SHA256, pin.SHA256)
			}
		}
	}
	return nil
}

// lockedPatches is the whole series, in order, each patch checked against
// its locked hash.
func (s *resolver) lockedPatches(ctx context.Context, lock *Lock) ([]*patch.Patch, error) {
	per, err := s.checkedPatches(ctx, lock)
	if err != nil {
		return nil, err
	}
	var out []*patch.Patch
	for i, le := range lock.Entries {
		if le.Skipped != "" {
			fmt.Fprintf(s.opts.log(), "prepare: %s: skipped: %s\n", le.Entry, le.Skipped)
			continue
		}
		out = append(out, per[i]...)
	}
	return out, nil
}

func (s *resolver) entryPatches(ctx context.Context, le LockedEntry) ([]*patch.Patch, error) {
	if le.Kind == "patch" {
		patches, err := s.readPatchFile(le.File)
		if err != nil {
			return nil, err
		}
		for _, p := range patches {
			p.Origin = filepath.ToSlash(filepath.Join("patches", s.r.Name, le.File))
		}
		return patches, nil
	}
	m, err := s.mirror(ctx, le.GitURL)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(le.Patches))
	for i, lp := range le.Patches {
		ids[i] = lp.Commit
	}
	if le.PR != 0 && !hasCommits(m, ids) && !s.opts.Offline {
		if _, err := m.FetchPulls(ctx, le.PR); err != nil {
			return nil, err
		}
	}
	if err := m.EnsureCommits(ctx, ids...); err != nil {
		return nil, err
	}
	var out []*patch.Patch
	for _, lp := range le.Patches {
		p, err := patch.FromCommit(m.Repo(), plumbing.NewHash(lp.Commit))
		if err != nil {
			return nil, err
		}
		if le.URL != "" {
			p.Origin = fmt.Sprintf("%s (commit %s)", le.URL, lp.Commit)
		}
		out = append(out, p)
	}
	return out, nil
}

func hasCommits(m *source.Mirror, ids []string) bool {
	for _, id := range ids {
		if _, err := m.Repo().CommitObject(plumbing.NewHash(id)); err != nil {
			return false
		}
	}
	return true
}
