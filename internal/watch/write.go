package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
)

// WriteResult says what Write changed.
type WriteResult struct {
	Recipe  string             `json:"recipe"`
	Path    string             `json:"path"`
	From    string             `json:"from,omitempty"` // upstream version before, when it moved
	To      string             `json:"to,omitempty"`
	Dropped []string           `json:"dropped"`
	Sync    *series.SyncResult `json:"-"`
	Lock    *WriteLockSummary  `json:"lock,omitempty"`
}

// WriteLockSummary is the re-synced lock.
type WriteLockSummary struct {
	Path     string `json:"path"`
	Revision int    `json:"revision"`
	Changed  bool   `json:"changed"`
}

// ErrNothingToWrite is returned by Write for a plan with no action Write
// can take.
var ErrNothingToWrite = errors.New("nothing to write")

// Write carries a recipe to what its plan proposes: upstream.version and
// the git source's ref (and commit pin, where the recipe has one) move to
// the new release, entries the new base contains leave the series, and the
// lock is re-synced. Debian and tarball alternatives must already name the
// new release (a person sets them: they cannot be guessed), or Write
// refuses rather than build the old release under the new version. The recipe is edited in place as text (comments and
// layout stay); when the re-sync fails the recipe is put back as it was.
// A trial with conflicts is refused: the conflicting entries need a person.
func Write(ctx context.Context, r *recipe.Recipe, rp RecipePlan, opts series.Options) (*WriteResult, error) {
	if rp.Error != "" {
		return nil, fmt.Errorf("%s could not be checked: %s", r.Path, rp.Error)
	}
	res := &WriteResult{Recipe: r.Name, Path: r.Path, Dropped: []string{}}
	ed := recipeEdit{GitSource: -1}
	resync := false
	for _, a := range rp.Actions {
		switch a.Kind {
		case ActionConflict:
			return nil, fmt.Errorf("%s: %s; resolve it, then run watch --write again", r.Path, a.Reason)
		case ActionRebase:
			rb := rp.Rebase
			for i, src := range r.Upstream.Sources {
				if src.Git != nil {
					ed.GitSource = i
					break
				}
			}
			if ed.GitSource < 0 {
				return nil, fmt.Errorf("%s has no git source to move to %s", r.Path, rb.To.Tag)
			}
			if stale := staleSources(r, rb.To); len(stale) > 0 {
				return nil, fmt.Errorf("%s: the other upstream alternatives would still build the old release: %s; then run watch --write again", r.Path, strings.Join(stale, "; "))
			}
			ed.Version, ed.Ref, ed.Commit = rb.To.Version, rb.To.Tag, rb.To.Commit
			res.From, res.To = rb.From, rb.To.Version
		case ActionDrop:
			i := seriesIndex(r, a.Entry)
			if i < 0 {
				return nil, fmt.Errorf("%s: the series has no entry %s (was the recipe edited since watch ran?)", r.Path, a.Entry)
			}
			ed.Drop = append(ed.Drop, i)
			res.Dropped = append(res.Dropped, a.Entry)
		case ActionResync, ActionSync:
			resync = true
		}
	}
	if ed.Version == "" && len(ed.Drop) == 0 && !resync {
		return nil, ErrNothingToWrite
	}

	orig, err := os.ReadFile(r.Path)
	if err != nil {
		return nil, fmt.Errorf("read recipe: %w", err)
	}
	next := r
	if ed.Version != "" || len(ed.Drop) > 0 {
		data, err := editRecipe(orig, ed)
		if err != nil {
			return nil, fmt.Errorf("edit %s: %w", r.Path, err)
		}
		next, err = checkEdited(r, data, ed)
		if err != nil {
			return nil, err
		}
		if err := fsutil.WriteFileAtomic(r.Path, data, fileMode(r.Path)); err != nil {
			return nil, fmt.Errorf("write recipe: %w", err)
		}
	}
	sres, err := series.Sync(ctx, next, opts)
	if err != nil {
		if next != r {
			if rerr := fsutil.WriteFileAtomic(r.Path, orig, fileMode(r.Path)); rerr != nil {
				return nil, fmt.Errorf("sync after editing %s: %w; and putting the recipe back failed too: %v (restore it from version control)", r.Path, err, rerr)
			}
		}
		return nil, fmt.Errorf("sync after editing %s (the recipe is back as it was): %w", r.Path, err)
	}
	res.Sync = sres
	res.Lock = &WriteLockSummary{Path: next.LockPath(), Revision: sres.Lock.Revision, Changed: sres.Changed}
	return res, nil
}

func fileMode(path string) os.FileMode {
	if fi, err := os.Stat(path); err == nil {
		return fi.Mode().Perm()
	}
	return 0o644
}

func seriesIndex(r *recipe.Recipe, entry string) int {
	for i, e := range r.Series {
		if e.String() == entry {
			return i
		}
	}
	return -1
}

// checkEdited loads the edited recipe the way lint does and checks that it
// says what the edit meant, and nothing else changed.
func checkEdited(old *recipe.Recipe, data []byte, ed recipeEdit) (*recipe.Recipe, error) {
	r, _, err := recipe.Parse(old.Path, data)
	if err != nil {
		return nil, fmt.Errorf("the edited recipe %s does not load (left unchanged): %w", old.Path, err)
	}
	want := *old
	want.Upstream.Sources = append([]recipe.Source(nil), old.Upstream.Sources...)
	if ed.Version != "" {
		want.Upstream.Version = ed.Version
		g := *old.Upstream.Sources[ed.GitSource].Git
		g.Ref = ed.Ref
		if g.Commit != "" {
			g.Commit = ed.Commit
		}
		want.Upstream.Sources[ed.GitSource] = recipe.Source{Git: &g}
	}
	want.Series = nil
	for i, e := range old.Series {
		if !containsInt(ed.Drop, i) {
			want.Series = append(want.Series, e)
		}
	}
	got := *r
	for _, x := range []*recipe.Recipe{&got, &want} {
		if len(x.Series) == 0 {
			x.Series = nil // "series: []" and no entries are the same series
		}
	}
	if series.RecipeDigest(&got) != series.RecipeDigest(&want) || r.Name != old.Name || len(r.Targets) != len(old.Targets) {
		return nil, fmt.Errorf("editing %s would change more than the plan says (left unchanged): edit it by hand: %s", old.Path, strings.Join(describeEdit(ed), "; "))
	}
	return r, nil
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

func describeEdit(ed recipeEdit) []string {
	var out []string
	if ed.Version != "" {
		out = append(out, fmt.Sprintf("upstream.version: %s, upstream.sources[%d].git.ref: %s", ed.Version, ed.GitSource, ed.Ref))
	}
	for _, i := range ed.Drop {
		out = append(out, fmt.Sprintf("remove series[%d]", i))
	}
	return out
}
