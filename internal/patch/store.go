package patch

import (
	"compress/zlib"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// reader returns storage to read repo's objects fast: for a repository on
// disk, a second view that keeps its pack files open (go-git otherwise
// opens and parses a pack again for every object it reads, and loses the
// delta bases it just inflated). Call the returned func when done.
func reader(repo *git.Repository) (storer.EncodedObjectStorer, func()) {
	fs, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return repo.Storer, func() {}
	}
	s := filesystem.NewStorageWithOptions(fs.Filesystem(), cache.NewObjectLRUDefault(), filesystem.Options{KeepDescriptors: true})
	return s, func() { s.Close() }
}

// flush writes the new objects into the repository: as one pack (one file
// and its index instead of a file per object) when it is on disk, object by
// object otherwise.
func flush(repo *git.Repository, objs *objects, head plumbing.Hash) error {
	if len(objs.order) == 0 {
		return nil
	}
	// Commit ids are deterministic: when the repository already has the
	// head, an earlier run stored this very series (a pack is written
	// whole or not at all), so the cache does not grow on every prepare.
	if repo.Storer.HasEncodedObject(head) == nil {
		return nil
	}
	fs, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		for _, h := range objs.order {
			if _, err := repo.Storer.SetEncodedObject(objs.pending[h]); err != nil {
				return fmt.Errorf("write object %s: %w", h, err)
			}
		}
		return nil
	}
	packDir, err := objectPackDir(fs.Filesystem().Root())
	if err != nil {
		return err
	}
	// The cache keeps these objects: compress blobs and commits, quickly;
	// trees (half of them ids that do not compress) are stored as they are.
	level := func(t plumbing.ObjectType) int {
		if t == plumbing.TreeObject {
			return zlib.NoCompression
		}
		return zlib.BestSpeed
	}
	err = writePack(packDir, level, len(objs.order), func(_, i int) (plumbing.Hash, plumbing.ObjectType, []byte, error) {
		h := objs.order[i]
		o := objs.pending[h]
		data, err := readAll(o)
		return h, o.Type(), data, err
	}, nil)
	if err != nil {
		return fmt.Errorf("write the new objects into %s: %w", fs.Filesystem().Root(), err)
	}
	fs.Reindex()
	return nil
}
