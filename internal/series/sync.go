package series

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/patch"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/source"
	"github.com/criu-forge/criu-forge/internal/source/debsrc"
)

// Options apply to Sync and Prepare.
type Options struct {
	CacheDir   string
	Offline    bool          // no network: reuse what the cache and the old lock hold
	GitHub     *ghapi.Client // resolves pull requests; nil when offline
	Log        io.Writer
	HTTPClient *http.Client
}

func (o Options) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Drift is a pull request whose head moved since the lock was written.
type Drift struct {
	Entry    string `json:"entry"`
	Old, New string
}

// SyncResult says what Sync resolved and what changed.
type SyncResult struct {
	Lock    *Lock
	Changed bool     // the lock's content changed (and Revision rose)
	Drift   []Drift  // pull request heads that moved
	Notes   []string // alternatives that did not answer, skipped entries
}

// Sync resolves the recipe's upstream and series and writes its lock.
func Sync(ctx context.Context, r *recipe.Recipe, opts Options) (*SyncResult, error) {
	old, err := ReadLock(r.LockPath()) // nil, ErrNoLock on the first sync
	if err != nil && !errors.Is(err, ErrNoLock) {
		return nil, err
	}
	s := &resolver{r: r, opts: opts, old: old, mirrors: map[string]*source.Mirror{}}
	res := &SyncResult{}
	lock := &Lock{LockVersion: LockVersion, Recipe: r.Name, RecipeDigest: RecipeDigest(r), Entries: []LockedEntry{}}

	if lock.Upstream, err = s.pinUpstream(ctx, res); err != nil {
		return nil, err
	}
	for i, e := range r.Series {
		le, err := s.resolveEntry(ctx, e, res)
		if err != nil {
			return nil, fmt.Errorf("series[%d] %s: %w", i, e, err)
		}
		lock.Entries = append(lock.Entries, *le)
	}

	lock.ContentDigest = lock.contentDigest()
	switch {
	case old == nil:
		lock.Revision, res.Changed = 1, true
	case old.ContentDigest == lock.ContentDigest:
		lock.Revision = old.Revision
	default:
		lock.Revision, res.Changed = old.Revision+1, true
	}
	res.Lock = lock
	if res.Changed || old == nil {
		if err := lock.Write(r.LockPath()); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// resolver holds what one Sync or Prepare has opened.
type resolver struct {
	r       *recipe.Recipe
	opts    Options
	old     *Lock
	mirrors map[string]*source.Mirror
	failed  map[string]error
	// pinned: work from the lock (Prepare): no mirror update, only fetch
	// the locked commits a mirror lacks.
	pinned bool
}

// mirror opens (and, online, updates once) the mirror of a git URL.
func (s *resolver) mirror(ctx context.Context, gitURL string) (*source.Mirror, error) {
	if m, ok := s.mirrors[gitURL]; ok {
		return m, nil
	}
	if err := s.failed[gitURL]; err != nil {
		return nil, err
	}
	m, err := source.OpenMirror(s.opts.CacheDir, gitURL, s.opts.Offline)
	if err == nil {
		m.SetLog(s.opts.log())
		if !s.opts.Offline && !s.pinned {
			err = m.Update(ctx)
		}
	}
	if err != nil {
		if s.failed == nil {
			s.failed = map[string]error{}
		}
		s.failed[gitURL] = err
		return nil, err
	}
	s.mirrors[gitURL] = m
	return m, nil
}

// upstreamGitURL is the first git source of the recipe.
func (s *resolver) upstreamGitURL() string {
	for _, src := range s.r.Upstream.Sources {
		if src.Git != nil {
			return src.Git.URL
		}
	}
	return ""
}

// entryGitURL is the repository that holds an entry's commits: the
// upstream's, or for an entry naming another GitHub repository, the same
// host with that repository's path.
func (s *resolver) entryGitURL(e recipe.Entry) (string, error) {
	up := s.upstreamGitURL()
	if up == "" {
		return "", fmt.Errorf("%s needs a git upstream to fetch commits from; add a git source to upstream.sources", e)
	}
	if e.Repo == "" || e.Repo == s.r.Upstream.GitHub {
		return up, nil
	}
	u, err := url.Parse(up)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%s: repo %s: cannot derive its URL from the upstream %s", e, e.Repo, up)
	}
	u.Path = "/" + e.Repo + ".git"
	return u.String(), nil
}

func (s *resolver) pinUpstream(ctx context.Context, res *SyncResult) ([]LockedSource, error) {
	var pins []LockedSource
	var reasons []string
	resolved := 0
	for i, src := range s.r.Upstream.Sources {
		pin, err := s.pinSource(ctx, src)
		if err != nil {
			if prev := s.oldSource(i, src); prev != nil && prev.Unresolved == "" {
				note := fmt.Sprintf("upstream %s did not answer (%v): kept the pin from the lock", src.Kind(), err)
				res.Notes = append(res.Notes, note)
				fmt.Fprintln(s.opts.log(), "sync:", note)
				pin = prev
			} else {
				// The reason stays out of the lock: it holds paths and
				// addresses of this machine, and the lock is committed.
				pin = &LockedSource{Kind: src.Kind(), Unresolved: unresolvedReason}
				reasons = append(reasons, fmt.Sprintf("%s: %v", src.Kind(), err))
				res.Notes = append(res.Notes, fmt.Sprintf("upstream %s not pinned: %v", src.Kind(), err))
			}
		}
		if pin.Unresolved == "" {
			resolved++
		}
		pins = append(pins, *pin)
	}
	if resolved == 0 {
		return nil, fmt.Errorf("no upstream source answered; each said:\n  %s", strings.Join(reasons, "\n  "))
	}
	return pins, nil
}

// oldSource is the old lock's pin for alternative i, when it pins the same
// source as the recipe names now.
func (s *resolver) oldSource(i int, src recipe.Source) *LockedSource {
	if s.old == nil || i >= len(s.old.Upstream) {
		return nil
	}
	prev := s.old.Upstream[i]
	same := prev.Kind == src.Kind()
	switch {
	case src.Git != nil:
		same = same && prev.URL == src.Git.URL && prev.Ref == src.Git.Ref
	case src.DebianSource != nil:
		same = same && prev.Package == src.DebianSource.Package && prev.Version == src.DebianSource.Version
	case src.Tarball != nil:
		same = same && prev.SHA256 == src.Tarball.SHA256
	}
	if !same {
		return nil
	}
	return &prev
}

// unresolvedReason marks an alternative that sync could not pin.
const unresolvedReason = "did not answer during sync; run sync where it answers to pin it"

func (s *resolver) pinSource(ctx context.Context, src recipe.Source) (*LockedSource, error) {
	switch {
	case src.Git != nil:
		g := src.Git
		m, err := s.mirror(ctx, g.URL)
		if err != nil {
			return nil, err
		}
		commit, err := m.Resolve(g.Ref)
		if err != nil {
			return nil, err
		}
		if g.Commit != "" && !strings.HasPrefix(commit.String(), g.Commit) {
			return nil, fmt.Errorf("git %s: %s resolves to %s, but the recipe expects %s: the tag moved upstream, or the recipe is wrong", g.URL, g.Ref, commit, g.Commit)
		}
		return &LockedSource{Kind: "git", URL: g.URL, Ref: g.Ref, Commit: commit.String()}, nil
	case src.Tarball != nil:
		return &LockedSource{Kind: "tarball", URL: src.Tarball.URL, Name: path.Base(src.Tarball.URL), SHA256: src.Tarball.SHA256}, nil
	case src.DebianSource != nil:
		d := src.DebianSource
		got, err := debsrc.Fetch(ctx, debsrc.Request{
			Package: d.Package, Version: d.Version, Suite: d.Suite, Mirror: d.Mirror, Keyring: d.Keyring,
			CacheDir: s.opts.CacheDir, Offline: s.opts.Offline, HTTPClient: s.opts.HTTPClient,
		})
		if err != nil {
			return nil, err
		}
		return &LockedSource{Kind: "debian-source", Package: d.Package, Version: d.Version, Suite: d.Suite, Name: got.Name, SHA256: got.SHA256}, nil
	}
	return nil, errors.New("source of no known kind")
}

func (s *resolver) resolveEntry(ctx context.Context, e recipe.Entry, res *SyncResult) (*LockedEntry, error) {
	le := &LockedEntry{Entry: e.String(), Kind: e.Kind()}
	if e.Until != "" && recipe.CompareVersions(s.r.Upstream.Version, e.Until) >= 0 {
		le.Skipped = fmt.Sprintf("upstream %s is at or past %s, from which this entry is no longer needed", s.r.Upstream.Version, strings.TrimPrefix(e.Until, "v"))
		le.Patches = []LockedPatch{}
		res.Notes = append(res.Notes, fmt.Sprintf("%s: skipped: %s", e, le.Skipped))
		return le, nil
	}
	switch e.Kind() {
	case "pr":
		return s.resolvePR(ctx, e, le, res)
	case "commit", "range":
		gitURL, err := s.entryGitURL(e)
		if err != nil {
			return nil, err
		}
		m, err := s.mirror(ctx, gitURL)
		if err != nil {
			return nil, err
		}
		le.GitURL, le.Repo, le.Range = gitURL, e.Repo, e.Range
		var ids []plumbing.Hash
		if e.Commit != "" {
			if err := m.EnsureCommits(ctx, e.Commit); err != nil {
				return nil, err
			}
			id, err := m.Resolve(e.Commit)
			if err != nil {
				return nil, err
			}
			ids = []plumbing.Hash{id}
		} else {
			from, to, _ := strings.Cut(e.Range, "..")
			for _, end := range []string{from, to} {
				if fullCommitID.MatchString(end) {
					if err := m.EnsureCommits(ctx, end); err != nil {
						return nil, err
					}
				}
			}
			if ids, err = rangeCommits(m, from, to); err != nil {
				return nil, err
			}
		}
		le.Patches, err = lockCommits(m.Repo(), ids)
		return le, err
	case "patch":
		le.File = e.Patch
		patches, err := s.readPatchFile(e.Patch)
		if err != nil {
			return nil, err
		}
		for _, p := range patches {
			sum, err := patch.Hash(p.Diff)
			if err != nil {
				return nil, fmt.Errorf("patch %s: %w", e.Patch, err)
			}
			le.Patches = append(le.Patches, LockedPatch{Subject: subject(p), SHA256: sum})
		}
		return le, nil
	}
	return nil, errors.New("entry of no known kind")
}

func (s *resolver) resolvePR(ctx context.Context, e recipe.Entry, le *LockedEntry, res *SyncResult) (*LockedEntry, error) {
	prev := s.old.Entry(e)
	if s.opts.Offline || s.opts.GitHub == nil {
		if prev == nil || !sameSubset(prev, e.Commits) {
			why := "offline"
			if !s.opts.Offline {
				why = "no GitHub client"
			}
			return nil, fmt.Errorf("pull request not in the lock and cannot be resolved (%s): run sync where the GitHub API answers", why)
		}
		return prev, nil
	}
	owner, name, _ := s.r.GitHubRepo(e)
	pr, err := s.opts.GitHub.PullRequest(ctx, owner, name, e.PR)
	if err != nil {
		return nil, err
	}
	commits, err := s.opts.GitHub.PullCommits(ctx, owner, name, e.PR)
	if err != nil {
		return nil, err
	}
	ids, err := selectCommits(commits, e.Commits)
	if err != nil {
		return nil, err
	}
	gitURL, err := s.entryGitURL(e)
	if err != nil {
		return nil, err
	}
	m, err := s.mirror(ctx, gitURL)
	if err != nil {
		return nil, err
	}
	heads, err := m.FetchPulls(ctx, e.PR)
	if err != nil {
		return nil, err
	}
	if heads[e.PR].String() != pr.HeadSHA {
		return nil, fmt.Errorf("the API says the head is %s but refs/pull/%d/head is %s: GitHub may still be updating the ref; run sync again in a minute", pr.HeadSHA, e.PR, heads[e.PR])
	}
	if err := m.EnsureCommits(ctx, hashStrings(ids)...); err != nil {
		return nil, err
	}
	le.PR, le.Repo, le.URL, le.Title, le.Head, le.GitURL = e.PR, owner+"/"+name, pr.URL, pr.Title, pr.HeadSHA, gitURL
	le.State = pr.State
	if pr.Merged {
		le.State = "merged"
	}
	if prev != nil && prev.Head != "" && prev.Head != pr.HeadSHA {
		d := Drift{Entry: e.String(), Old: prev.Head, New: pr.HeadSHA}
		res.Drift = append(res.Drift, d)
		fmt.Fprintf(s.opts.log(), "sync: %s head moved: %s -> %s (force-push or new commits)\n", e, d.Old, d.New)
	}
	le.Patches, err = lockCommits(m.Repo(), ids)
	return le, err
}

var fullCommitID = regexp.MustCompile(`^[0-9a-f]{40}$`)

// sameSubset reports whether a locked PR entry holds exactly the commits a
// recipe entry selects (all of them when it selects none).
func sameSubset(le *LockedEntry, want []string) bool {
	if len(want) == 0 {
		return true
	}
	if len(want) != len(le.Patches) {
		return false
	}
	for i, w := range want {
		if !strings.HasPrefix(le.Patches[i].Commit, w) {
			return false
		}
	}
	return true
}

// selectCommits picks the recipe's subset of a pull request's commits, in
// the recipe's order, or all of them in the pull request's order.
func selectCommits(commits []ghapi.Commit, want []string) ([]plumbing.Hash, error) {
	var out []plumbing.Hash
	if len(want) == 0 {
		for _, c := range commits {
			out = append(out, plumbing.NewHash(c.SHA))
		}
		return out, nil
	}
	for _, w := range want {
		var match []string
		for _, c := range commits {
			if strings.HasPrefix(c.SHA, w) {
				match = append(match, c.SHA)
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("commit %s is not among the pull request's %d commits", w, len(commits))
		case 1:
			out = append(out, plumbing.NewHash(match[0]))
		default:
			return nil, fmt.Errorf("commit %s is ambiguous in the pull request: %s", w, strings.Join(match, ", "))
		}
	}
	return out, nil
}

func hashStrings(ids []plumbing.Hash) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func lockCommits(repo *git.Repository, ids []plumbing.Hash) ([]LockedPatch, error) {
	out := []LockedPatch{}
	for _, id := range ids {
		p, err := patch.FromCommit(repo, id)
		if err != nil {
			return nil, err
		}
		sum, err := patch.Hash(p.Diff)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", id, err)
		}
		out = append(out, LockedPatch{Commit: id.String(), Subject: subject(p), SHA256: sum})
	}
	return out, nil
}

func subject(p *patch.Patch) string {
	line, _, _ := strings.Cut(strings.TrimSpace(p.Message), "\n")
	if line == "" {
		return p.Name
	}
	return line
}

// readPatchFile reads a local patch file from the recipe's patch directory.
func (s *resolver) readPatchFile(name string) ([]*patch.Patch, error) {
	dir := s.r.PatchDir()
	full, err := fsutil.SafeJoin(dir, name)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", name, err)
	}
	if err := fsutil.InsideRoot(dir, full); err != nil {
		return nil, fmt.Errorf("patch %s: %w", name, err)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", name, err)
	}
	patches, err := patch.ParseMbox(data)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", full, err)
	}
	if len(patches) == 0 {
		return nil, fmt.Errorf("patch %s holds no change", full)
	}
	return patches, nil
}

// rangeCommits lists the commits of from..to (reachable from to, not from
// from), parents before children.
func rangeCommits(m *source.Mirror, from, to string) ([]plumbing.Hash, error) {
	fromID, err := m.Resolve(from)
	if err != nil {
		return nil, err
	}
	toID, err := m.Resolve(to)
	if err != nil {
		return nil, err
	}
	repo := m.Repo()
	start, err := repo.CommitObject(fromID)
	if err != nil {
		return nil, err
	}
	excluded := map[plumbing.Hash]bool{}
	err = object.NewCommitPreorderIter(start, nil, nil).ForEach(func(c *object.Commit) error {
		excluded[c.Hash] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", from, err)
	}
	var out []plumbing.Hash
	visited := map[plumbing.Hash]bool{}
	var visit func(id plumbing.Hash) error
	visit = func(id plumbing.Hash) error {
		if excluded[id] || visited[id] {
			return nil
		}
		visited[id] = true
		c, err := repo.CommitObject(id)
		if err != nil {
			return fmt.Errorf("commit %s: %w", id, err)
		}
		if c.NumParents() > 1 {
			return fmt.Errorf("range %s..%s holds the merge commit %s: list the commits to take instead", from, to, id)
		}
		for _, p := range c.ParentHashes {
			if err := visit(p); err != nil {
				return err
			}
		}
		out = append(out, id)
		return nil
	}
	if err := visit(toID); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("range %s..%s holds no commit", from, to)
	}
	return out, nil
}
