// Package plan says, without building anything, what `criu-forge build`
// would build for a recipe: one entry per target with the keys a CI engine
// needs to fan the targets out as matrix jobs and to skip the jobs whose
// output already exists.
//
// Entry point: Make. Its result is what `criu-forge plan RECIPE --json`
// prints; examples/github-actions/README.md describes the fields.
//
// Two keys, because the exact build key cannot be known before the build:
//
//   - InputKey hashes everything that decides a target's output except the
//     builder's installed package versions: the lock's digests (which pin
//     the upstream commit and every patch), the recipe's build and package
//     sections, the resolved build steps and make variables, the target
//     (distro, release, arch, mirror, image), the runner kind and the
//     criu-forge version. It is the same on every machine: a CI cache key.
//   - BuildKey is build.Key, exactly as `build` computes it: it also covers
//     the prepared head commit and the builder id (a hash of the packages
//     installed in the builder), so it is known only where the source was
//     prepared and the builder is cached. Otherwise it is null and
//     BuildKeyUnknown says why.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/criu-forge/criu-forge/internal/build"
	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/series"
)

// Format is the version of the plan's JSON; it rises when a field changes
// meaning, and every input key changes with it.
const Format = 1

// Options for Make.
type Options struct {
	CacheDir    string   // where builders are cached (--cache-dir)
	OutDir      string   // the build's --out; default "out"
	Runner      string   // --runner; "" = the recipe's, $CRIU_FORGE_RUNNER, or the first available
	Targets     []string // --target; none = every target of the recipe
	ToolVersion string   // criu-forge's version: a new release may build differently
}

// Plan is the output of `criu-forge plan --json`.
type Plan struct {
	Format  int      `json:"format"`
	Recipe  string   `json:"recipe"`
	Source  Source   `json:"source"`
	Targets []Target `json:"targets"`
	// Matrix is Targets in the shape GitHub Actions' strategy.matrix takes
	// (fromJSON of it): one include entry per target.
	Matrix Matrix `json:"matrix"`
}

// Source identifies the patched tree the targets build.
type Source struct {
	// ID is "sha256:" over the lock's recipe and content digests: it
	// changes with the upstream commit, any patch, or the recipe's
	// build/package sections, and is known from the committed lock alone.
	ID            string `json:"id"`
	RecipeDigest  string `json:"recipe_digest"`
	ContentDigest string `json:"content_digest"`
	LockRevision  int    `json:"lock_revision"`
	// Head is the prepared tree's commit when OutDir/source holds one
	// prepared from this lock; null otherwise, and HeadUnknown says why.
	Head        *string `json:"head"`
	HeadUnknown string  `json:"head_unknown,omitempty"`

	epoch int64 // the upstream commit's date, which builds take as SOURCE_DATE_EPOCH
}

// Target is one job of the matrix.
type Target struct {
	ID       string   `json:"id"` // what --target takes: debian-12, ubuntu-24.04-arm64
	Distro   string   `json:"distro"`
	Release  string   `json:"release"`
	Codename string   `json:"codename,omitempty"`
	Arch     string   `json:"arch"`
	Family   string   `json:"family"` // deb or rpm
	Formats  []string `json:"formats"`
	Image    string   `json:"image,omitempty"` // container image, used with the docker and podman runners
	Runner   string   `json:"runner"`
	InputKey string   `json:"input_key"`
	// BuildKey is the key build records in OutDir/<id>/build.json, or null.
	BuildKey        *string `json:"build_key"`
	BuildKeyUnknown string  `json:"build_key_unknown,omitempty"`
	// BuilderID is the cached builder's id the build key was made with.
	BuilderID string `json:"builder_id,omitempty"`
	// Output says what OutDir/<id> holds: "current" (a build with this
	// build key), "stale" (another key), "missing", or "unknown" (there is
	// a build but no build key to compare it with).
	Output string `json:"output"`
}

// Matrix is a GitHub Actions matrix.
type Matrix struct {
	Include []MatrixEntry `json:"include"`
}

// MatrixEntry is what one matrix job needs to know.
type MatrixEntry struct {
	Target   string `json:"target"`
	Arch     string `json:"arch"`
	Family   string `json:"family"`
	Image    string `json:"image,omitempty"`
	Runner   string `json:"runner"`
	InputKey string `json:"input_key"`
}

// Make plans the recipe's selected targets. It reads the recipe's lock, the
// prepared-source record and build records under OutDir, and the builder
// cache; it never fetches, prepares or builds.
func Make(r *recipe.Recipe, opts Options) (*Plan, error) {
	if opts.OutDir == "" {
		opts.OutDir = "out"
	}
	targets, err := r.SelectTargets(opts.Targets)
	if err != nil {
		return nil, err
	}
	lock, err := series.ReadLock(r.LockPath())
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w (run `criu-forge sync %s` first)", r.Path, err, r.Path)
	}
	if err := lock.CheckCurrent(r, r.LockPath()); err != nil {
		return nil, err
	}
	p := &Plan{Format: Format, Recipe: r.Name, Source: sourceOf(lock, filepath.Join(opts.OutDir, "source")), Targets: []Target{}}
	p.Matrix.Include = []MatrixEntry{}
	runner, err := runnerName(opts.Runner, r.Runner)
	if err != nil {
		return nil, err
	}
	var builders []*sandbox.Builder
	if opts.CacheDir != "" {
		if builders, err = sandbox.Builders(opts.CacheDir); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		pt := planTarget(r, t, p.Source, runner, builders, opts)
		p.Targets = append(p.Targets, pt)
		p.Matrix.Include = append(p.Matrix.Include, MatrixEntry{Target: pt.ID, Arch: pt.Arch, Family: pt.Family, Image: pt.Image, Runner: pt.Runner, InputKey: pt.InputKey})
	}
	return p, nil
}

// sourceOf names the source from the lock and, when one is recorded next
// to the prepared tree for this very lock, its head.
func sourceOf(lock *series.Lock, preparedDir string) Source {
	s := Source{
		ID:            digest(struct{ R, C string }{lock.RecipeDigest, lock.ContentDigest}),
		RecipeDigest:  lock.RecipeDigest,
		ContentDigest: lock.ContentDigest,
		LockRevision:  lock.Revision,
	}
	// The record `build` and `prepare` keep beside the tree (pipeline.Source).
	var rec struct {
		Head, RecipeDigest, ContentDigest string
		BaseDate                          time.Time
	}
	data, err := os.ReadFile(preparedDir + ".json")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.HeadUnknown = fmt.Sprintf("the source is not prepared in %s: `criu-forge build` prepares it (or `criu-forge prepare`)", preparedDir)
	case err != nil:
		s.HeadUnknown = err.Error()
	case json.Unmarshal(data, &rec) != nil || rec.Head == "":
		s.HeadUnknown = fmt.Sprintf("%s.json is not a prepared-source record", preparedDir)
	case rec.RecipeDigest != lock.RecipeDigest || rec.ContentDigest != lock.ContentDigest:
		s.HeadUnknown = fmt.Sprintf("the source in %s was prepared from another lock: the next build prepares it again", preparedDir)
	default:
		s.Head, s.epoch = &rec.Head, rec.BaseDate.Unix()
	}
	return s
}

// runnerName resolves the runner as `build` does, without requiring it to
// be usable here: the planning job need not be able to build.
func runnerName(flag, fromRecipe string) (string, error) {
	for _, n := range []string{flag, fromRecipe, strings.TrimSpace(os.Getenv(sandbox.EnvRunner))} {
		if n == "bwrap" {
			n = "bubblewrap"
		}
		if n == "" {
			continue
		}
		if !slices.Contains(sandbox.Runners, n) {
			return "", fmt.Errorf("unknown runner %q: choose one of %s", n, strings.Join(sandbox.Runners, ", "))
		}
		return n, nil
	}
	if r, err := sandbox.Select(""); err == nil {
		return r.Name(), nil
	}
	return sandbox.Runners[0], nil
}

func planTarget(r *recipe.Recipe, t recipe.Target, src Source, runner string, builders []*sandbox.Builder, opts Options) Target {
	spec := pipeline.BuildSpec(r, t, src.ID, "", 0)
	bt := spec.Target.Normalize()
	oci := runner == "docker" || runner == "podman"
	pt := Target{
		ID: t.ID(), Distro: t.Distro, Release: t.Release, Codename: t.Codename(), Arch: bt.Arch,
		Family: bt.Family, Formats: t.Formats, Image: t.Image, Runner: runner,
	}
	// build.Key with no builder id and the lock standing for the head
	// covers deps, make variables, steps and the key format; the rest is
	// what the builder id would otherwise have covered.
	pt.InputKey = digest(struct {
		Format      int
		Tool        string
		Partial     string
		Target      sandbox.Target
		OCI         bool
		FormatsWant []string
	}{Format, opts.ToolVersion, build.Key(spec, ""), bt, oci, t.Formats})

	builder, why := cachedBuilder(builders, bt, spec.Deps, oci)
	switch {
	case src.Head == nil:
		pt.BuildKeyUnknown = "needs the prepared head (see source.head_unknown)"
	case builder == nil:
		pt.BuildKeyUnknown = why
	default:
		full := pipeline.BuildSpec(r, t, *src.Head, (*src.Head)[:min(12, len(*src.Head))], src.epoch)
		key := build.Key(full, builder.ID)
		pt.BuildKey, pt.BuilderID = &key, builder.ID
	}
	pt.Output = outputState(filepath.Join(opts.OutDir, pt.ID, "build.json"), pt.BuildKey)
	return pt
}

// cachedBuilder finds the cached builder a build of target t would use:
// same distribution, release, architecture, mirror, image and package set.
// Builders made from different archive sources (this machine's apt
// configuration changed) are ambiguous: the build decides, so no key.
func cachedBuilder(builders []*sandbox.Builder, t sandbox.Target, deps []string, oci bool) (*sandbox.Builder, string) {
	wantImage := ""
	if oci {
		wantImage = t.Image
	}
	want, err := sandbox.PackageSet(deps)
	if err != nil {
		return nil, err.Error()
	}
	var found []*sandbox.Builder
	for _, b := range builders {
		bt := b.Target.Normalize()
		if bt.Family == t.Family && bt.Distro == t.Distro && bt.Release == t.Release && bt.Arch == t.Arch &&
			bt.Mirror == t.Mirror && b.Image == wantImage && slices.Equal(b.Packages, want) {
			found = append(found, b)
		}
	}
	switch len(found) {
	case 0:
		return nil, "no builder for this target is cached here yet: the build makes it, and its id (a hash of the installed package versions) completes the key"
	case 1:
		return found[0], ""
	}
	return nil, fmt.Sprintf("%d cached builders fit this target (made from different archive sources): the build picks the one for this machine's apt configuration", len(found))
}

// outputState compares the build record in the target's output folder
// with the build key.
func outputState(record string, key *string) string {
	data, err := os.ReadFile(record)
	if err != nil {
		return "missing"
	}
	var rec build.Record
	if json.Unmarshal(data, &rec) != nil {
		return "stale"
	}
	switch {
	case key == nil:
		return "unknown"
	case rec.Key == *key:
		return "current"
	}
	return "stale"
}

func digest(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings and numbers: cannot fail
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
