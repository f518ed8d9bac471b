// Package watch keeps a recipe current without anyone reading GitHub by
// hand. Run checks each recipe's upstream releases and tags (filtered, so
// that messy tags cannot pass as releases) and every pull request of its
// series (state, merge, head moved since the lock), tries the locked series
// on the newest release by content, and returns a Plan: rebase, drop what
// the new base contains, report conflicts with file and hunk, re-sync moved
// heads, rebuild. Write carries a recipe and its lock to the plan's new
// base; Act runs sync, build and publish for what changed; Daemon repeats
// a check on an interval.
//
// Conditional requests: the GitHub client keeps ETags in its state
// directory, so a run with nothing new costs only 304 answers. Trials run
// on the git mirror only when the inputs changed: their results are kept
// in the watch state directory, keyed by the lock and the release commits.
package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/patch"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/source"
)

// Filter says which tags count as releases.
type Filter struct {
	Prereleases bool           // also rc, beta... (default: stable only)
	Range       Range          // only versions in this range
	TagPattern  *regexp.Regexp // tags must match; its first group, when any, is the version
}

// Options of Run.
type Options struct {
	CacheDir string        // git mirrors (as sync uses them)
	StateDir string        // watch state: trial results kept across runs; "" keeps none
	GitHub   *ghapi.Client // required
	Filter   Filter        //
	Log      io.Writer     // progress; nil = quiet
	Now      func() time.Time
}

func (o Options) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// Run checks every recipe and returns the plan. A recipe that cannot be
// checked (network down, rate limit, broken lock) has its Error set and
// the others are still checked; the error return is for misuse only.
func Run(ctx context.Context, recipes []*recipe.Recipe, opts Options) (*Plan, error) {
	if opts.GitHub == nil {
		return nil, errors.New("watch: no GitHub client: watch needs the GitHub API (it cannot run --offline)")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	before := opts.GitHub.Stats()
	st := loadState(opts.StateDir)
	w := &watcher{opts: opts, state: st, releases: map[string]releaseList{}}
	plan := &Plan{PlanVersion: PlanVersion, CheckedAt: now().UTC(), Recipes: []RecipePlan{}}
	for _, r := range recipes {
		rp, err := w.check(ctx, r)
		if err != nil {
			rp.Error = err.Error()
		}
		if len(rp.Actions) > 0 {
			plan.ActionNeeded = true
		}
		plan.Recipes = append(plan.Recipes, *rp)
	}
	if w.stateChanged {
		if err := st.save(opts.StateDir); err != nil {
			fmt.Fprintf(opts.log(), "watch: %v (the next run repeats its trials)\n", err)
		}
	}
	after := opts.GitHub.Stats()
	plan.GitHub = RequestStats{Requests: after.Requests - before.Requests, NotModified: after.NotModified - before.NotModified}
	return plan, nil
}

type releaseList struct {
	list []Release
	err  error
}

// watcher holds what one Run has looked up, shared by its recipes.
type watcher struct {
	opts         Options
	state        *state
	stateChanged bool
	releases     map[string]releaseList // by owner/name
}

func (w *watcher) check(ctx context.Context, r *recipe.Recipe) (*RecipePlan, error) {
	rp := &RecipePlan{Recipe: r.Name, Path: r.Path, CurrentVersion: r.Upstream.Version,
		NewReleases: []Release{}, PullRequests: []PRStatus{}, Actions: []Action{}, Notes: []string{}}
	current, ok := ParseVersion(r.Upstream.Version)
	if !ok {
		return rp, fmt.Errorf("upstream.version %q is not a version watch can compare (such as 4.2.1)", r.Upstream.Version)
	}
	lock, err := series.ReadLock(r.LockPath())
	if errors.Is(err, series.ErrNoLock) {
		rp.Actions = append(rp.Actions, Action{Kind: ActionSync, Reason: "no series.lock: run `criu-forge sync` and commit the lock"})
		return rp, nil
	}
	if err != nil {
		return rp, err
	}
	rp.LockRevision = lock.Revision
	if err := lock.CheckCurrent(r, r.LockPath()); err != nil {
		rp.Actions = append(rp.Actions, Action{Kind: ActionSync, Reason: err.Error()})
	}

	owner, name, ok := r.GitHubRepo(recipe.Entry{})
	if !ok {
		rp.Notes = append(rp.Notes, "no GitHub repository (upstream.github or a github.com git URL): releases not watched")
	} else {
		all, err := w.upstreamReleases(ctx, owner, name)
		if err != nil {
			return rp, err
		}
		for _, rel := range all {
			if v, _ := ParseVersion(rel.Version); v.Compare(current) > 0 {
				rp.NewReleases = append(rp.NewReleases, rel)
			}
		}
	}

	for _, le := range lock.Entries {
		if le.Kind != "pr" || le.Skipped != "" {
			continue
		}
		st, err := w.pullRequest(ctx, r, le)
		if err != nil {
			return rp, err
		}
		rp.PullRequests = append(rp.PullRequests, *st)
	}

	if len(rp.NewReleases) > 0 || anyMerged(rp.PullRequests) {
		if err := w.tryContent(ctx, r, lock, rp); err != nil {
			return rp, err
		}
	}
	decide(rp)
	if rp.Rebase != nil {
		rp.Notes = append(rp.Notes, staleSources(r, rp.Rebase.To)...)
	}
	return rp, nil
}

func anyMerged(prs []PRStatus) bool {
	for _, p := range prs {
		if p.State == "merged" {
			return true
		}
	}
	return false
}

// upstreamReleases lists the releases and tags of a repository that pass
// the filter, newest version first; a tag without a release counts too
// (projects that only tag must not be missed).
func (w *watcher) upstreamReleases(ctx context.Context, owner, name string) ([]Release, error) {
	key := owner + "/" + name
	if got, ok := w.releases[key]; ok {
		return got.list, got.err
	}
	list, err := w.fetchReleases(ctx, owner, name)
	w.releases[key] = releaseList{list, err}
	return list, err
}

func (w *watcher) fetchReleases(ctx context.Context, owner, name string) ([]Release, error) {
	gh := w.opts.GitHub
	rels, err := gh.Releases(ctx, owner, name)
	if err != nil {
		return nil, err
	}
	tags, err := gh.Tags(ctx, owner, name)
	if err != nil {
		return nil, err
	}
	return mergeReleases(rels, tags, w.opts.Filter), nil
}

// mergeReleases joins releases and tags into one filtered list, newest
// version first, one entry per version (a GitHub release wins over a bare
// tag of the same version).
func mergeReleases(rels []ghapi.Release, tags []ghapi.Tag, f Filter) []Release {
	byTag := map[string]*Release{}
	var order []*Release
	add := func(r Release, v Version) {
		if r.Prerelease && !f.Prereleases || !f.Range.Contains(v) {
			return
		}
		rr := r
		byTag[r.Tag] = &rr
		order = append(order, &rr)
	}
	for _, rel := range rels {
		if rel.Draft {
			continue
		}
		v, ok := ParseTag(rel.Tag, f.TagPattern)
		if !ok {
			continue
		}
		r := Release{Tag: rel.Tag, Version: v.String(), Prerelease: rel.Prerelease || v.Prerelease(), Kind: "release", URL: rel.URL}
		if !rel.PublishedAt.IsZero() {
			t := rel.PublishedAt.UTC()
			r.PublishedAt = &t
		}
		add(r, v)
	}
	for _, t := range tags {
		if r := byTag[t.Name]; r != nil {
			r.Commit = t.CommitSHA
			continue
		}
		v, ok := ParseTag(t.Name, f.TagPattern)
		if !ok {
			continue
		}
		add(Release{Tag: t.Name, Version: v.String(), Commit: t.CommitSHA, Prerelease: v.Prerelease(), Kind: "tag"}, v)
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, _ := ParseVersion(order[i].Version)
		b, _ := ParseVersion(order[j].Version)
		if c := a.Compare(b); c != 0 {
			return c > 0
		}
		return order[i].Kind == "release" && order[j].Kind != "release"
	})
	out := []Release{}
	seen := map[string]bool{}
	for _, r := range order {
		v, _ := ParseVersion(r.Version)
		canon := fmt.Sprint(v.Nums, v.Pre, v.PreNum) // 4.2 and 4.2.0 are one version
		if seen[canon] {
			continue
		}
		seen[canon] = true
		out = append(out, *r)
	}
	return out
}

func (w *watcher) pullRequest(ctx context.Context, r *recipe.Recipe, le series.LockedEntry) (*PRStatus, error) {
	owner, name, ok := strings.Cut(le.Repo, "/")
	if !ok {
		e := recipe.Entry{PR: le.PR}
		if owner, name, ok = r.GitHubRepo(e); !ok {
			return nil, fmt.Errorf("%s: no GitHub repository for it in the lock or the recipe: run sync", le.Entry)
		}
	}
	pr, err := w.opts.GitHub.PullRequest(ctx, owner, name, le.PR)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", le.Entry, err)
	}
	st := &PRStatus{Entry: le.Entry, Repo: owner + "/" + name, Number: le.PR, Title: pr.Title, URL: pr.URL,
		State: pr.State, LockedState: le.State, LockedHead: le.Head, Head: pr.HeadSHA}
	if pr.Merged {
		st.State = "merged"
		if !pr.MergedAt.IsZero() {
			t := pr.MergedAt.UTC()
			st.MergedAt = &t
		}
	}
	st.HeadMoved = le.Head != "" && pr.HeadSHA != le.Head
	return st, nil
}

// contentResult is what the trials found; it is kept in the state so that
// an unchanged input is not tried again.
type contentResult struct {
	Rebase      *Rebase           `json:"rebase,omitempty"`
	ContainedIn map[string]string `json:"containedIn"` // entry -> oldest release (or "base") holding it
	Commits     map[string]string `json:"commits"`     // release tag -> commit
}

// tryContent decides by content what the new releases contain: the whole
// locked series is tried on the newest release, and each merged pull
// request alone on each newer release (newest first, stopping at the
// first that lacks it) and on the current base. Maintainers often land a
// pull request as other commits, so history (compare) cannot say this.
func (w *watcher) tryContent(ctx context.Context, r *recipe.Recipe, lock *series.Lock, rp *RecipePlan) error {
	var merged []string
	for _, p := range rp.PullRequests {
		if p.State == "merged" {
			merged = append(merged, p.Entry)
		}
	}
	key := trialKey(lock, r.Apply.Fuzz, rp.NewReleases, merged)
	res, ok := w.state.Trials[key]
	if !ok {
		var err error
		if res, err = w.runTrials(ctx, r, lock, rp, merged); err != nil {
			return err
		}
		w.state.put(key, res)
		w.stateChanged = true
	}
	for i := range rp.NewReleases {
		if c := res.Commits[rp.NewReleases[i].Tag]; c != "" {
			rp.NewReleases[i].Commit = c
		}
	}
	if res.Rebase != nil {
		rb := *res.Rebase
		rb.From = r.Upstream.Version
		rp.Rebase = &rb
	}
	for i := range rp.PullRequests {
		rp.PullRequests[i].ContainedIn = res.ContainedIn[rp.PullRequests[i].Entry]
	}
	return nil
}

// trialKey names a trial's inputs: the lock's content, the fuzz, the
// release commits (a moved tag is a new input) and the merged entries.
func trialKey(lock *series.Lock, fuzz int, rels []Release, merged []string) string {
	data, _ := json.Marshal(struct {
		Lock   string
		Fuzz   int
		Rels   []Release
		Merged []string
	}{lock.ContentDigest, fuzz, rels, merged})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (w *watcher) runTrials(ctx context.Context, r *recipe.Recipe, lock *series.Lock, rp *RecipePlan, merged []string) (*contentResult, error) {
	gitURL, base := "", ""
	for i, src := range r.Upstream.Sources {
		if src.Git != nil && i < len(lock.Upstream) && lock.Upstream[i].Unresolved == "" {
			gitURL, base = src.Git.URL, lock.Upstream[i].Commit
			break
		}
	}
	if gitURL == "" {
		return nil, errors.New("the series can only be tried on a new release from a git upstream: add a git alternative to upstream.sources and sync")
	}
	fmt.Fprintf(w.opts.log(), "watch: %s: trying the series on the new base\n", r.Name)
	m, err := source.OpenMirror(w.opts.CacheDir, gitURL, false)
	if err == nil {
		m.SetLog(w.opts.log())
		err = m.Update(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("update the git mirror to try the series: %w", err)
	}
	res := &contentResult{ContainedIn: map[string]string{}, Commits: map[string]string{}}
	commits := make([]plumbing.Hash, len(rp.NewReleases))
	for i, rel := range rp.NewReleases {
		id, err := m.Resolve(rel.Tag)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", rel.Tag, err)
		}
		if rel.Commit != "" && rel.Commit != id.String() {
			return nil, fmt.Errorf("release %s: GitHub says commit %s, the git mirror %s: the tag may have just moved; run watch again later", rel.Tag, rel.Commit, id)
		}
		commits[i] = id
		res.Commits[rel.Tag] = id.String()
	}
	patches, err := series.EntryPatches(ctx, r, lock, series.Options{CacheDir: w.opts.CacheDir, Log: w.opts.Log})
	if err != nil {
		return nil, err
	}
	opts := patch.Options{Fuzz: r.Apply.Fuzz}
	if len(rp.NewReleases) > 0 {
		rel := rp.NewReleases[0]
		rel.Commit = commits[0].String()
		rb := &Rebase{To: rel, Clean: true}
		rb.Entries, err = trySeries(ctx, m.Repo(), commits[0], lock, patches, opts)
		if err != nil {
			return nil, err
		}
		for _, e := range rb.Entries {
			if e.Result == TrialConflict {
				rb.Clean = false
			}
		}
		res.Rebase = rb
	}
	for _, entry := range merged {
		i := entryIndex(lock, entry)
		if i < 0 || patches[i] == nil {
			continue
		}
		for j, rel := range rp.NewReleases {
			in, err := contains(ctx, m.Repo(), commits[j], patches[i], opts)
			if err != nil {
				return nil, err
			}
			if !in {
				break
			}
			res.ContainedIn[entry] = rel.Tag
		}
		if n := len(rp.NewReleases); n > 0 && res.ContainedIn[entry] != rp.NewReleases[n-1].Tag {
			continue // a new release lacks it: whatever the base holds, it is not for dropping
		}
		if base != "" {
			in, err := contains(ctx, m.Repo(), plumbing.NewHash(base), patches[i], opts)
			if err != nil {
				return nil, err
			}
			if in {
				res.ContainedIn[entry] = "base"
			}
		}
	}
	return res, nil
}

func entryIndex(lock *series.Lock, entry string) int {
	for i, le := range lock.Entries {
		if le.Entry == entry {
			return i
		}
	}
	return -1
}

// trySeries applies the series entry by entry on base. An entry that
// conflicts is reported and left out, and the next entries are tried
// without it, so one trial names every entry that needs work.
func trySeries(ctx context.Context, repo *git.Repository, base plumbing.Hash, lock *series.Lock, patches [][]*patch.Patch, opts patch.Options) ([]EntryTrial, error) {
	head := base
	out := []EntryTrial{}
	for i, le := range lock.Entries {
		t := EntryTrial{Entry: le.Entry, Patches: len(le.Patches)}
		if le.Skipped != "" {
			t.Result = TrialSkipped
			out = append(out, t)
			continue
		}
		next, outcomes, err := patch.Apply(ctx, repo, head, patches[i], opts)
		var ce *patch.ConflictError
		switch {
		case errors.As(err, &ce):
			t.Result = TrialConflict
			t.Conflict = &Conflict{Index: ce.Index + 1, File: ce.File, Hunk: ce.Hunk, Line: ce.Line, Reason: ce.Reason}
			if ce.Index >= 0 && ce.Index < len(le.Patches) {
				t.Conflict.Patch = le.Patches[ce.Index].Subject
			}
		case err != nil:
			return nil, fmt.Errorf("try %s: %w", le.Entry, err)
		default:
			head = next
			for _, o := range outcomes {
				if o.Status == patch.Contained {
					t.Contained++
				}
			}
			t.Result = TrialApplies
			if len(outcomes) > 0 && t.Contained == len(outcomes) {
				t.Result = TrialContained
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// contains reports whether base already holds every patch of an entry.
func contains(ctx context.Context, repo *git.Repository, base plumbing.Hash, patches []*patch.Patch, opts patch.Options) (bool, error) {
	if len(patches) == 0 {
		return false, nil
	}
	_, outcomes, err := patch.Apply(ctx, repo, base, patches, opts)
	if errors.As(err, new(*patch.ConflictError)) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, o := range outcomes {
		if o.Status != patch.Contained {
			return false, nil
		}
	}
	return true, nil
}

// decide turns the findings into actions.
func decide(rp *RecipePlan) {
	dropped := map[string]bool{}
	if rb := rp.Rebase; rb != nil {
		rp.Actions = append(rp.Actions, Action{Kind: ActionRebase, From: rb.From, To: rb.To.Version,
			Reason: fmt.Sprintf("upstream released %s (%s); the recipe is at %s", rb.To.Version, rb.To.Tag, rb.From)})
		for _, e := range rb.Entries {
			switch e.Result {
			case TrialContained:
				dropped[e.Entry] = true
				rp.Actions = append(rp.Actions, Action{Kind: ActionDrop, Entry: e.Entry, To: rb.To.Version,
					Reason: fmt.Sprintf("%s: %s already contains its change: drop it from the series", e.Entry, rb.To.Tag)})
			case TrialConflict:
				c := e.Conflict
				where := c.File
				if c.Hunk != "" {
					where += fmt.Sprintf(" hunk %s at line %d", c.Hunk, c.Line)
				}
				rp.Actions = append(rp.Actions, Action{Kind: ActionConflict, Entry: e.Entry, To: rb.To.Version,
					Reason: fmt.Sprintf("%s does not apply on %s: patch %d %q, %s: rebase it (or drop it) by hand", e.Entry, rb.To.Tag, c.Index, c.Patch, where)})
			}
		}
	}
	for _, p := range rp.PullRequests {
		if p.ContainedIn == "base" && !dropped[p.Entry] {
			dropped[p.Entry] = true
			rp.Actions = append(rp.Actions, Action{Kind: ActionDrop, Entry: p.Entry,
				Reason: fmt.Sprintf("%s was merged and the current base %s already contains it: drop it from the series", p.Entry, rp.CurrentVersion)})
		}
		if p.State == "merged" && p.ContainedIn == "" {
			rp.Notes = append(rp.Notes, fmt.Sprintf("%s was merged but no watched release contains it yet", p.Entry))
		}
		if p.State == "closed" && p.LockedState != "closed" {
			rp.Notes = append(rp.Notes, fmt.Sprintf("%s was closed without merge: the locked patches still build; consider dropping it", p.Entry))
		}
		if p.HeadMoved && !dropped[p.Entry] {
			rp.Actions = append(rp.Actions, Action{Kind: ActionResync, Entry: p.Entry, Old: p.LockedHead, New: p.Head,
				Reason: fmt.Sprintf("%s head moved %.12s -> %.12s (force-push or new commits): run sync and review the change", p.Entry, p.LockedHead, p.Head)})
		}
	}
	if rp.Rebase != nil || len(dropped) > 0 {
		reason := "the series changes"
		if rp.Rebase != nil {
			reason = "the base moves to " + rp.Rebase.To.Version
		}
		rp.Actions = append(rp.Actions, Action{Kind: ActionRebuild, Reason: reason + ": build and publish new packages"})
	}
}

// staleSources names the upstream alternatives that still name another
// release than to: Write cannot carry them (a Debian revision or a tarball
// checksum cannot be guessed) and refuses while they would build the old
// release under the new version.
func staleSources(r *recipe.Recipe, to Release) []string {
	var out []string
	for i, src := range r.Upstream.Sources {
		switch {
		case src.DebianSource != nil:
			d := src.DebianSource
			if v, ok := ParseVersion(debianUpstreamVersion(d.Version)); !ok || v.String() != to.Version {
				out = append(out, fmt.Sprintf("upstream.sources[%d] debian-source %s %s: set the version of the Debian package that carries %s (its Debian revision cannot be guessed), or remove it", i, d.Package, d.Version, to.Version))
			}
		case src.Tarball != nil:
			if !strings.Contains(src.Tarball.URL, to.Version) {
				out = append(out, fmt.Sprintf("upstream.sources[%d] tarball: set the URL and sha256 of the %s tarball, or remove it", i, to.Version))
			}
		}
	}
	return out
}

// debianUpstreamVersion strips a Debian version's epoch and revision:
// 1:4.2.1-3 -> 4.2.1.
func debianUpstreamVersion(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[:i]
	}
	return v
}
