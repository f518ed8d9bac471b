// Package build runs a target's build steps in a sandbox builder and keeps
// the result: a staged install tree and a build record under
// OutDir/<target>/, reused while the build key is unchanged.
//
// Entry points: Build for one target, BuildAll for several in parallel.
//
// On disk: OutDir/<target>/{stage/,build.json,build.log} is the output
// (build.json written last, the directory renamed into place);
// OutDir/<target>.failed/ keeps a failed build's log; OutDir/.locks/
// serializes builds of a target. CacheDir/builders/ holds the builders
// (package sandbox), CacheDir/ccache/<target>/ the compiler cache and
// CacheDir/worktrees/<target>/ the build tree Incremental builds reuse.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/sandbox"
)

// Target is the distribution a build is for.
type Target = sandbox.Target

// Spec is one target's build.
type Spec struct {
	SourceDir       string            // the prepared tree; copied, never written
	SourceID        string            // commit or tree id of the prepared tree (upstream commit + patches)
	Target          Target            // Distro, Release, Arch, Mirror, Image, Family; Name names the output
	Deps            []string          // build dependencies for the target's family
	MakeVars        map[string]string // added to (and overriding) DefaultMakeVars
	Steps           []string          // shell steps; nil means DefaultSteps
	GitID           string            // passed as make GITID=... so `criu --version` names the patched commit
	SourceDateEpoch int64             // from the upstream commit's date
	Runner          sandbox.Runner
	Builder         *sandbox.Builder // already prepared; nil means sandbox.Prepare one for Target and Deps
	CacheDir        string           // builders/, ccache/<target>/
	OutDir          string           // <target>/stage, <target>/build.json, <target>/build.log
	Jobs            int              // make -j; 0 means the builder's CPU count
	Rebuild         bool             // build from a fresh copy even when an intact output for the key exists
	CachedOnly      bool             // never build: return the intact output for the key, or ErrNotBuilt
	Incremental     bool             // reuse the target's previous build tree when only the source changed (see worktree.go)
	Verbose         bool             // stream the compiler output to Progress
	Progress        io.Writer
}

// Durations of a build's stages.
type Durations struct {
	Builder time.Duration `json:"builder"`
	Copy    time.Duration `json:"copy"`
	Steps   time.Duration `json:"steps"`
	Total   time.Duration `json:"total"`
}

// Result is what Build made or found.
type Result struct {
	Target     string
	Key        string
	BuilderID  string
	StageDir   string
	RecordPath string
	LogPath    string
	CacheHit   bool
	Durations  Durations
}

// Outcome is one target's result in BuildAll.
type Outcome struct {
	Target string
	Result *Result
	Err    error
}

// ErrNotBuilt reports, with CachedOnly, that no intact output exists for
// the build's inputs.
var ErrNotBuilt = errors.New("no intact build output for these inputs")

// keyFormat is part of every build key: bump it when the meaning of an
// output changes, and every old output stops matching.
const keyFormat = 2

// Paths inside the sandbox. They are the same for every build, so ccache
// entries and debug paths do not depend on where the tree lives on the host.
const (
	srcMount    = "/build/src"
	stageMount  = "/build/stage"
	ccacheMount = "/build/ccache"
)

const (
	recordName = "build.json"
	logName    = "build.log"
	stageName  = "stage"
	tailLines  = 40
)

// multiarch maps Debian architectures to their library directory triplet.
var multiarch = map[string]string{
	"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "armhf": "arm-linux-gnueabihf",
	"ppc64el": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu",
	"i386": "i386-linux-gnu",
}

// DefaultMakeVars are the make variables a distribution package of CRIU
// wants (CRIU-FACTS: Makefile.install, Debian's and Fedora's packaging).
func DefaultMakeVars(t Target) map[string]string {
	t = t.Normalize()
	vars := map[string]string{
		"PREFIX": "/usr", "WERROR": "0", "PYTHON": "python3",
		// CRIU's own pip flags (Makefile.install) plus --no-compile: a
		// package ships sources; .pyc files are made on the installed system.
		"PIPFLAGS": "--ignore-installed --no-build-isolation --no-deps --no-index --progress-bar off --upgrade --no-compile",
	}
	if t.Family == "deb" {
		if m := multiarch[t.Arch]; m != "" {
			vars["LIBDIR"] = "/usr/lib/" + m
		}
	} else if t.Arch == "amd64" || t.Arch == "arm64" || t.Arch == "ppc64el" || t.Arch == "s390x" {
		vars["LIBDIR"] = "/usr/lib64"
	}
	return vars
}

// manPageTools are the packages CRIU's install-man needs; without them in
// the deps the default install step skips the man pages (make -o
// install-man) instead of failing on "asciidoc: not found".
var manPageTools = [][]string{{"asciidoc-base", "asciidoc", "asciidoctor", "rubygem-asciidoctor"}, {"xmlto"}}

func hasManPageTools(deps []string, vars map[string]string) bool {
	have := map[string]bool{}
	for _, d := range deps {
		have[d] = true
	}
	// With USE_ASCIIDOCTOR CRIU writes man pages with asciidoctor alone,
	// no xmlto (whose DocBook lookups need the network).
	if vars["USE_ASCIIDOCTOR"] != "" && (have["asciidoctor"] || have["rubygem-asciidoctor"]) {
		return true
	}
	for _, alternatives := range manPageTools {
		found := false
		for _, a := range alternatives {
			found = found || have[a]
		}
		if !found {
			return false
		}
	}
	return true
}

// DefaultSteps are `make -jN VARS` and `make install DESTDIR=<stage> VARS`.
func DefaultSteps(spec Spec) []string {
	vars := makeVarArgs(spec)
	jobs := "$(nproc)"
	if spec.Jobs > 0 {
		jobs = fmt.Sprint(spec.Jobs)
	}
	install := "make install DESTDIR=" + stageMount + " " + vars
	if !hasManPageTools(spec.Deps, spec.MakeVars) {
		install = "make -o install-man install DESTDIR=" + stageMount + " " + vars
	}
	return []string{"make -j" + jobs + " " + vars, install}
}

// makeVars merges the defaults, the spec's variables and GITID.
func makeVars(spec Spec) map[string]string {
	vars := DefaultMakeVars(spec.Target)
	for k, v := range spec.MakeVars {
		vars[k] = v
	}
	if spec.GitID != "" {
		vars["GITID"] = spec.GitID
	}
	return vars
}

func makeVarArgs(spec Spec) string {
	vars := makeVars(spec)
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	args := make([]string, len(names))
	for i, k := range names {
		args[i] = shellQuote(k + "=" + vars[k])
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for sh unless it needs no quoting.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./=:+,@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// stripStep strips the staged ELF files the way dh_strip and rpm's
// brp-strip do, inside the builder (its binutils know the target):
// executables and shared libraries lose their symbols, static libraries
// only their debug sections. Files strip does not recognize stay as they
// are. It runs after every build, default steps or the recipe's own.
const stripStep = `command -v strip >/dev/null || exit 0; ` +
	`find "$DESTDIR" -type f \( -perm -u+x -o -name '*.so' -o -name '*.so.*' \) ! -name '*.a' -exec ` +
	`strip --strip-unneeded --remove-section=.comment --remove-section=.note {} \; 2>/dev/null; ` +
	`find "$DESTDIR" -type f -name '*.a' -exec ` +
	`strip --strip-debug --enable-deterministic-archives --remove-section=.comment --remove-section=.note {} \; 2>/dev/null; true`

func (spec Spec) steps() []string {
	steps := spec.Steps
	if len(steps) == 0 {
		steps = DefaultSteps(spec)
	}
	return append(append([]string(nil), steps...), stripStep)
}

// Key is the build key: a hash of the source identity, the build section
// (deps, make variables, steps, GitID, SOURCE_DATE_EPOCH), the builder's id
// and keyFormat. Jobs, Verbose and the runner do not change the output and
// are left out.
func Key(spec Spec, builderID string) string {
	deps := append([]string(nil), spec.Deps...)
	sort.Strings(deps)
	in, _ := json.Marshal(struct {
		Format          int
		SourceID        string
		Target          string
		Deps            []string
		Vars            map[string]string
		Steps           []string
		SourceDateEpoch int64
		BuilderID       string
	}{keyFormat, spec.SourceID, spec.Target.Normalize().Name, deps, makeVars(spec), spec.steps(), spec.SourceDateEpoch, builderID})
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:16])
}

// Record is build.json: everything needed to tell what an output is.
type Record struct {
	Format          int               `json:"format"`
	Key             string            `json:"key"`
	Target          Target            `json:"target"`
	SourceID        string            `json:"source_id"`
	GitID           string            `json:"git_id,omitempty"`
	SourceDateEpoch int64             `json:"source_date_epoch"`
	Deps            []string          `json:"deps"`
	MakeVars        map[string]string `json:"make_vars"`
	Steps           []string          `json:"steps"`
	Runner          string            `json:"runner"`
	Builder         BuilderRef        `json:"builder"`
	StageDigest     string            `json:"stage_digest"`
	Durations       Durations         `json:"durations"`
	Finished        time.Time         `json:"finished"`
}

// BuilderRef names the builder a build ran in.
type BuilderRef struct {
	Key      string   `json:"key"`
	ID       string   `json:"id"`
	Packages []string `json:"packages"`
	Sources  []string `json:"sources,omitempty"`
	Image    string   `json:"image,omitempty"`
}

func (spec Spec) check() error {
	switch {
	case spec.SourceDir == "":
		return errors.New("no source directory given")
	case spec.SourceID == "":
		return errors.New("no source id given: the build key needs the prepared tree's commit")
	case spec.Runner == nil:
		return errors.New("no runner given")
	case spec.CacheDir == "" || spec.OutDir == "":
		return errors.New("cache and output directories are required")
	}
	name := spec.Target.Normalize().Name
	if !validName(name) {
		return fmt.Errorf("target name %q: use letters, digits, '.', '_' and '-', not starting with '.'", name)
	}
	if fi, err := os.Stat(spec.SourceDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("source directory %s: not a directory (%v)", spec.SourceDir, err)
	}
	return nil
}

// Build builds one target, or reuses its intact output when the build key
// is unchanged. Two processes building the same target serialize on a lock
// in OutDir; the output is made aside and renamed into place with its
// record written last, so a killed build leaves nothing that looks complete.
func Build(ctx context.Context, spec Spec) (*Result, error) {
	start := time.Now()
	spec.Target = spec.Target.Normalize()
	name := spec.Target.Name
	if err := spec.check(); err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	p := progress{w: spec.Progress, target: name, start: start}

	builder := spec.Builder
	if builder == nil {
		p.stage("builder", "preparing (%s, %s)", spec.Runner.Name(), spec.Target.Release)
		var err error
		builder, err = sandbox.Prepare(ctx, spec.Runner, sandbox.BuilderSpec{
			Target: spec.Target, Packages: spec.Deps, CacheDir: spec.CacheDir, Log: p.logWriter(spec.Verbose),
		})
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", name, err)
		}
	}
	builderTime := time.Since(start)
	key := Key(spec, builder.ID)

	lock, err := fsutil.Acquire(ctx, filepath.Join(spec.OutDir, ".locks", name+".lock"))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	defer lock.Release()

	dir := filepath.Join(spec.OutDir, name)
	res := &Result{Target: name, Key: key, BuilderID: builder.ID, StageDir: filepath.Join(dir, stageName),
		RecordPath: filepath.Join(dir, recordName), LogPath: filepath.Join(dir, logName)}
	if !spec.Rebuild {
		if rec, err := intactOutput(dir, key); err == nil {
			res.CacheHit = true
			res.Durations = rec.Durations
			p.line("cached: %s (key %s)", name, key)
			return res, nil
		}
	}
	if spec.CachedOnly {
		return nil, fmt.Errorf("build %s: %w (key %s) in %s: run criu-forge build first", name, ErrNotBuilt, key, spec.OutDir)
	}
	removeLeftovers(spec.OutDir, name)
	work, err := os.MkdirTemp(spec.OutDir, workPrefix(name))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(work)
		}
	}()
	d := Durations{Builder: builderTime}

	t0 := time.Now()
	src := filepath.Join(work, "src")
	var wt *worktree
	if spec.Incremental {
		var ok bool
		if wt, ok, err = openWorktree(spec.CacheDir, name, worktreeConfig(spec, builder.ID)); err != nil {
			return nil, fmt.Errorf("build %s: %w", name, err)
		} else if ok {
			defer wt.close()
			src = wt.building()
		}
	}
	if wt != nil {
		reused, err := wt.checkout(spec.SourceDir, !spec.Rebuild)
		if err != nil {
			return nil, fmt.Errorf("build %s: sync the source into the previous build tree: %w", name, err)
		}
		how := "fresh copy"
		if reused {
			how = "synced into the previous build tree"
		}
		p.stage("copy", "source %s, %s", short(spec.SourceID), how)
	} else {
		p.stage("copy", "source %s", short(spec.SourceID))
		if err := copyTree(spec.SourceDir, src); err != nil {
			return nil, fmt.Errorf("build %s: copy the source: %w", name, err)
		}
	}
	stage := filepath.Join(work, stageName)
	ccache := filepath.Join(spec.CacheDir, "ccache", name)
	for _, dir := range []string{stage, ccache} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("build %s: %w", name, err)
		}
	}
	d.Copy = time.Since(t0)

	logFile, err := os.Create(filepath.Join(work, logName))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	defer logFile.Close()
	out := io.Writer(logFile)
	if spec.Verbose && spec.Progress != nil {
		out = io.MultiWriter(logFile, &prefixWriter{w: spec.Progress, prefix: name + "| "})
	}

	t0 = time.Now()
	env := []string{
		"PATH=/usr/lib/ccache:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/tmp", "LC_ALL=C.UTF-8", "TZ=UTC",
		"CCACHE_DIR=" + ccacheMount, "CCACHE_BASEDIR=" + srcMount, "CCACHE_NOHASHDIR=1",
		"PIP_BREAK_SYSTEM_PACKAGES=1",
		// Recipe steps install into $DESTDIR, the staging tree.
		"DESTDIR=" + stageMount,
	}
	if spec.Target.Family == "deb" {
		// Debian's Python installs a --prefix install under /usr/local
		// unless told to use the layout dh_python3 uses:
		// /usr/lib/python3/dist-packages and /usr/bin.
		env = append(env, "DEB_PYTHON_INSTALL_LAYOUT=deb_system")
	}
	if spec.SourceDateEpoch != 0 {
		env = append(env, fmt.Sprintf("SOURCE_DATE_EPOCH=%d", spec.SourceDateEpoch))
	}
	mounts := []sandbox.Mount{
		{Source: src, Target: srcMount},
		{Source: stage, Target: stageMount},
		{Source: ccache, Target: ccacheMount},
	}
	steps := spec.steps()
	for i, step := range steps {
		p.stage("build", "step %d/%d: %s", i+1, len(steps), firstWords(step, 6))
		fmt.Fprintf(logFile, "+ %s\n", step)
		err := spec.Runner.Run(ctx, sandbox.RunSpec{
			Builder: builder, Cmd: []string{"sh", "-ec", step}, Dir: srcMount,
			Env: env, Mounts: mounts, Network: false, Stdout: out, Stderr: out,
		})
		if err != nil {
			logFile.Close()
			failed := keepFailedLog(work, spec.OutDir, name)
			if ctx.Err() != nil {
				p.line("%s: interrupted; log: %s", name, failed)
				return nil, fmt.Errorf("build %s: interrupted: %w (log: %s)", name, ctx.Err(), failed)
			}
			p.failure(failed)
			return nil, fmt.Errorf("build %s: step %q failed: %w (log: %s)", name, firstWords(step, 6), err, failed)
		}
	}
	d.Steps = time.Since(t0)
	if err := logFile.Close(); err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}

	// Only the install tree and the log are kept; the build tree goes, or
	// stays for the next incremental build.
	if wt != nil {
		err = wt.commit(spec.SourceDir)
	} else {
		err = os.RemoveAll(src)
	}
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	digest, err := treeDigest(stage)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	d.Total = time.Since(start)
	rec := Record{
		Format: keyFormat, Key: key, Target: spec.Target, SourceID: spec.SourceID, GitID: spec.GitID,
		SourceDateEpoch: spec.SourceDateEpoch, Deps: spec.Deps, MakeVars: makeVars(spec), Steps: steps,
		Runner:      spec.Runner.Name(),
		Builder:     BuilderRef{Key: builder.Key, ID: builder.ID, Packages: builder.Packages, Sources: builder.Sources, Image: builder.Image},
		StageDigest: digest, Durations: d, Finished: time.Now().UTC(),
	}
	data, _ := json.MarshalIndent(rec, "", "  ")
	if err := fsutil.WriteFileAtomic(filepath.Join(work, recordName), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	if err := fsutil.ReplaceDir(work, dir); err != nil {
		return nil, fmt.Errorf("build %s: publish the output: %w", name, err)
	}
	published = true
	_ = fsutil.SyncDir(spec.OutDir)
	os.RemoveAll(dir + ".failed")
	res.Durations = d
	p.line("built: %s in %s (key %s)", name, d.Total.Round(100*time.Millisecond), key)
	return res, nil
}

// intactOutput returns the record of dir when it was built for key and its
// stage tree still matches the digest the record holds.
func intactOutput(dir, key string) (*Record, error) {
	data, err := os.ReadFile(filepath.Join(dir, recordName))
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", recordName, err)
	}
	if rec.Key != key {
		return nil, fmt.Errorf("output is for key %s", rec.Key)
	}
	digest, err := treeDigest(filepath.Join(dir, stageName))
	if err != nil {
		return nil, err
	}
	if digest != rec.StageDigest {
		return nil, errors.New("stage tree changed since it was built")
	}
	return &rec, nil
}

// workPrefix starts the names of a target's work directories; '+' cannot
// occur in a target name, so no target's prefix matches another's.
func workPrefix(name string) string { return ".tmp-" + name + "+" }

// removeLeftovers deletes the work directories of killed builds of a target
// (the caller holds the target's lock, so none is in use).
func removeLeftovers(outDir, name string) {
	old, _ := filepath.Glob(filepath.Join(outDir, workPrefix(name)+"*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
}

// keepFailedLog moves a failed build's work directory (log and partial
// stage, no record) to OutDir/<target>.failed and returns its log's path.
func keepFailedLog(work, outDir, name string) string {
	failed := filepath.Join(outDir, name+".failed")
	os.RemoveAll(filepath.Join(work, "src"))
	if err := fsutil.ReplaceDir(work, failed); err != nil {
		return filepath.Join(work, logName)
	}
	return filepath.Join(failed, logName)
}

// BuildAll builds specs with up to jobs targets at once (0 means one per
// CPU). A failing target does not stop the others; the outcomes come back
// in the order of specs. Progress output of all specs is serialized
// write by write.
func BuildAll(ctx context.Context, specs []Spec, jobs int) []Outcome {
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	outcomes := make([]Outcome, len(specs))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var progressMu sync.Mutex
	for i := range specs {
		spec := specs[i]
		if spec.Progress != nil {
			spec.Progress = &syncWriter{mu: &progressMu, w: spec.Progress}
		}
		outcomes[i].Target = spec.Target.Normalize().Name
		wg.Add(1)
		go func(i int, spec Spec) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				outcomes[i].Err = fmt.Errorf("build %s: %w", outcomes[i].Target, ctx.Err())
				return
			}
			defer func() { <-sem }()
			outcomes[i].Result, outcomes[i].Err = Build(ctx, spec)
		}(i, spec)
	}
	wg.Wait()
	return outcomes
}

func validName(name string) bool {
	if name == "" || name[0] == '.' || strings.HasSuffix(name, ".failed") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return false
		}
	}
	return true
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		return strings.Join(f[:n], " ") + " ..."
	}
	return strings.Join(f, " ")
}
