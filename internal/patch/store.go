package patch

import (
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"
)

// flush writes the new objects into the repository as one pack (one file
// and its index instead of a loose file per object), or object by object
// when the storage takes no packs.
func flush(repo *git.Repository, objs *objects) error {
	if len(objs.order) == 0 {
		return nil
	}
	pw, ok := repo.Storer.(storer.PackfileWriter)
	if !ok {
		for _, h := range objs.order {
			if _, err := repo.Storer.SetEncodedObject(objs.pending[h]); err != nil {
				return fmt.Errorf("write object %s: %w", h, err)
			}
		}
		return nil
	}
	mem := memory.NewStorage()
	for _, h := range objs.order {
		if _, err := mem.SetEncodedObject(objs.pending[h]); err != nil {
			return fmt.Errorf("write object %s: %w", h, err)
		}
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return fmt.Errorf("write objects into the repository: %w", err)
	}
	if _, err := packfile.NewEncoder(w, mem, false).Encode(objs.order, 0); err != nil {
		w.Close()
		return fmt.Errorf("write objects into the repository: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write objects into the repository: %w", err)
	}
	return nil
}
