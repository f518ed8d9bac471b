package series

import (
	"context"
	"fmt"

	"github.com/criu-forge/criu-forge/internal/patch"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/source"
)

// EntryPatches rebuilds the locked patches of every entry, each checked
// against its locked hash, for a trial application on another base (watch
// tries the series on a new release): out[i] holds lock.Entries[i]'s
// patches, nil for an entry the lock skips.
func EntryPatches(ctx context.Context, r *recipe.Recipe, lock *Lock, opts Options) ([][]*patch.Patch, error) {
	s := &resolver{r: r, opts: opts, old: lock, mirrors: map[string]*source.Mirror{}, pinned: true}
	return s.checkedPatches(ctx, lock)
}

// checkedPatches rebuilds each entry's locked patches and checks every one
// against its locked hash: out[i] holds lock.Entries[i]'s patches, nil for
// an entry the lock skips.
func (s *resolver) checkedPatches(ctx context.Context, lock *Lock) ([][]*patch.Patch, error) {
	out := make([][]*patch.Patch, len(lock.Entries))
	for i, le := range lock.Entries {
		if le.Skipped != "" {
			continue
		}
		patches, err := s.entryPatches(ctx, le)
		if err != nil {
			return nil, fmt.Errorf("series[%d] %s: %w", i, le.Entry, err)
		}
		if len(patches) != len(le.Patches) {
			return nil, fmt.Errorf("series[%d] %s: holds %d patches, the lock %d: run sync", i, le.Entry, len(patches), len(le.Patches))
		}
		for j, p := range patches {
			sum, err := patch.Hash(p.Diff)
			if err != nil {
				return nil, fmt.Errorf("series[%d] %s: %w", i, le.Entry, err)
			}
			if sum != le.Patches[j].SHA256 {
				return nil, fmt.Errorf("series[%d] %s: patch %q has hash %s, the lock pins %s: its content changed; review it and run sync", i, le.Entry, le.Patches[j].Subject, sum, le.Patches[j].SHA256)
			}
		}
		out[i] = patches
	}
	return out, nil
}
