// Package series turns a recipe's patch series into pinned patches and a
// patched tree. Sync resolves every entry (pull requests through the GitHub
// API, commits and ranges through the git mirror, local patch files) and
// writes series.lock; Prepare builds the patched tree from the lock alone,
// with no GitHub call, refusing any patch whose normalized hash differs
// from the one locked.
package series

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/recipe"
)

// LockVersion is the format of series.lock this code reads and writes.
const LockVersion = 1

// Lock pins everything a recipe's source and series resolve to.
type Lock struct {
	LockVersion int    `json:"lockVersion"`
	Recipe      string `json:"recipe"`
	// RecipeDigest covers the recipe as written (upstream, series, apply,
	// build, package): Prepare refuses a lock older than its recipe.
	RecipeDigest string `json:"recipeDigest"`
	// Revision rises by one every time ContentDigest changes: the package
	// version carries it, so every change of the series or recipe gives a
	// higher version without anyone bumping it by hand.
	Revision      int            `json:"revision"`
	ContentDigest string         `json:"contentDigest"`
	Upstream      []LockedSource `json:"upstream"`
	Entries       []LockedEntry  `json:"entries"`
}

// LockedSource pins one upstream alternative.
type LockedSource struct {
	Kind    string `json:"kind"` // git, tarball, debian-source
	URL     string `json:"url,omitempty"`
	Ref     string `json:"ref,omitempty"`
	Commit  string `json:"commit,omitempty"` // git: what Ref resolved to
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	Suite   string `json:"suite,omitempty"`
	Name    string `json:"name,omitempty"`   // tarball file name
	SHA256  string `json:"sha256,omitempty"` // tarball, debian-source
	// Unresolved says why sync could not pin this alternative; Prepare
	// skips it.
	Unresolved string `json:"unresolved,omitempty"`
}

// LockedEntry is one series entry, resolved.
type LockedEntry struct {
	Entry  string `json:"entry"` // as messages show it: "PR #3093", "commit 8ee2eba47"
	Kind   string `json:"kind"`  // pr, commit, range, patch
	PR     int    `json:"pr,omitempty"`
	Repo   string `json:"repo,omitempty"` // GitHub owner/name
	URL    string `json:"url,omitempty"`  // the pull request's page
	Title  string `json:"title,omitempty"`
	State  string `json:"state,omitempty"` // open, closed, merged
	Head   string `json:"head,omitempty"`  // pull request head at sync time
	GitURL string `json:"gitUrl,omitempty"`
	Range  string `json:"range,omitempty"`
	File   string `json:"file,omitempty"` // local patch file
	// Skipped says why the entry is not applied (its until: release).
	Skipped string        `json:"skipped,omitempty"`
	Patches []LockedPatch `json:"patches"`
}

// LockedPatch is one patch of an entry, pinned by its normalized hash.
type LockedPatch struct {
	Commit  string `json:"commit,omitempty"`
	Subject string `json:"subject"`
	SHA256  string `json:"sha256"`
}

// ErrNoLock reports a recipe that was never synced.
var ErrNoLock = errors.New("no series.lock")

// ReadLock reads a lock file.
func ReadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: run `criu-forge sync` for this recipe on a machine where GitHub and the upstream answer, and commit the lock", ErrNoLock, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	return parseLock(data, path)
}

// parseLock decodes a lock file's content; path is for messages.
func parseLock(data []byte, path string) (*Lock, error) {
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("lock %s is not valid: %w; restore it from version control or run sync again", path, err)
	}
	if l.LockVersion != LockVersion {
		return nil, fmt.Errorf("lock %s has format %d; this criu-forge reads format %d: run sync again", path, l.LockVersion, LockVersion)
	}
	return &l, nil
}

// Marshal renders the lock the way it is stored: indented, stable.
func (l *Lock) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Write stores the lock atomically.
func (l *Lock) Write(path string) error {
	data, err := l.Marshal()
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

// Entry finds the locked entry for a recipe entry, by kind and identity.
func (l *Lock) Entry(e recipe.Entry) *LockedEntry {
	if l == nil {
		return nil
	}
	for i := range l.Entries {
		if l.Entries[i].Entry == e.String() {
			return &l.Entries[i]
		}
	}
	return nil
}

// RecipeDigest hashes what in a recipe decides the patched tree and the
// packages: every section but the targets and the description.
func RecipeDigest(r *recipe.Recipe) string {
	pinned := struct {
		Upstream recipe.Upstream `json:"upstream"`
		Series   []recipe.Entry  `json:"series"`
		Apply    recipe.Apply    `json:"apply"`
		Build    recipe.Build    `json:"build"`
		Package  recipe.Package  `json:"package"`
	}{r.Upstream, r.Series, r.Apply, r.Build, r.Package}
	return digest(pinned)
}

func digest(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings: cannot fail
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// contentDigest covers the recipe digest and everything resolved.
func (l *Lock) contentDigest() string {
	return digest(struct {
		R string         `json:"r"`
		U []LockedSource `json:"u"`
		E []LockedEntry  `json:"e"`
	}{l.RecipeDigest, l.Upstream, l.Entries})
}

// CheckCurrent refuses a lock written for another version of the recipe.
func (l *Lock) CheckCurrent(r *recipe.Recipe, path string) error {
	if l.Recipe != r.Name {
		return fmt.Errorf("lock %s is for recipe %q, not %q", path, l.Recipe, r.Name)
	}
	if l.RecipeDigest != RecipeDigest(r) {
		return fmt.Errorf("recipe %s changed since %s was written: run `criu-forge sync %s` (add --offline to reuse what is already resolved)", r.Path, path, r.Path)
	}
	return nil
}
