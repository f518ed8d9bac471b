// Package pipeline runs the stages in order for one recipe: prepare the
// patched tree (series), build it for each target (build, in a sandbox
// runner), package the staged trees (packager). It maps the recipe onto
// each stage's own input; the stages know nothing of each other.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/criu-forge/criu-forge/internal/build"
	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/packager"
	"github.com/criu-forge/criu-forge/internal/patch"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/signing"
)

// Options for Build.
type Options struct {
	Series  series.Options // cache, offline, log of the source stages
	OutDir  string         // default ./out
	Runner  string         // --runner; "" = recipe, CRIU_FORGE_RUNNER, bubblewrap
	Targets []string       // --target; none = every target of the recipe
	Jobs    int            // targets built at once
	Rebuild bool
	// PackageOnly repackages existing build outputs and never builds: a
	// target without an intact output for its inputs fails.
	PackageOnly bool
	// Incremental reuses each target's previous build tree when only the
	// source changed (make rebuilds what changed): fast while working on a
	// patch; releases build from a fresh copy.
	Incremental bool
	Verbose     bool
	Progress    io.Writer
	RPMSign     *signing.KeyOptions
}

// TargetResult is what happened to one target.
type TargetResult struct {
	Target  recipe.Target
	Build   *build.Result
	Package *packager.Result
	Err     error
}

// Result of Build.
type Result struct {
	Source  *Source
	Targets []TargetResult
}

// Failed counts the targets that did not end with packages.
func (r *Result) Failed() int {
	n := 0
	for _, t := range r.Targets {
		if t.Err != nil {
			n++
		}
	}
	return n
}

// Source is the prepared tree and where it came from; it is recorded next
// to the tree so that a build with an unchanged lock skips prepare.
type Source struct {
	Dir           string    `json:"dir"`
	Head          string    `json:"head"`
	RecipeDigest  string    `json:"recipeDigest"`
	ContentDigest string    `json:"contentDigest"`
	Revision      int       `json:"revision"`
	BaseKind      string    `json:"baseKind"`
	BaseCommit    string    `json:"baseCommit"`
	BaseDescribe  string    `json:"baseDescribe"`
	BaseDate      time.Time `json:"baseDate"`
	Applied       int       `json:"applied"`
	Contained     []string  `json:"contained,omitempty"`
}

// Build prepares, builds and packages the recipe's selected targets. One
// failing target does not stop the others; the error is only for what
// stops them all (no lock, a series that does not apply, no runner).
func Build(ctx context.Context, r *recipe.Recipe, opts Options) (*Result, error) {
	if opts.OutDir == "" {
		opts.OutDir = "out"
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	progress := opts.Progress
	targets, err := r.SelectTargets(opts.Targets)
	if err != nil {
		return nil, err
	}
	lock, err := series.ReadLock(r.LockPath())
	if err != nil {
		return nil, err
	}
	src, err := PrepareSource(ctx, r, lock, filepath.Join(opts.OutDir, "source"), opts.Series, progress)
	if err != nil {
		return nil, err
	}
	runnerName := opts.Runner
	if runnerName == "" {
		runnerName = r.Runner
	}
	runner, err := sandbox.Select(runnerName)
	if err != nil {
		return nil, err
	}

	specs := make([]build.Spec, len(targets))
	for i, t := range targets {
		specs[i] = buildSpec(r, t, src, runner, opts, progress)
	}
	outcomes := build.BuildAll(ctx, specs, opts.Jobs)
	res := &Result{Source: src}
	for i, o := range outcomes {
		tr := TargetResult{Target: targets[i], Build: o.Result, Err: o.Err}
		if o.Err == nil {
			tr.Package, tr.Err = packageTarget(ctx, r, targets[i], src, lock, o.Result, runner, specs[i], opts)
		}
		res.Targets = append(res.Targets, tr)
	}
	return res, nil
}

// PrepareSource makes the patched tree at dir, or reuses the one there when
// it was prepared from the same recipe and lock and still holds that head.
func PrepareSource(ctx context.Context, r *recipe.Recipe, lock *series.Lock, dir string, opts series.Options, progress io.Writer) (*Source, error) {
	if err := lock.CheckCurrent(r, r.LockPath()); err != nil {
		return nil, err
	}
	record := dir + ".json"
	if src, ok := reusable(record, dir, lock); ok {
		fmt.Fprintf(progress, "prepare: %s unchanged (lock revision %d, head %.12s)\n", dir, lock.Revision, src.Head)
		return src, nil
	}
	p, err := series.Prepare(ctx, r, dir, opts)
	if err != nil {
		return nil, err
	}
	src := &Source{
		Dir: p.Dir, Head: p.Head.String(), RecipeDigest: lock.RecipeDigest, ContentDigest: lock.ContentDigest,
		Revision: lock.Revision, BaseKind: p.Base.Kind, BaseCommit: p.Base.Commit.String(),
		BaseDescribe: p.Base.Describe, BaseDate: p.Base.Date.UTC(), Applied: p.Applied(),
	}
	for _, o := range p.Outcomes {
		if o.Status != patch.Applied {
			src.Contained = append(src.Contained, o.Patch.String())
		}
	}
	if err := writeJSON(record, src); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "prepare: %s: %s + %d patch(es), head %.12s\n", p.Dir, p.Base.Describe, src.Applied, src.Head)
	return src, nil
}

func reusable(record, dir string, lock *series.Lock) (*Source, bool) {
	data, err := os.ReadFile(record)
	if err != nil {
		return nil, false
	}
	var src Source
	if json.Unmarshal(data, &src) != nil || src.RecipeDigest != lock.RecipeDigest || src.ContentDigest != lock.ContentDigest {
		return nil, false
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return nil, false
	}
	head, err := repo.Head()
	if err != nil || head.Hash().String() != src.Head {
		return nil, false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, false
	}
	src.Dir = abs
	return &src, true
}

func buildSpec(r *recipe.Recipe, t recipe.Target, src *Source, runner sandbox.Runner, opts Options, progress io.Writer) build.Spec {
	spec := BuildSpec(r, t, src.Head, src.Head[:12], src.BaseDate.Unix())
	spec.SourceDir = src.Dir
	spec.Runner = runner
	spec.CacheDir = opts.Series.CacheDir
	spec.OutDir = opts.OutDir
	spec.Rebuild = opts.Rebuild
	spec.CachedOnly = opts.PackageOnly
	spec.Incremental = opts.Incremental
	spec.Verbose = opts.Verbose
	spec.Progress = progress
	return spec
}

// BuildSpec maps a recipe's target onto what decides its build (and so its
// build key): the target as the sandbox names it, the deps of its family,
// the make variables and steps, the source identity, GITID and
// SOURCE_DATE_EPOCH. plan computes keys from the same mapping.
func BuildSpec(r *recipe.Recipe, t recipe.Target, sourceID, gitID string, epoch int64) build.Spec {
	release := t.Codename()
	if release == "" {
		release = t.Release
	}
	return build.Spec{
		SourceID: sourceID,
		Target: build.Target{
			Name: t.ID(), Distro: t.Distro, Release: release, Arch: t.Arch,
			Mirror: t.Mirror, Image: t.Image, Family: t.Family(),
		},
		Deps:            r.Build.Deps[t.Family()],
		MakeVars:        r.Build.MakeVars,
		Steps:           r.Build.Steps,
		GitID:           gitID,
		SourceDateEpoch: epoch,
	}
}

// packageTarget packages one built target, resolving the libraries its
// binaries need inside the same builder. Packages made earlier from the
// same build and packaging inputs are reused while every file is intact.
func packageTarget(ctx context.Context, r *recipe.Recipe, t recipe.Target, src *Source, lock *series.Lock, b *build.Result, runner sandbox.Runner, spec build.Spec, opts Options) (*packager.Result, error) {
	pspec := packager.Spec{
		StageDir:        b.StageDir,
		Target:          packager.Target{Distro: t.Distro, Release: t.Release, Arch: t.Arch},
		Formats:         t.Formats,
		Name:            r.Package.Name,
		Mode:            r.Package.Mode,
		Split:           r.Package.Split,
		SeriesRevision:  lock.Revision,
		BuildRevision:   r.Package.Revision,
		Maintainer:      r.Package.Maintainer,
		Homepage:        r.Package.Homepage,
		License:         r.Package.License,
		Summary:         r.Package.Summary,
		Description:     r.Package.Description,
		Vendor:          r.Package.Vendor,
		Depends:         r.Package.Depends,
		Upstream:        upstreamOf(r, lock, src),
		Patches:         patchesOf(lock),
		BuilderID:       b.BuilderID,
		BuildKey:        b.Key,
		SourceDateEpoch: src.BaseDate.Unix(),
		RPMSign:         opts.RPMSign,
		OutDir:          opts.OutDir,
	}
	record := filepath.Join(opts.OutDir, t.ID(), "package.json")
	key := packageKey(pspec)
	if res, ok := reusablePackages(record, key); ok {
		fmt.Fprintf(opts.Progress, "%s: packages unchanged (%d file(s))\n", t.ID(), len(res.Artifacts))
		return res, nil
	}

	builder, err := sandbox.Prepare(ctx, runner, sandbox.BuilderSpec{Target: spec.Target, Packages: spec.Deps, CacheDir: spec.CacheDir})
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", t.ID(), err)
	}
	inBuilder := func(ctx context.Context, args ...string) ([]byte, error) {
		var out, errOut strings.Builder
		err := runner.Run(ctx, sandbox.RunSpec{Builder: builder, Cmd: args, Stdout: &out, Stderr: &errOut})
		if err != nil {
			return []byte(out.String()), fmt.Errorf("%s in builder: %w: %s", args[0], err, strings.TrimSpace(errOut.String()))
		}
		return []byte(out.String()), nil
	}
	pspec.Resolve = packager.DebianResolver{Run: inBuilder}
	if t.Family() == "rpm" {
		pspec.Resolve = packager.RPMResolver{Run: inBuilder}
	}
	res, err := packager.Package(ctx, pspec)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", t.ID(), err)
	}
	if err := writeJSON(record, packageRecord{Key: key, Result: res}); err != nil {
		return nil, err
	}
	return res, nil
}

// packageRecord remembers what a packaging run made, and from what.
type packageRecord struct {
	Key    string           `json:"key"`
	Result *packager.Result `json:"result"`
}

// packageKey hashes every packaging input: the build (its key) and the
// recipe's package section as the packager sees it. The resolver is left
// out: it answers from the builder, which the build key already covers.
func packageKey(spec packager.Spec) string {
	spec.Resolve = nil
	data, err := json.Marshal(spec)
	if err != nil {
		panic(err) // strings, numbers and maps of them
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// reusablePackages returns the recorded result when it was made for key and
// every file it names is still there with its sha256.
func reusablePackages(record, key string) (*packager.Result, bool) {
	data, err := os.ReadFile(record)
	if err != nil {
		return nil, false
	}
	var rec packageRecord
	if json.Unmarshal(data, &rec) != nil || rec.Key != key || rec.Result == nil || len(rec.Result.Artifacts) == 0 {
		return nil, false
	}
	for _, path := range []string{rec.Result.Manifest, rec.Result.SBOM} {
		if _, err := os.Stat(path); err != nil {
			return nil, false
		}
	}
	for _, a := range rec.Result.Artifacts {
		if fileSHA256(a.Path) != a.SHA256 {
			return nil, false
		}
	}
	return rec.Result, true
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// upstreamOf says where the base came from, for the manifest.
func upstreamOf(r *recipe.Recipe, lock *series.Lock, src *Source) packager.Upstream {
	up := packager.Upstream{Version: r.Upstream.Version, Commit: src.BaseCommit, SourceKind: src.BaseKind}
	for _, pin := range lock.Upstream {
		if pin.Kind != src.BaseKind || pin.Unresolved != "" {
			continue
		}
		switch pin.Kind {
		case "git":
			up.URL, up.Ref = pin.URL, pin.Ref
		case "tarball":
			up.URL = pin.URL
		case "debian-source":
			// The tarball's sha256 is pinned in series.lock; the package
			// names the source package and the file.
			up.URL = fmt.Sprintf("debian-source:%s/%s (%s)", pin.Package, pin.Version, pin.Suite)
			up.Ref = pin.Name
		}
		return up
	}
	return up
}

// patchesOf lists every applied patch of the lock with its provenance.
func patchesOf(lock *series.Lock) []packager.Patch {
	var out []packager.Patch
	for _, le := range lock.Entries {
		if le.Skipped != "" {
			continue
		}
		for _, lp := range le.Patches {
			p := packager.Patch{Name: lp.Subject, Source: le.Entry, URL: le.URL, SHA256: lp.SHA256}
			if lp.Commit != "" {
				p.Commits = []string{lp.Commit}
			}
			out = append(out, p)
		}
	}
	return out
}
