package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// An incremental build reuses the target's previous build tree, kept in
// CacheDir/worktrees/<target>/tree, when nothing but the source changed:
// the new source is synced into it file by file, so only changed files get
// new times and make recompiles only what they touch (ccache alone still
// pays for every dependency scan). During the build the tree is moved to
// .../building and its state file removed, so a killed build leaves no tree
// that would be reused: the next build starts from a fresh copy.
type worktree struct {
	dir    string // CacheDir/worktrees/<target>
	config string // hash of everything but the source
	lock   *fsutil.Lock
}

type worktreeState struct {
	Config  string   `json:"config"`
	Sources []string `json:"sources"` // paths synced from the source last time
}

// worktreeConfig hashes the build inputs other than the source identity:
// a tree built with other deps, variables, steps or builder is not reused.
func worktreeConfig(spec Spec, builderID string) string {
	vars := makeVars(spec)
	delete(vars, "GITID") // the version header's own rule follows GITID
	in, _ := json.Marshal(struct {
		Format    int
		Deps      []string
		Vars      map[string]string
		Steps     []string
		BuilderID string
	}{keyFormat, sortedCopy(spec.Deps), vars, spec.steps(), builderID})
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:16])
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// openWorktree takes the target's worktree lock; ok is false when another
// process holds it (the caller then builds from a plain copy).
func openWorktree(cacheDir, name, config string) (*worktree, bool, error) {
	dir := filepath.Join(cacheDir, "worktrees", name)
	lock, ok, err := fsutil.TryAcquire(dir + ".lock")
	if err != nil || !ok {
		return nil, false, err
	}
	return &worktree{dir: dir, config: config, lock: lock}, true, nil
}

func (w *worktree) building() string { return filepath.Join(w.dir, "building") }

// checkout fills w.building() with the source: the previous tree synced to
// it when reuse is allowed and the configuration matches (reused true), a
// fresh copy otherwise.
func (w *worktree) checkout(source string, reuse bool) (reused bool, err error) {
	if err := os.RemoveAll(w.building()); err != nil { // left by a killed build
		return false, err
	}
	statePath := filepath.Join(w.dir, "state.json")
	var st worktreeState
	data, err := os.ReadFile(statePath)
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	// The state goes first: from here on the tree is not known good.
	if rmErr := os.Remove(statePath); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
		return false, rmErr
	}
	tree := filepath.Join(w.dir, "tree")
	if err == nil && reuse && st.Config == w.config {
		if err := os.Rename(tree, w.building()); err == nil {
			return true, syncTree(source, w.building(), st.Sources)
		}
	}
	if err := os.RemoveAll(tree); err != nil {
		return false, err
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return false, err
	}
	return false, copyTree(source, w.building())
}

// commit keeps the built tree for the next build.
func (w *worktree) commit(source string) error {
	sources, err := listTree(source)
	if err != nil {
		return err
	}
	if err := os.Rename(w.building(), filepath.Join(w.dir, "tree")); err != nil {
		return err
	}
	data, _ := json.Marshal(worktreeState{Config: w.config, Sources: sources})
	return fsutil.WriteFileAtomic(filepath.Join(w.dir, "state.json"), data, 0o644)
}

func (w *worktree) close() {
	_ = os.RemoveAll(w.building()) // a failed build's tree is not kept
	_ = w.lock.Release()
}

// listTree lists the paths copyTree copies, relative to root.
func listTree(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == ".git" {
			return filepath.SkipDir
		}
		if rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	return out, err
}

// syncTree makes the source part of dst equal to src: files that differ in
// content, mode or type are replaced (and so get a new time), files that
// were synced before but are gone from src are removed, and everything
// else — unchanged sources and build products — is left as it is.
func syncTree(src, dst string, previous []string) error {
	now, err := listTree(src)
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(now))
	for _, rel := range now {
		present[rel] = true
		if err := syncEntry(filepath.Join(src, rel), filepath.Join(dst, rel)); err != nil {
			return fmt.Errorf("sync %s: %w", rel, err)
		}
	}
	// Deepest first, so a directory is emptied before it is removed.
	sort.Sort(sort.Reverse(sort.StringSlice(previous)))
	for _, rel := range previous {
		if !present[rel] {
			if err := os.RemoveAll(filepath.Join(dst, rel)); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncEntry(src, dst string) error {
	si, err := os.Lstat(src)
	if err != nil {
		return err
	}
	di, derr := os.Lstat(dst)
	switch {
	case si.IsDir():
		if derr == nil && di.IsDir() {
			return nil
		}
		if derr == nil {
			os.RemoveAll(dst)
		}
		return os.MkdirAll(dst, si.Mode().Perm()|0o700)
	case si.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if derr == nil && di.Mode()&fs.ModeSymlink != 0 {
			if old, _ := os.Readlink(dst); old == link {
				return nil
			}
		}
		os.RemoveAll(dst)
		return os.Symlink(link, dst)
	case si.Mode().IsRegular():
		if derr == nil && di.Mode() == si.Mode() && di.Size() == si.Size() && sameContent(src, dst) {
			return nil
		}
		os.RemoveAll(dst)
		return copyFile(src, dst, si.Mode().Perm())
	}
	return nil
}

func sameContent(a, b string) bool {
	da, err := os.ReadFile(a)
	if err != nil {
		return false
	}
	db, err := os.ReadFile(b)
	return err == nil && bytes.Equal(da, db)
}
