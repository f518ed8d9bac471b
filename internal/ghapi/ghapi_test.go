package ghapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
)

const testToken = "ghp_TESTTOKENshouldNEVERshow0123456789"

// sha makes a well-formed commit id from a number.
func sha(i int) string { return fmt.Sprintf("%040x", 0xc0ffee000+i) }

func newClient(t *testing.T, srv *fakegithub.Server, opts Options) *Client {
	t.Helper()
	opts.BaseURL = srv.URL()
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func commits(n int) []fakegithub.Commit {
	var out []fakegithub.Commit
	date := time.Date(2025, 3, 21, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= n; i++ {
		out = append(out, fakegithub.Commit{
			SHA: sha(i), Parents: []string{sha(i - 1)}, Message: fmt.Sprintf("pidfd: change %d\n\nbody", i),
			AuthorName: "Bhavik Sachdev", AuthorEmail: "b@example.org", AuthorDate: date.Add(time.Duration(i) * time.Minute),
		})
	}
	return out
}

// seed fills a fake with a pull request of 120 commits, releases and tags.
func seed(srv *fakegithub.Server) {
	srv.AddPR("checkpoint-restore", "criu", fakegithub.PR{
		Number: 2449, Title: "criu: Add support for pidfds", State: "closed",
		HeadSHA: sha(120), BaseRef: "criu-dev", BaseSHA: sha(0), Commits: commits(120),
	})
	for i, v := range []string{"v4.0", "v4.1", "v4.1.1", "v4.2", "v4.2.1"} {
		srv.AddRelease("checkpoint-restore", "criu", fakegithub.Release{
			Tag: v, Name: "CRIU " + v, PublishedAt: time.Date(2024+i/2, 1, 1, 0, 0, 0, 0, time.UTC),
		})
		srv.AddTag("checkpoint-restore", "criu", fakegithub.Tag{Name: v, CommitSHA: sha(500 + i)})
	}
}

func TestPullRequestAndPagination(t *testing.T) {
	srv := fakegithub.New(t)
	seed(srv)
	c := newClient(t, srv, Options{PerPage: 50})
	ctx := context.Background()

	pr, err := c.PullRequest(ctx, "checkpoint-restore", "criu", 2449)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Title != "criu: Add support for pidfds" || pr.State != "closed" || pr.Merged || pr.HeadSHA != sha(120) ||
		pr.BaseRef != "criu-dev" || pr.Commits != 120 || !strings.HasSuffix(pr.URL, "/checkpoint-restore/criu/pull/2449") ||
		!strings.HasSuffix(pr.HeadRepoCloneURL, "/checkpoint-restore/criu.git") {
		t.Errorf("pull request: %+v", pr)
	}

	got, err := c.PullCommits(ctx, "checkpoint-restore", "criu", 2449)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 120 {
		t.Fatalf("got %d commits, want 120", len(got))
	}
	for i, cm := range got {
		if cm.SHA != sha(i+1) || len(cm.Parents) != 1 || cm.Parents[0] != sha(i) || cm.AuthorName != "Bhavik Sachdev" ||
			!strings.HasPrefix(cm.Message, fmt.Sprintf("pidfd: change %d\n", i+1)) || cm.AuthorDate.IsZero() {
			t.Fatalf("commit %d: %+v", i, cm)
		}
	}
	var pages []string
	for _, r := range srv.Requests() {
		if strings.HasSuffix(r.Path, "/pulls/2449/commits") {
			pages = append(pages, r.Query)
		}
	}
	if want := []string{"page=1&per_page=50", "page=2&per_page=50", "page=3&per_page=50"}; !reflect.DeepEqual(pages, want) {
		t.Errorf("pages asked: %q, want %q", pages, want)
	}

	rels, err := c.Releases(ctx, "checkpoint-restore", "criu")
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 5 || rels[0].Tag != "v4.2.1" || rels[4].Tag != "v4.0" || rels[0].PublishedAt.IsZero() || rels[0].ID == 0 {
		t.Errorf("releases: %+v", rels)
	}
	tags, err := c.Tags(ctx, "checkpoint-restore", "criu")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 5 || tags[0] != (Tag{Name: "v4.2.1", CommitSHA: sha(504)}) {
		t.Errorf("tags: %+v", tags)
	}
}

func TestPullCommitsOverGitHubCap(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddPR("o", "r", fakegithub.PR{Number: 9, State: "open", HeadSHA: sha(260), Commits: commits(260)})
	c := newClient(t, srv, Options{})
	_, err := c.PullCommits(context.Background(), "o", "r", 9)
	if err == nil || !strings.Contains(err.Error(), "has 260 commits but GitHub's API lists only the first 250") {
		t.Fatalf("want the 250-commit cap named, got %v", err)
	}
	// Exactly 250 is not an error.
	srv.AddPR("o", "r", fakegithub.PR{Number: 10, State: "open", HeadSHA: sha(250), Commits: commits(250)})
	if got, err := c.PullCommits(context.Background(), "o", "r", 10); err != nil || len(got) != 250 {
		t.Fatalf("250 commits: %d, %v", len(got), err)
	}
}

// answers is everything a watch run asks, to compare runs.
type answers struct {
	PR       *PullRequest
	Commits  []Commit
	Releases []Release
	Tags     []Tag
}

func ask(t *testing.T, c *Client) answers {
	t.Helper()
	ctx := context.Background()
	var a answers
	var err error
	if a.PR, err = c.PullRequest(ctx, "checkpoint-restore", "criu", 2449); err != nil {
		t.Fatal(err)
	}
	if a.Commits, err = c.PullCommits(ctx, "checkpoint-restore", "criu", 2449); err != nil {
		t.Fatal(err)
	}
	if a.Releases, err = c.Releases(ctx, "checkpoint-restore", "criu"); err != nil {
		t.Fatal(err)
	}
	if a.Tags, err = c.Tags(ctx, "checkpoint-restore", "criu"); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConditionalRequestsAcrossRuns(t *testing.T) {
	srv := fakegithub.New(t)
	seed(srv)
	state := t.TempDir()
	opts := Options{StateDir: state, PerPage: 50, Token: testToken}

	first := newClient(t, srv, opts)
	a1 := ask(t, first)
	if s := first.Stats(); s.Requests != 6 || s.NotModified != 0 || s.CacheWriteErrors != 0 {
		t.Fatalf("first run stats: %+v", s)
	}

	srv.ResetLog()
	second := newClient(t, srv, opts)
	a2 := ask(t, second)
	if !reflect.DeepEqual(a1, a2) {
		t.Errorf("answers differ between runs:\n%+v\n%+v", a1, a2)
	}
	if s := second.Stats(); s.Requests != 6 || s.NotModified != 6 {
		t.Errorf("second run stats: %+v, want 6 requests, all 304", s)
	}
	if s := srv.Stats(); s.NotModified != 6 {
		t.Errorf("server saw %+v", s)
	}
	for _, r := range srv.Requests() {
		if !r.IfNoneMatch || !r.Authorized {
			t.Errorf("request without If-None-Match or token: %+v", r)
		}
	}

	// A force-push changes the answers: they are fetched again, not replayed.
	srv.SetPRHead("checkpoint-restore", "criu", 2449, sha(121), commits(121))
	third := newClient(t, srv, opts)
	a3 := ask(t, third)
	if a3.PR.HeadSHA != sha(121) || len(a3.Commits) != 121 || third.Stats().NotModified != 4 {
		t.Errorf("after force-push: head %s, %d commits, stats %+v", a3.PR.HeadSHA, len(a3.Commits), third.Stats())
	}

	// Nothing of the token lands in the cache.
	err := filepath.WalkDir(state, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if strings.Contains(string(data), testToken) {
			t.Errorf("token written to %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDamagedCacheIsAMiss(t *testing.T) {
	srv := fakegithub.New(t)
	seed(srv)
	state := t.TempDir()
	ask(t, newClient(t, srv, Options{StateDir: state}))
	var files []string
	_ = filepath.WalkDir(state, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if len(files) != 5 {
		t.Fatalf("want 5 cache entries (pull request, 2 pages of commits, releases, tags), got %d", len(files))
	}
	// Truncate one, flip a body byte in another, empty a third.
	for i, f := range files[:3] {
		data, _ := os.ReadFile(f)
		switch i {
		case 0:
			data = data[:len(data)/2]
		case 1:
			data[len(data)-2] ^= 0x20
		case 2:
			data = nil
		}
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, srv, Options{StateDir: state})
	ask(t, c)
	if s := c.Stats(); s.NotModified != 2 || s.Requests != 5 {
		t.Errorf("stats with 3 damaged entries: %+v, want 2 not modified of 5", s)
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		primary   time.Duration // reset in, for a primary limit
		secondary time.Duration // Retry-After, for a secondary limit
		maxWait   time.Duration
		wantWait  bool
		want      []string
		dontWant  []string
	}{
		{name: "primary near reset is waited out", primary: time.Second, maxWait: 10 * time.Second, wantWait: true},
		{name: "secondary near reset is waited out", secondary: time.Second, maxWait: 10 * time.Second, wantWait: true},
		{name: "primary far reset fails without token", primary: time.Hour, maxWait: time.Minute,
			want: []string{"pull request o/r#1: GitHub API rate limit exceeded; it resets at ", " UTC (in ", "allowed wait of 1m0s",
				"60 requests/hour without a token, 5,000 with one", "set GITHUB_TOKEN"}},
		{name: "primary far reset with token", token: testToken, primary: time.Hour, maxWait: 0,
			want: []string{"rate limit exceeded", " UTC (in ", "try again after the reset"}, dontWant: []string{"60 requests/hour", testToken}},
		{name: "secondary far", secondary: 5 * time.Minute, maxWait: time.Minute,
			want: []string{"secondary rate limit exceeded", " UTC (in 5m0s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			srv.AddPR("o", "r", fakegithub.PR{Number: 1, State: "open", HeadSHA: sha(1)})
			if tt.primary != 0 {
				srv.RateLimitNext(1, time.Now().Add(tt.primary))
			} else {
				srv.SecondaryRateLimitNext(1, tt.secondary)
			}
			c := newClient(t, srv, Options{Token: tt.token, MaxRateLimitWait: tt.maxWait})
			pr, err := c.PullRequest(context.Background(), "o", "r", 1)
			if tt.wantWait {
				if err != nil || pr.Number != 1 {
					t.Fatalf("want success after waiting, got %v", err)
				}
				if s := c.Stats(); s.RateLimitWaits != 1 || s.Requests != 2 {
					t.Errorf("stats: %+v", s)
				}
				return
			}
			var rl *RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("want *RateLimitError, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q has %q", err, w)
				}
			}
			if s := c.Stats(); s.RateLimitWaits != 0 || s.Requests != 1 {
				t.Errorf("stats: %+v", s)
			}
		})
	}
}

func TestTooManyRequestsIsARateLimit(t *testing.T) {
	srv := fakegithub.New(t)
	srv.FailNext(1, http.StatusTooManyRequests)
	c := newClient(t, srv, Options{Token: testToken})
	_, err := c.Tags(context.Background(), "o", "r")
	var rl *RateLimitError
	if !errors.As(err, &rl) || !rl.Secondary || c.Stats().Requests != 1 {
		t.Fatalf("want a secondary rate limit without retries, got %v (%+v)", err, c.Stats())
	}
}

func TestRateLimitWaitHonoursContext(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddPR("o", "r", fakegithub.PR{Number: 1, State: "open", HeadSHA: sha(1)})
	srv.RateLimitNext(1, time.Now().Add(30*time.Second))
	c := newClient(t, srv, Options{MaxRateLimitWait: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.PullRequest(ctx, "o", "r", 1)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("want the deadline to end the wait promptly, got %v after %s", err, time.Since(start))
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		fault        func(*fakegithub.Server)
		retries      int
		wantErr      []string
		wantRequests int64
		wantRetries  int64
	}{
		{name: "5xx then success", fault: func(s *fakegithub.Server) { s.FailNext(2, http.StatusBadGateway) },
			retries: 3, wantRequests: 3, wantRetries: 2},
		{name: "dropped connection then success", fault: func(s *fakegithub.Server) { s.DropNext(1) },
			retries: 3, wantRequests: 2, wantRetries: 1},
		{name: "5xx exhausted", fault: func(s *fakegithub.Server) { s.FailNext(10, http.StatusServiceUnavailable) },
			retries: 2, wantRequests: 3, wantRetries: 2,
			wantErr: []string{"pull request o/r#1: GitHub answered 503 Service Unavailable (after 2 retries)", "try again later"}},
		{name: "4xx not retried", fault: func(s *fakegithub.Server) { s.FailNext(1, http.StatusUnprocessableEntity) },
			retries: 3, wantRequests: 1, wantErr: []string{"GitHub answered 422 Unprocessable Entity"}},
		{name: "no retries asked", fault: func(s *fakegithub.Server) { s.FailNext(1, http.StatusInternalServerError) },
			retries: -1, wantRequests: 1, wantErr: []string{"500 Internal Server Error (after 0 retries)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			srv.AddPR("o", "r", fakegithub.PR{Number: 1, State: "open", HeadSHA: sha(1)})
			tt.fault(srv)
			c := newClient(t, srv, Options{Retries: tt.retries, Token: testToken})
			_, err := c.PullRequest(context.Background(), "o", "r", 1)
			if len(tt.wantErr) == 0 && err != nil {
				t.Fatalf("want success, got %v", err)
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
			if s := c.Stats(); s.Requests != tt.wantRequests || s.Retries != tt.wantRetries {
				t.Errorf("stats %+v, want %d requests, %d retries", s, tt.wantRequests, tt.wantRetries)
			}
		})
	}
}

// TestStalledServerIsATimeoutAndRetried: a server that does not answer in
// time counts as a transient failure.
func TestStalledServerIsATimeoutAndRetried(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddPR("o", "r", fakegithub.PR{Number: 1, State: "open", HeadSHA: sha(1)})
	srv.DelayNext(1, 5*time.Second)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 100 * time.Millisecond
	c := newClient(t, srv, Options{HTTPClient: &http.Client{Transport: transport}})
	start := time.Now()
	if _, err := c.PullRequest(context.Background(), "o", "r", 1); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Retries != 1 || s.Requests != 2 || time.Since(start) > 4*time.Second {
		t.Errorf("stats %+v after %s", s, time.Since(start))
	}
}

func TestNotFound(t *testing.T) {
	srv := fakegithub.New(t)
	c := newClient(t, srv, Options{})
	_, err := c.PullRequest(context.Background(), "checkpoint-restore", "criu", 99999)
	if !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "pull request checkpoint-restore/criu#99999 not found") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "GITHUB_TOKEN") {
		t.Errorf("without a token the 404 should hint at private repositories: %v", err)
	}
	if s := c.Stats(); s.Requests != 1 {
		t.Errorf("a 404 must not be retried: %+v", s)
	}
}

func TestNetworkDown(t *testing.T) {
	srv := fakegithub.New(t)
	c := newClient(t, srv, Options{Token: testToken})
	srv.Close()
	_, err := c.Releases(context.Background(), "checkpoint-restore", "criu")
	if err == nil {
		t.Fatal("want an error from a closed server")
	}
	for _, w := range []string{"releases of checkpoint-restore/criu: cannot reach the GitHub API at " + srv.URL(), "check the network connection", "--offline"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

// TestTokenNeverInErrors fails requests every way we know with a token set,
// including a server that echoes the Authorization header back.
func TestTokenNeverInErrors(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message": "bad request with %s"}`, r.Header.Get("Authorization"))
	}))
	defer echo.Close()

	cases := map[string]func(t *testing.T) error{
		"wrong token": func(t *testing.T) error {
			srv := fakegithub.New(t)
			srv.RequireToken("another")
			_, err := newClient(t, srv, Options{Token: testToken}).PullRequest(context.Background(), "o", "r", 1)
			if err != nil && !strings.Contains(err.Error(), "check GITHUB_TOKEN") {
				t.Errorf("401 should point at GITHUB_TOKEN: %v", err)
			}
			return err
		},
		"404": func(t *testing.T) error {
			_, err := newClient(t, fakegithub.New(t), Options{Token: testToken}).PullRequest(context.Background(), "o", "r", 1)
			return err
		},
		"5xx": func(t *testing.T) error {
			srv := fakegithub.New(t)
			srv.FailNext(100, http.StatusBadGateway)
			_, err := newClient(t, srv, Options{Token: testToken, Retries: 1}).Tags(context.Background(), "o", "r")
			return err
		},
		"rate limit": func(t *testing.T) error {
			srv := fakegithub.New(t)
			srv.RateLimitNext(1, time.Now().Add(time.Hour))
			_, err := newClient(t, srv, Options{Token: testToken}).Releases(context.Background(), "o", "r")
			return err
		},
		"network down": func(t *testing.T) error {
			srv := fakegithub.New(t)
			c := newClient(t, srv, Options{Token: testToken})
			srv.Close()
			_, err := c.Compare(context.Background(), "o", "r", "v4.1", "v4.2")
			return err
		},
		"echoing server": func(t *testing.T) error {
			c, err := New(Options{BaseURL: echo.URL + "/api/v3/", Token: testToken})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.PullRequest(context.Background(), "o", "r", 1)
			return err
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			err := run(t)
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(fmt.Sprintf("%+v", err), testToken) {
				t.Fatalf("token in error: %v", err)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	srv := fakegithub.New(t)
	srv.SetCompare("checkpoint-restore", "criu", sha(1), "v4.1", fakegithub.Comparison{Status: "ahead", AheadBy: 40})
	srv.SetCompare("checkpoint-restore", "criu", sha(2), "v4.0", fakegithub.Comparison{Status: "diverged", AheadBy: 3, BehindBy: 8})
	c := newClient(t, srv, Options{})
	ctx := context.Background()
	got, err := c.Compare(ctx, "checkpoint-restore", "criu", sha(1), "v4.1")
	if err != nil || *got != (Comparison{Status: "ahead", AheadBy: 40}) || !got.Contains() {
		t.Errorf("compare: %+v, %v", got, err)
	}
	got, err = c.Compare(ctx, "checkpoint-restore", "criu", sha(2), "v4.0")
	if err != nil || got.Contains() {
		t.Errorf("compare: %+v, %v", got, err)
	}
	if _, err := c.Compare(ctx, "checkpoint-restore", "criu", "nope", "v4.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown ref: %v", err)
	}
}

func TestRefusesBadRepoNames(t *testing.T) {
	srv := fakegithub.New(t)
	c := newClient(t, srv, Options{})
	for _, bad := range [][2]string{{"..", "criu"}, {"o", "../../user"}, {"o/x", "r"}, {"", "r"}} {
		if _, err := c.Tags(context.Background(), bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), "invalid repository") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("bad names reached the server (%d requests)", n)
	}
}

// TestRefusesMalformedAnswers: what the API says goes on to git and to
// the terminal, so malformed ids, clone URLs and tag names are refused.
func TestRefusesMalformedAnswers(t *testing.T) {
	tests := []struct {
		name string
		set  func(*fakegithub.Server)
		call func(*Client) error
		want string
	}{
		{"head id", func(s *fakegithub.Server) {
			s.AddPR("o", "r", fakegithub.PR{Number: 1, State: "open", HeadSHA: "main; rm -rf /"})
		}, func(c *Client) error { _, err := c.PullRequest(context.Background(), "o", "r", 1); return err },
			`malformed head commit "main; rm -rf /"`},
		{"clone URL", func(s *fakegithub.Server) {
			s.AddPR("o", "r", fakegithub.PR{Number: 1, State: "open", HeadSHA: sha(1), HeadRepoCloneURL: "ext::sh -c touch% /tmp/pwned"})
		}, func(c *Client) error { _, err := c.PullRequest(context.Background(), "o", "r", 1); return err },
			"unexpected clone URL"},
		{"commit id", func(s *fakegithub.Server) {
			s.AddPR("o", "r", fakegithub.PR{Number: 1, State: "open", HeadSHA: sha(1), Commits: []fakegithub.Commit{{SHA: "HEAD~1"}}})
		}, func(c *Client) error { _, err := c.PullCommits(context.Background(), "o", "r", 1); return err },
			`malformed commit id "HEAD~1"`},
		{"tag name", func(s *fakegithub.Server) {
			s.AddTag("o", "r", fakegithub.Tag{Name: "v4.3\x1b[2J", CommitSHA: sha(1)})
		}, func(c *Client) error { _, err := c.Tags(context.Background(), "o", "r"); return err },
			"invalid tag name"},
		{"release tag", func(s *fakegithub.Server) {
			s.AddRelease("o", "r", fakegithub.Release{Tag: "--upload-pack=x"})
		}, func(c *Client) error { _, err := c.Releases(context.Background(), "o", "r"); return err },
			"invalid tag name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakegithub.New(t)
			tt.set(srv)
			err := tt.call(newClient(t, srv, Options{}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("want %q, got %v", tt.want, err)
			}
		})
	}
}

func TestEnterpriseURLs(t *testing.T) {
	tests := []struct{ base, upload, wantBase, wantUpload, wantErr string }{
		{base: "https://ghe.example/api/v3/", wantBase: "https://ghe.example/api/v3/", wantUpload: "https://ghe.example/api/uploads/"},
		{base: "https://ghe.example/api/v3", wantBase: "https://ghe.example/api/v3/", wantUpload: "https://ghe.example/api/uploads/"},
		{base: "https://ghe.example", wantBase: "https://ghe.example/api/v3/", wantUpload: "https://ghe.example/api/uploads/"},
		{base: "https://api.ghe.example/", wantBase: "https://api.ghe.example/", wantUpload: "https://uploads.ghe.example/"},
		{base: "https://ghe.example/api/v3/", upload: "https://up.ghe.example/api/uploads", wantBase: "https://ghe.example/api/v3/", wantUpload: "https://up.ghe.example/api/uploads/"},
		{base: "https://user:secret@ghe.example/", wantErr: "do not put credentials in the URL"},
		{base: "ftp://ghe.example/", wantErr: "want an http(s) address"},
		{base: "https://ghe.example/?access_token=secret", wantErr: "must not have a query"},
		{base: "https://ghe.example:secret/", wantErr: "not a valid URL"},
	}
	for _, tt := range tests {
		c, err := New(Options{BaseURL: tt.base, UploadURL: tt.upload})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: want error %q, got %v", tt.base, tt.wantErr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.base, err)
			continue
		}
		if got := c.GitHub().BaseURL.String(); got != tt.wantBase {
			t.Errorf("%s: base %s, want %s", tt.base, got, tt.wantBase)
		}
		if got := c.GitHub().UploadURL.String(); got != tt.wantUpload {
			t.Errorf("%s: upload %s, want %s", tt.base, got, tt.wantUpload)
		}
	}
}

func TestParseRepo(t *testing.T) {
	tests := []struct{ in, owner, name, wantErr string }{
		{in: "checkpoint-restore/criu", owner: "checkpoint-restore", name: "criu"},
		{in: " checkpoint-restore/criu.git ", owner: "checkpoint-restore", name: "criu"},
		{in: "https://github.com/checkpoint-restore/criu", owner: "checkpoint-restore", name: "criu"},
		{in: "https://github.com/checkpoint-restore/criu.git", owner: "checkpoint-restore", name: "criu"},
		{in: "https://github.com/checkpoint-restore/criu/", owner: "checkpoint-restore", name: "criu"},
		{in: "git@github.com:checkpoint-restore/criu.git", owner: "checkpoint-restore", name: "criu"},
		{in: "ssh://git@github.com/checkpoint-restore/criu.git", owner: "checkpoint-restore", name: "criu"},
		{in: "ssh://git@ghe.example:2222/platform/criu.fork", owner: "platform", name: "criu.fork"},
		{in: "https://ghe.example/Platform_Team/criu_patched.git", owner: "Platform_Team", name: "criu_patched"},
		{in: "git://ghe.example/a/b", owner: "a", name: "b"},
		{in: "github.com/checkpoint-restore/criu", owner: "checkpoint-restore", name: "criu"},
		{in: "ghe.example/platform/criu.git", owner: "platform", name: "criu"},
		{in: "a/b/c", wantErr: "want owner/name"},
		{in: "", wantErr: "empty"},
		{in: "criu", wantErr: "want owner/name"},
		{in: "https://github.com/checkpoint-restore/criu/pull/2449", wantErr: "want owner/name"},
		{in: "https://github.com/checkpoint-restore", wantErr: "want owner/name"},
		{in: "../criu", wantErr: "invalid repository owner"},
		{in: "o/..", wantErr: "invalid repository name"},
		{in: "o/r.git.git", wantErr: "invalid repository name"},
		{in: "-o/r", wantErr: "invalid repository owner"},
		{in: "file:///srv/criu.git", wantErr: "unsupported URL scheme"},
		{in: "https://github.com/o/r?tab=x", wantErr: "want a repository URL"},
		{in: "git@github.com:/o/r", wantErr: "want user@host:owner/name"},
		{in: "o/r%2Fx", wantErr: "invalid repository name"},
	}
	for _, tt := range tests {
		owner, name, err := ParseRepo(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRepo(%q) = %q, %q, %v; want error %q", tt.in, owner, name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || owner != tt.owner || name != tt.name {
			t.Errorf("ParseRepo(%q) = %q, %q, %v; want %q, %q", tt.in, owner, name, err, tt.owner, tt.name)
		}
	}
}
