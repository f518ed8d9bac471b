// Package source brings the upstream base commit of a build into the
// cache, from the first of a recipe's alternatives that answers:
//
//   - git: a bare mirror per upstream URL (go-git), cloned once and then
//     fetched incrementally; the ref is resolved to a commit (annotated tags
//     peeled) and checked against the expected commit;
//   - tarball: a release tarball, verified by sha256 and imported as a
//     deterministic commit straight from the tar stream (no extraction);
//   - debian-source: the same release as Debian's archive carries it,
//     verified through the archive's signed chain (package debsrc), then
//     imported like a tarball.
//
// Whatever answered, the result is a commit in a bare repository of the
// cache, so the patch series applies the same way to every kind of source.
//
// Cache layout below Options.CacheDir:
//
//	git/<sha256(url)[:16]>-<name>.git   bare mirrors (and <mirror>.lock)
//	git/imports.git                     import commits, refs/imports/<sha256>
//	tarballs/<sha256>                   verified tarballs
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/source/debsrc"
)

// GitSpec names a commit of a git upstream.
type GitSpec struct {
	URL string // http(s)://, file:// or a local path
	// Ref is a tag, a branch, a full ref name (refs/pull/N/head) or a
	// commit id (full or abbreviated). A branch floats: the lock pins it.
	Ref string
	// Commit, when given, is the commit Ref must resolve to (full or
	// abbreviated id).
	Commit string
}

// TarballSpec names a release tarball by location and content.
type TarballSpec struct {
	URL    string // http(s)://, file:// or a local path
	SHA256 string
}

// DebianSpec names an orig tarball of a Debian source package; Fetch fills
// in CacheDir, Offline and HTTPClient.
type DebianSpec = debsrc.Request

// Alternative is one way to get the base; exactly one field is set.
type Alternative struct {
	Git     *GitSpec
	Tarball *TarballSpec
	Debian  *DebianSpec
}

// Options apply to every alternative.
type Options struct {
	CacheDir   string       // cache root (required)
	Offline    bool         // no network: answer from the cache or fail saying what is missing
	Log        io.Writer    // progress and warnings; nil discards them
	HTTPClient *http.Client // for tarball and Debian downloads; nil = a default with timeouts
}

func (o Options) logger() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Base is the upstream base commit, in a bare repository of the cache.
type Base struct {
	Kind        string          // "git", "tarball" or "debian-source"
	Alternative int             // index of the alternative that answered
	RepoPath    string          // bare repository holding Commit
	Repo        *git.Repository // RepoPath, opened
	Commit      plumbing.Hash   // the base commit (for tarballs, the import commit)
	Date        time.Time       // commit date, for SOURCE_DATE_EPOCH
	Describe    string          // one line for the manifest and the report
	SHA256      string          // tarball kinds: the verified tarball's sha256 (lower case)
	Tried       []error         // why earlier alternatives did not answer
}

// Fetch returns the base from the first alternative that answers. When
// none does, the error lists each alternative's failure.
func Fetch(ctx context.Context, alts []Alternative, opts Options) (*Base, error) {
	if opts.CacheDir == "" {
		return nil, errors.New("source: no cache directory given")
	}
	if len(alts) == 0 {
		return nil, errors.New("source: the recipe names no upstream source")
	}
	var tried []error
	for i, alt := range alts {
		base, err := fetchOne(ctx, alt, opts)
		if err == nil {
			base.Alternative = i
			base.Tried = tried
			fmt.Fprintf(opts.logger(), "source: %s\n", base.Describe)
			return base, nil
		}
		err = fmt.Errorf("alternative %d (%s): %w", i+1, alt.label(), err)
		tried = append(tried, err)
		if ctx.Err() != nil {
			break
		}
		if i+1 < len(alts) {
			fmt.Fprintf(opts.logger(), "source: %v; trying the next alternative\n", err)
		}
	}
	if len(tried) == 1 {
		return nil, tried[0]
	}
	return nil, fmt.Errorf("no upstream source answered:\n%w", errors.Join(tried...))
}

func fetchOne(ctx context.Context, alt Alternative, opts Options) (*Base, error) {
	set := 0
	for _, ok := range []bool{alt.Git != nil, alt.Tarball != nil, alt.Debian != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("an alternative must name exactly one of git, tarball, debian-source (it names %d)", set)
	}
	switch {
	case alt.Git != nil:
		return fetchGit(ctx, *alt.Git, opts)
	case alt.Tarball != nil:
		return fetchTarball(ctx, *alt.Tarball, opts)
	default:
		return fetchDebian(ctx, *alt.Debian, opts)
	}
}

// label names an alternative in messages, without credentials.
func (a Alternative) label() string {
	switch {
	case a.Git != nil:
		return "git " + redactURL(a.Git.URL)
	case a.Tarball != nil:
		return "tarball " + redactURL(a.Tarball.URL)
	case a.Debian != nil:
		return fmt.Sprintf("debian-source %s %s %s", a.Debian.Package, a.Debian.Version, a.Debian.Suite)
	}
	return "empty"
}

// fetchGit resolves a git alternative in its mirror. A commit the recipe
// pins and the mirror already holds needs no network at all.
func fetchGit(ctx context.Context, spec GitSpec, opts Options) (*Base, error) {
	want := strings.ToLower(strings.TrimSpace(spec.Commit))
	ref := strings.TrimSpace(spec.Ref)
	if ref == "" {
		ref = want
	}
	if ref == "" {
		return nil, errors.New("git source names neither a ref nor a commit")
	}
	if want != "" && (len(want) < 7 || !(fullHash.MatchString(want) || shortHash.MatchString(want))) {
		return nil, fmt.Errorf("git %s: expected commit %q is not a commit id of at least 7 hex digits", redactURL(spec.URL), spec.Commit)
	}
	m, err := OpenMirror(opts.CacheDir, spec.URL, opts.Offline)
	if err != nil {
		return nil, err
	}
	m.SetLog(opts.Log)
	pinned := false
	if m.Repo() != nil && want != "" {
		if h, _, err := m.resolve(ref); err == nil && strings.HasPrefix(h.String(), want) {
			pinned = true
		}
	}
	if !pinned && !opts.Offline {
		switch {
		case pullNumber(ref) > 0:
			_, err = m.FetchPulls(ctx, pullNumber(ref))
		case fullHash.MatchString(strings.ToLower(ref)):
			err = m.EnsureCommits(ctx, ref)
		default:
			err = m.Update(ctx)
		}
		if err != nil {
			return nil, err
		}
	}
	commit, kind, err := m.resolve(ref)
	if err != nil {
		if opts.Offline {
			return nil, fmt.Errorf("offline: %w: %s", err, offlineHint)
		}
		return nil, err
	}
	if want != "" && !strings.HasPrefix(commit.String(), want) {
		return nil, fmt.Errorf("git %s: %s resolves to commit %s, but the recipe expects %s: the tag moved upstream or the recipe is wrong (check upstream, then fix ref or commit)",
			redactURL(spec.URL), ref, commit, want)
	}
	c, err := m.Repo().CommitObject(commit)
	if err != nil {
		return nil, fmt.Errorf("git %s: read commit %s: %w", redactURL(spec.URL), commit, err)
	}
	describe := fmt.Sprintf("git %s %s (%s)", redactURL(spec.URL), ref, commit)
	switch {
	case kind == kindCommit:
		describe = fmt.Sprintf("git %s %s", redactURL(spec.URL), commit)
	case kind == kindBranch || (kind == kindRef && pullNumber(ref) > 0):
		describe = fmt.Sprintf("git %s %s (%s, floats: resolved now to %s; the lock pins it)", redactURL(spec.URL), ref, kind, commit)
	}
	return &Base{Kind: "git", RepoPath: m.Path(), Repo: m.Repo(), Commit: commit, Date: c.Committer.When, Describe: describe}, nil
}

// pullNumber returns N for "refs/pull/N/head", else 0.
func pullNumber(ref string) int {
	rest, ok := strings.CutPrefix(ref, "refs/pull/")
	if !ok {
		return 0
	}
	num, ok := strings.CutSuffix(rest, "/head")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// fetchDebian gets a verified orig tarball through debsrc and imports it.
func fetchDebian(ctx context.Context, req debsrc.Request, opts Options) (*Base, error) {
	req.CacheDir = opts.CacheDir
	req.Offline = opts.Offline
	if req.HTTPClient == nil {
		req.HTTPClient = opts.HTTPClient
	}
	res, err := debsrc.Fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	sum := strings.ToLower(res.SHA256)
	base, err := lookupImport(opts.CacheDir, sum)
	if err != nil || base == nil {
		base, err = importTarball(ctx, opts.CacheDir, res.Path, sum, res.Name, archiveLocation(res), opts.Log)
	}
	if err != nil {
		return nil, err
	}
	base.Kind = "debian-source"
	base.SHA256 = sum
	base.Describe = fmt.Sprintf("debian-source %s %s %s sha256:%s (%s, import %s)", req.Package, req.Version, req.Suite, sum, res.Name, base.Commit)
	return base, nil
}

// archiveLocation names an orig tarball by its place in the archive's pool,
// not by the mirror that served it: the import commit, whose message
// carries it, must be the same on every machine whatever mirror apt names.
func archiveLocation(res *debsrc.Result) string {
	if pool, ok := strings.CutPrefix(res.URL, res.Mirror); ok && res.Mirror != "" {
		return "debian-archive:" + strings.TrimPrefix(pool, "/")
	}
	return redactURL(res.URL)
}
