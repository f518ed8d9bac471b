package patch

import (
	"bufio"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"

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
	src, done := reader(repo)
	defer done()
	objs := newObjects(src)
	list, err := reachable(objs, commits)
	if err != nil {
		return err
	}
	out, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(Branch)},
	})
	if err != nil {
		return err
	}
	gitDir := filepath.Join(dir, git.GitDirName)
	files, err := layoutWorkTree(objs, commits[0].TreeHash, dir)
	if err != nil {
		return err
	}
	// One pass over the objects: each is read once, then packed and, for
	// blobs of the work tree, written out, in parallel.
	entries := make([]*index.Entry, 0, files.count)
	writeBlob := func(h plumbing.Hash, t plumbing.ObjectType, data []byte) error {
		if t != plumbing.BlobObject {
			return nil
		}
		for _, f := range files.byBlob[h] {
			e, err := writeFile(dir, f, h, data)
			if err != nil {
				return err
			}
			entries = append(entries, e) // one goroutine calls writeBlob
		}
		return nil
	}
	packDir, err := objectPackDir(gitDir)
	if err != nil {
		return err
	}
	// Stored, not deflated: this pack is written for one build and read
	// little; compressing the whole tree cost more than all else here, and
	// `git gc` compacts the repository if it is kept.
	stored := func(plumbing.ObjectType) int { return zlib.NoCompression }
	// go-git's storage is not safe for concurrent use: one reader each.
	readers := make([]*objects, packWorkers())
	for w := range readers {
		src, done := reader(repo)
		defer done()
		readers[w] = &objects{repo: src, kept: objs.kept}
	}
	err = writePack(packDir, stored, len(list), func(w, i int) (plumbing.Hash, plumbing.ObjectType, []byte, error) {
		if err := ctx.Err(); err != nil {
			return plumbing.ZeroHash, 0, nil, err
		}
		o, err := readers[w].get(plumbing.AnyObject, list[i])
		if err != nil {
			return plumbing.ZeroHash, 0, nil, fmt.Errorf("read object %s: %w", list[i], err)
		}
		data, err := readAll(o)
		return list[i], o.Type(), data, err
	}, writeBlob)
	if err != nil {
		return err
	}
	if len(entries) != files.count {
		return fmt.Errorf("wrote %d of %d files", len(entries), files.count)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	err = fsutil.WriteAtomic(filepath.Join(gitDir, "index"), 0o644, func(w io.Writer) error {
		// go-git's encoder writes field by field: buffer it, or it makes
		// tens of thousands of write calls.
		bw := bufio.NewWriterSize(w, 256<<10)
		if err := index.NewEncoder(bw).Encode(&index.Index{Version: 2, Entries: entries}); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return err
	}
	if err := out.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(Branch), head)); err != nil {
		return err
	}
	if len(base.ParentHashes) > 0 {
		if err := out.Storer.SetShallow([]plumbing.Hash{base.Hash}); err != nil {
			return err
		}
	}
	return nil
}

func readAll(o plumbing.EncodedObject) ([]byte, error) {
	r, err := o.Reader()
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", o.Hash(), err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", o.Hash(), err)
	}
	return data, nil
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
		o, err := objs.keep(plumbing.TreeObject, h)
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
}

// workTreeFiles lists the files to write, by blob.
type workTreeFiles struct {
	byBlob map[plumbing.Hash][]file
	count  int
}

// layoutWorkTree creates the directories of a tree under dir and lists its
// files. Entry names are checked again: a tree from elsewhere must not
// write outside dir or into .git.
func layoutWorkTree(objs *objects, root plumbing.Hash, dir string) (*workTreeFiles, error) {
	files := &workTreeFiles{byBlob: map[plumbing.Hash][]file{}}
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
			if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") || strings.EqualFold(e.Name, ".git") {
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
				// An empty directory, as git leaves an uninitialised one.
				if err := os.Mkdir(filepath.Join(dir, p), 0o755); err != nil {
					return err
				}
			case filemode.Regular, filemode.Executable, filemode.Symlink, filemode.Deprecated:
				files.byBlob[e.Hash] = append(files.byBlob[e.Hash], file{path: p, mode: e.Mode})
				files.count++
			default:
				return fmt.Errorf("tree %s: %s has unsupported mode %o", h, p, uint32(e.Mode))
			}
		}
		return nil
	}
	return files, walk(root, "")
}

// writeFile writes one file and returns its index entry.
func writeFile(dir string, f file, h plumbing.Hash, data []byte) (*index.Entry, error) {
	path := filepath.Join(dir, f.path)
	var fi os.FileInfo
	if f.mode == filemode.Symlink {
		if err := os.Symlink(string(data), path); err != nil {
			return nil, err
		}
		var err error
		if fi, err = os.Lstat(path); err != nil {
			return nil, err
		}
	} else {
		perm := os.FileMode(0o644)
		if f.mode == filemode.Executable {
			perm = 0o755
		}
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return nil, err
		}
		_, err = out.Write(data)
		if err == nil {
			fi, err = out.Stat()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	e := &index.Entry{Hash: h, Name: f.path, Mode: f.mode, Size: uint32(fi.Size()), ModifiedAt: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.CreatedAt = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		e.Dev, e.Inode, e.UID, e.GID = uint32(st.Dev), uint32(st.Ino), st.Uid, st.Gid
	}
	return e, nil
}
