package ghapi

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// PullRequest is what sync and watch need of a pull request.
type PullRequest struct {
	Number           int
	Title            string
	URL              string // the web page
	State            string // open or closed
	Merged           bool
	MergedAt         time.Time
	MergeCommitSHA   string
	HeadSHA          string
	HeadRepoCloneURL string // "" when the head repository was deleted
	BaseRef          string
	BaseSHA          string
	Commits          int // as GitHub counts them; PullCommits lists at most 250
}

// Commit is one commit of a pull request.
type Commit struct {
	SHA         string
	Parents     []string
	Message     string
	AuthorName  string
	AuthorEmail string
	AuthorDate  time.Time
}

// Release is a GitHub release.
type Release struct {
	ID          int64
	Tag         string
	Name        string
	Draft       bool
	Prerelease  bool
	PublishedAt time.Time // zero for drafts
	URL         string
}

// Tag is a git tag and the commit it points to.
type Tag struct {
	Name      string
	CommitSHA string
}

// Comparison says how head relates to base in history.
type Comparison struct {
	Status   string // ahead, behind, identical or diverged
	AheadBy  int
	BehindBy int
}

// Contains reports whether head's history includes base: "does release X
// (head) contain commit Y (base)".
func (c *Comparison) Contains() bool { return c.Status == "identical" || c.Status == "ahead" }

// MaxPullCommits is GitHub's cap on the commits it lists for a pull request.
const MaxPullCommits = 250

// Commit ids are SHA-1 or SHA-256; anything else from the API is refused
// before it reaches git.
var shaPattern = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

func checkSHA(what, field, sha string, optional bool) error {
	if sha == "" && optional || shaPattern.MatchString(sha) {
		return nil
	}
	return fmt.Errorf("%s: GitHub answered a malformed %s %q", what, field, sha)
}

// checkCloneURL keeps the head repository's address to http(s): it goes
// to git fetch, and git's other transports (ext::, file://) would run
// commands or read local files on the word of the API.
func checkCloneURL(what, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.HasPrefix(s, "-") {
		return fmt.Errorf("%s: GitHub answered an unexpected clone URL %q", what, s)
	}
	return nil
}

// checkRefName refuses tag names no git ref can have, and control
// characters that would reach a terminal when watch prints them.
func checkRefName(what, name string) error {
	bad := name == "" || strings.HasPrefix(name, "-") || strings.Contains(name, "..")
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == ' ' || r == '~' || r == '^' || r == ':' || r == '\\' {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%s: GitHub answered an invalid tag name %q", what, name)
	}
	return nil
}

func checkRepo(owner, repo string) error {
	if err := ValidRepo(owner, repo); err != nil {
		return fmt.Errorf("repository %s/%s: %w", owner, repo, err)
	}
	return nil
}

// PullRequest fetches one pull request.
func (c *Client) PullRequest(ctx context.Context, owner, repo string, n int) (*PullRequest, error) {
	if err := checkRepo(owner, repo); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("pull request %s/%s#%d", owner, repo, n)
	var pr *github.PullRequest
	err := c.Call(ctx, what, func(ctx context.Context) (resp *github.Response, err error) {
		pr, resp, err = c.gh.PullRequests.Get(ctx, owner, repo, n)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	out := &PullRequest{
		Number:         pr.GetNumber(),
		Title:          pr.GetTitle(),
		URL:            pr.GetHTMLURL(),
		State:          pr.GetState(),
		Merged:         pr.GetMerged(),
		MergedAt:       pr.GetMergedAt().Time,
		MergeCommitSHA: pr.GetMergeCommitSHA(),
		HeadSHA:        pr.GetHead().GetSHA(),
		BaseRef:        pr.GetBase().GetRef(),
		BaseSHA:        pr.GetBase().GetSHA(),
		Commits:        pr.GetCommits(),
	}
	out.HeadRepoCloneURL = pr.GetHead().GetRepo().GetCloneURL()
	if err := checkCloneURL(what, out.HeadRepoCloneURL); err != nil {
		return nil, err
	}
	if out.Number != n {
		return nil, fmt.Errorf("%s: GitHub answered pull request #%d", what, out.Number)
	}
	if out.State != "open" && out.State != "closed" {
		return nil, fmt.Errorf("%s: GitHub answered an unknown state %q", what, out.State)
	}
	for _, f := range []struct {
		name, sha string
		optional  bool
	}{{"head commit", out.HeadSHA, false}, {"base commit", out.BaseSHA, true}, {"merge commit", out.MergeCommitSHA, true}} {
		if err := checkSHA(what, f.name, f.sha, f.optional); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PullCommits lists a pull request's commits, oldest first, across all
// pages. GitHub lists at most 250: a longer pull request is an error
// rather than a silently shortened series.
func (c *Client) PullCommits(ctx context.Context, owner, repo string, n int) ([]Commit, error) {
	if err := checkRepo(owner, repo); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("commits of pull request %s/%s#%d", owner, repo, n)
	list, err := paginate(ctx, c, what, func(ctx context.Context, opts *github.ListOptions) ([]*github.RepositoryCommit, *github.Response, error) {
		return c.gh.PullRequests.ListCommits(ctx, owner, repo, n, opts)
	})
	if err != nil {
		return nil, err
	}
	if len(list) >= MaxPullCommits {
		pr, err := c.PullRequest(ctx, owner, repo, n)
		if err != nil {
			return nil, err
		}
		if pr.Commits > len(list) {
			return nil, fmt.Errorf("%s: the pull request has %d commits but GitHub's API lists only the first %d; "+
				"pin the commits in the series, or fetch refs/pull/%d/head with git", what, pr.Commits, MaxPullCommits, n)
		}
	}
	out := make([]Commit, 0, len(list))
	for _, rc := range list {
		cm := Commit{
			SHA:         rc.GetSHA(),
			Message:     rc.GetCommit().GetMessage(),
			AuthorName:  rc.GetCommit().GetAuthor().GetName(),
			AuthorEmail: rc.GetCommit().GetAuthor().GetEmail(),
			AuthorDate:  rc.GetCommit().GetAuthor().GetDate().Time,
		}
		if err := checkSHA(what, "commit id", cm.SHA, false); err != nil {
			return nil, err
		}
		for _, p := range rc.Parents {
			if err := checkSHA(what, "parent commit id", p.GetSHA(), false); err != nil {
				return nil, err
			}
			cm.Parents = append(cm.Parents, p.GetSHA())
		}
		out = append(out, cm)
	}
	return out, nil
}

// Releases lists all releases, newest first as GitHub orders them.
func (c *Client) Releases(ctx context.Context, owner, repo string) ([]Release, error) {
	if err := checkRepo(owner, repo); err != nil {
		return nil, err
	}
	list, err := paginate(ctx, c, fmt.Sprintf("releases of %s/%s", owner, repo),
		func(ctx context.Context, opts *github.ListOptions) ([]*github.RepositoryRelease, *github.Response, error) {
			return c.gh.Repositories.ListReleases(ctx, owner, repo, opts)
		})
	if err != nil {
		return nil, err
	}
	out := make([]Release, 0, len(list))
	for _, r := range list {
		if err := checkRefName(fmt.Sprintf("releases of %s/%s", owner, repo), r.GetTagName()); err != nil {
			return nil, err
		}
		out = append(out, Release{
			ID:          r.GetID(),
			Tag:         r.GetTagName(),
			Name:        r.GetName(),
			Draft:       r.GetDraft(),
			Prerelease:  r.GetPrerelease(),
			PublishedAt: r.GetPublishedAt().Time,
			URL:         r.GetHTMLURL(),
		})
	}
	return out, nil
}

// Tags lists all tags with the commits they point to.
func (c *Client) Tags(ctx context.Context, owner, repo string) ([]Tag, error) {
	if err := checkRepo(owner, repo); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("tags of %s/%s", owner, repo)
	list, err := paginate(ctx, c, what, func(ctx context.Context, opts *github.ListOptions) ([]*github.RepositoryTag, *github.Response, error) {
		return c.gh.Repositories.ListTags(ctx, owner, repo, opts)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Tag, 0, len(list))
	for _, t := range list {
		tag := Tag{Name: t.GetName(), CommitSHA: t.GetCommit().GetSHA()}
		if err := checkRefName(what, tag.Name); err != nil {
			return nil, err
		}
		if err := checkSHA(what, "commit id of tag "+tag.Name, tag.CommitSHA, false); err != nil {
			return nil, err
		}
		out = append(out, tag)
	}
	return out, nil
}

// Compare says how head relates to base (refs or commit ids).
func (c *Client) Compare(ctx context.Context, owner, repo, base, head string) (*Comparison, error) {
	if err := checkRepo(owner, repo); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("comparison %s...%s in %s/%s", base, head, owner, repo)
	var cmp *github.CommitsComparison
	err := c.Call(ctx, what, func(ctx context.Context) (resp *github.Response, err error) {
		// One commit per page: only the counts are wanted.
		cmp, resp, err = c.gh.Repositories.CompareCommits(ctx, owner, repo, base, head, &github.ListOptions{PerPage: 1})
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	out := &Comparison{Status: cmp.GetStatus(), AheadBy: cmp.GetAheadBy(), BehindBy: cmp.GetBehindBy()}
	switch out.Status {
	case "ahead", "behind", "identical", "diverged":
	default:
		return nil, fmt.Errorf("%s: GitHub answered an unknown status %q", what, out.Status)
	}
	return out, nil
}

// maxPages bounds a listing, so that a server whose Link headers loop
// cannot keep a run going forever.
const maxPages = 1000

// paginate fetches every page of a list call, each through Call.
func paginate[T any](ctx context.Context, c *Client, what string,
	list func(context.Context, *github.ListOptions) ([]T, *github.Response, error)) ([]T, error) {
	var all []T
	opts := &github.ListOptions{PerPage: c.perPage, Page: 1}
	for pages := 1; ; pages++ {
		var items []T
		var next int
		err := c.Call(ctx, what, func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			items, resp, err = list(ctx, opts)
			if resp != nil {
				next = resp.NextPage
			}
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if next == 0 {
			return all, nil
		}
		if next <= opts.Page || pages >= maxPages {
			return nil, fmt.Errorf("%s: GitHub's pagination does not advance (page %d links to page %d)", what, opts.Page, next)
		}
		opts.Page = next
	}
}
