package ghapi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// TestAgainstFixtureUpstream asks the questions sync and watch ask, of a
// fake GitHub backed by the real CRIU fixture repository.
func TestAgainstFixtureUpstream(t *testing.T) {
	up := upstream.New(t)
	srv := fakegithub.New(t)
	const owner, repo = "checkpoint-restore", "criu"
	if err := srv.AddTagsFromGit(owner, repo, up.Dir); err != nil {
		t.Fatal(err)
	}
	srv.BackCompareWithGit(owner, repo, up.Dir)
	for _, n := range []int{101, 102, 103} {
		p := up.PRs[n]
		if err := srv.AddPRFromGit(owner, repo, up.Dir, fakegithub.PR{Number: n, Title: p.Title, BaseRef: p.BaseTag}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, srv, Options{})
	ctx := context.Background()

	for _, n := range []int{101, 102, 103} {
		want := up.PRs[n]
		pr, err := c.PullRequest(ctx, owner, repo, n)
		if err != nil {
			t.Fatal(err)
		}
		if pr.HeadSHA != want.Head || pr.BaseSHA != want.Base || pr.Title != want.Title {
			t.Errorf("PR %d: %+v, want head %s base %s", n, pr, want.Head, want.Base)
		}
		commits, err := c.PullCommits(ctx, owner, repo, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(commits) != len(want.Commits) {
			t.Fatalf("PR %d: %d commits, want %d", n, len(commits), len(want.Commits))
		}
		for i, cm := range commits {
			if cm.SHA != want.Commits[i] || cm.AuthorName != "Pat Contributor" {
				t.Errorf("PR %d commit %d: %+v, want %s", n, i, cm, want.Commits[i])
			}
		}
		if commits[0].Parents[0] != want.Base {
			t.Errorf("PR %d: first commit's parent %s, want the base %s", n, commits[0].Parents[0], want.Base)
		}
	}

	tags, err := c.Tags(ctx, owner, repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		if tag.CommitSHA != up.Commits[tag.Name] || tag.CommitSHA == up.TagObjects[tag.Name] {
			t.Errorf("tag %s names %s, want the commit %s (not the tag object)", tag.Name, tag.CommitSHA, up.Commits[tag.Name])
		}
	}

	// "Does release v4.2.1 contain the PR's head?" answered by history.
	tests := []struct {
		base, head string
		want       Comparison
	}{
		{"v4.1.1", "v4.2.1", Comparison{Status: "ahead", AheadBy: 1}},
		{up.PRs[102].Head, "v4.2.1", Comparison{Status: "behind", BehindBy: 2}},
		// 101 carries changes v4.2.1 has, but as other commits: git history
		// does not contain them (series detects that by content).
		{up.PRs[101].Head, "v4.2.1", Comparison{Status: "diverged", AheadBy: 1, BehindBy: 2}},
		{up.Commits["v4.2.1"], "v4.2.1", Comparison{Status: "identical"}},
	}
	for _, tt := range tests {
		got, err := c.Compare(ctx, owner, repo, tt.base, tt.head)
		if err != nil {
			t.Fatal(err)
		}
		if *got != tt.want {
			t.Errorf("compare %s...%s = %+v, want %+v", tt.base, tt.head, *got, tt.want)
		}
	}
}

// TestPublishThroughEscapeHatch creates a release and uploads an asset
// through GitHub() and Call, as `publish --github-release` does, checking
// that the uploads URL derived from the base URL reaches the server.
func TestPublishThroughEscapeHatch(t *testing.T) {
	srv := fakegithub.New(t)
	c := newClient(t, srv, Options{Token: testToken})
	ctx := context.Background()
	var rel *github.RepositoryRelease
	err := c.Call(ctx, "create release criu-forge/4.2.1-1", func(ctx context.Context) (resp *github.Response, err error) {
		rel, resp, err = c.GitHub().Repositories.CreateRelease(ctx, "platform", "criu", &github.RepositoryRelease{
			TagName: github.String("criu-forge/4.2.1-1"), Name: github.String("CRIU 4.2.1 with pidfd patches")})
		return resp, err
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "criu_4.2.1-1_amd64.deb")
	if err := os.WriteFile(path, []byte("!<arch>\ndebian-binary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upload := func() error {
		return c.Call(ctx, "upload "+filepath.Base(path), func(ctx context.Context) (*github.Response, error) {
			f, err := os.Open(path) // inside: Call may repeat it, net/http closes it
			if err != nil {
				return nil, err
			}
			defer f.Close()
			_, resp, err := c.GitHub().Repositories.UploadReleaseAsset(ctx, "platform", "criu", rel.GetID(),
				&github.UploadOptions{Name: filepath.Base(path)}, f)
			return resp, err
		})
	}
	if err := upload(); err != nil {
		t.Fatal(err)
	}
	got := srv.Releases("platform", "criu")
	if len(got) != 1 || len(got[0].Assets) != 1 || string(got[0].Assets[0].Data) != "!<arch>\ndebian-binary\n" ||
		got[0].Assets[0].Name != "criu_4.2.1-1_amd64.deb" {
		t.Fatalf("server state: %+v", got)
	}
	// A second upload of the same name is refused (422), not retried.
	before := c.Stats().Requests
	err = upload()
	if err == nil || !strings.Contains(err.Error(), "upload criu_4.2.1-1_amd64.deb: GitHub answered 422 Unprocessable Entity: Validation Failed; ReleaseAsset name already_exists") ||
		c.Stats().Requests != before+1 {
		t.Errorf("duplicate upload: %v after %d requests", err, c.Stats().Requests-before)
	}
}
