package patch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// Branch is the branch a checkout's HEAD points at.
const Branch = "forge"

// Checkout makes outDir a normal git repository whose branch "forge"
// (HEAD) is head, with its work tree and index written. Its history starts
// at the base Apply built on: the commits from head down to the first one
// without a Forge-Origin trailer, which is recorded in .git/shallow (its
// parents are absent), so the output is small and self-contained.
//
// The repository is built beside outDir and renamed into place, so a
// failure leaves outDir as it was. An existing outDir is replaced only when
// it is empty or an earlier Checkout (it has the branch "forge"); anything
// else is refused rather than deleted.
func Checkout(ctx context.Context, repo *git.Repository, head plumbing.Hash, outDir string) (err error) {
	outDir = filepath.Clean(outDir)
	if err := checkOutDir(outDir); err != nil {
		return err
	}
	parent := filepath.Dir(outDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(outDir)+".tmp-")
	if err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := buildCheckout(ctx, repo, head, tmp); err != nil {
		return fmt.Errorf("checkout %s into %s: %w", head, outDir, err)
	}
	if err := fsutil.ReplaceDir(tmp, outDir); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	return nil
}

func checkOutDir(outDir string) error {
	entries, err := os.ReadDir(outDir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	if _, err := os.Stat(filepath.Join(outDir, ".git", "refs", "heads", Branch)); err == nil {
		return nil
	}
	return fmt.Errorf("checkout: %s exists and is not an earlier criu-forge output: choose another output directory or remove it", outDir)
}

func buildCheckout(ctx context.Context, repo *git.Repository, head plumbing.Hash, dir string) error {
	commits, base, err := forgeHistory(repo, head)
	if err != nil {
		return err
	}
	objs := newObjects(repo.Storer)
	hashes, err := reachable(objs, commits)
	if err != nil {
		return err
	}
	out, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(Branch)},
	})
	if err != nil {
		return err
	}
	pw, ok := out.Storer.(storer.PackfileWriter)
	if !ok {
		return errors.New("new repository storage cannot take a pack")
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := packfile.NewEncoder(w, repo.Storer, false).Encode(hashes, 0); err != nil {
		w.Close()
		return fmt.Errorf("write objects: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write objects: %w", err)
	}
	if err := out.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(Branch), head)); err != nil {
		return err
	}
	if len(base.ParentHashes) > 0 {
		if err := out.Storer.SetShallow([]plumbing.Hash{base.Hash}); err != nil {
			return err
		}
	}
	headCommit := commits[0]
	if err := writeWorkTree(ctx, objs, headCommit.TreeHash, dir); err != nil {
		return err
	}
	return nil
}

// forgeHistory returns the commits from head down to the base (the first
// commit without a Forge-Origin trailer), newest first, and the base.
func forgeHistory(repo *git.Repository, head plumbing.Hash) ([]*object.Commit, *object.Commit, error) {
	var commits []*object.Commit
	h := head
	for {
		c, err := repo.CommitObject(h)
		if err != nil {
			return nil, nil, fmt.Errorf("read commit %s: %w", h, err)
		}
		commits = append(commits, c)
		if !hasOriginTrailer(c.Message) || len(c.ParentHashes) == 0 {
			return commits, c, nil
		}
		h = c.ParentHashes[0]
	}
}

func hasOriginTrailer(message string) bool {
	return strings.Contains("\n"+message, "\n"+OriginTrailer+": ")
}

// reachable lists the commits and every tree and blob of their trees.
func reachable(objs *objects, commits []*object.Commit) ([]plumbing.Hash, error) {
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	var walk func(h plumbing.Hash) error
	walk = func(h plumbing.Hash) error {
		if seen[h] {
			return nil
		}
		seen[h] = true
		out = append(out, h)
		o, err := objs.get(plumbing.TreeObject, h)
		if err != nil {
			return fmt.Errorf("read tree %s: %w", h, err)
		}
		var t object.Tree
		if err := t.Decode(o); err != nil {
			return fmt.Errorf("read tree %s: %w", h, err)
		}
		for _, e := range t.Entries {
			switch e.Mode {
			case filemode.Dir:
				if err := walk(e.Hash); err != nil {
					return err
				}
			case filemode.Submodule:
			default:
				if !seen[e.Hash] {
					seen[e.Hash] = true
					out = append(out, e.Hash)
				}
			}
		}
		return nil
	}
	for _, c := range commits {
		out = append(out, c.Hash)
		if err := walk(c.TreeHash); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// file is one blob of the work tree to write.
type file struct {
	path string
	mode filemode.FileMode
	hash plumbing.Hash
}

// writeWorkTree writes the files of a tree under dir and the index that
// describes them (with their stat data, so `git status` trusts it).
func writeWorkTree(ctx context.Context, objs *objects, root plumbing.Hash, dir string) error {
	var files []file
	var walk func(h plumbing.Hash, prefix string) error
	walk = func(h plumbing.Hash, prefix string) error {
		o, err := objs.get(plumbing.TreeObject, h)
		if err != nil {
			return fmt.Errorf("read tree %s: %w", h, err)
		}
		var t object.Tree
		if err := t.Decode(o); err != nil {
			return fmt.Errorf("read tree %s: %w", h, err)
		}
		for _, e := range t.Entries {
			if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsRune(e.Name, '/') || strings.EqualFold(e.Name, ".git") {
				return fmt.Errorf("tree %s has an unsafe entry %q", h, e.Name)
			}
			p := prefix + e.Name
			switch e.Mode {
			case filemode.Dir:
				if err := os.Mkdir(filepath.Join(dir, p), 0o755); err != nil {
					return err
				}
				if err := walk(e.Hash, p+"/"); err != nil {
					return err
				}
			case filemode.Submodule:
				if err := os.Mkdir(filepath.Join(dir, p), 0o755); err != nil {
					return err
				}
			default:
				files = append(files, file{path: p, mode: e.Mode, hash: e.Hash})
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return err
	}
	// go-git's storage is not safe for concurrent reads: read blobs here,
	// write files in parallel.
	type job struct {
		i    int
		data []byte
	}
	entries := make([]*index.Entry, len(files))
	jobs := make(chan job, 64)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := range jobs {
				if errs[w] != nil {
					continue
				}
				entries[j.i], errs[w] = writeFile(dir, files[j.i], j.data)
			}
		}(w)
	}
	var readErr error
	for i, f := range files {
		if readErr = ctx.Err(); readErr != nil {
			break
		}
		data, err := objs.readBlob(f.hash)
		if err != nil {
			readErr = err
			break
		}
		jobs <- job{i, data}
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(append(errs, readErr)...); err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	idx := &index.Index{Version: 2, Entries: entries}
	return fsutil.WriteAtomic(filepath.Join(dir, ".git", "index"), 0o644, func(w io.Writer) error {
		return index.NewEncoder(w).Encode(idx)
	})
}

func writeFile(dir string, f file, data []byte) (*index.Entry, error) {
	var err error
	path := filepath.Join(dir, f.path)
	switch f.mode {
	case filemode.Symlink:
		err = os.Symlink(string(data), path)
	case filemode.Executable:
		err = os.WriteFile(path, data, 0o755)
	default:
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	e := &index.Entry{Hash: f.hash, Name: f.path, Mode: f.mode, Size: uint32(fi.Size()), ModifiedAt: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.CreatedAt = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		e.Dev, e.Inode, e.UID, e.GID = uint32(st.Dev), uint32(st.Ino), st.Uid, st.Gid
	}
	return e, nil
}
