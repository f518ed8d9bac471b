package fakegithub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// do sends one request and returns the status, headers and body.
func do(t *testing.T, method, url string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

func TestPaginationAndLinks(t *testing.T) {
	s := New(t)
	var commits []Commit
	for i := 0; i < 120; i++ {
		commits = append(commits, Commit{SHA: fmt.Sprintf("%040x", i+1), Message: strconv.Itoa(i)})
	}
	s.AddPR("o", "r", PR{Number: 1, HeadSHA: commits[119].SHA, Commits: commits})
	tests := []struct {
		query     string
		wantFirst string
		wantLen   int
		wantLinks []string
	}{
		{"", "0", 30, []string{`page=2&per_page=30>; rel="next"`, `page=4&per_page=30>; rel="last"`}},
		{"?per_page=50&page=2", "50", 50, []string{`page=3&per_page=50>; rel="next"`, `page=1&per_page=50>; rel="first"`, `page=1&per_page=50>; rel="prev"`}},
		{"?per_page=50&page=3", "100", 20, []string{`rel="first"`, `page=2&per_page=50>; rel="prev"`}},
		{"?per_page=500", "0", 100, []string{`page=2&per_page=100>; rel="next"`}},
		{"?per_page=50&page=9", "", 0, []string{`rel="prev"`}},
	}
	for _, tt := range tests {
		status, h, body := do(t, "GET", s.URL()+"repos/o/r/pulls/1/commits"+tt.query, nil, nil)
		var page []struct {
			SHA    string `json:"sha"`
			Commit struct {
				Message string `json:"message"`
			} `json:"commit"`
		}
		if err := json.Unmarshal(body, &page); err != nil || status != 200 {
			t.Fatalf("%s: %d %v", tt.query, status, err)
		}
		if len(page) != tt.wantLen || tt.wantLen > 0 && page[0].Commit.Message != tt.wantFirst {
			t.Errorf("%s: %d items starting %+v", tt.query, len(page), page)
		}
		for _, l := range tt.wantLinks {
			if !strings.Contains(h.Get("Link"), l) {
				t.Errorf("%s: Link %q lacks %q", tt.query, h.Get("Link"), l)
			}
		}
		if !strings.HasPrefix(h.Get("Link"), "<"+strings.TrimSuffix(s.URL(), "/api/v3/")+"/api/v3/repos/o/r/pulls/1/commits?") && h.Get("Link") != "" {
			t.Errorf("%s: Link does not point back at the API: %s", tt.query, h.Get("Link"))
		}
	}
	// GitHub lists at most 250 commits but counts them all.
	var many []Commit
	for i := 0; i < 300; i++ {
		many = append(many, Commit{SHA: fmt.Sprintf("%040x", i+1)})
	}
	s.AddPR("o", "r", PR{Number: 2, HeadSHA: many[299].SHA, Commits: many})
	_, h, _ := do(t, "GET", s.URL()+"repos/o/r/pulls/2/commits?per_page=100", nil, nil)
	if !strings.Contains(h.Get("Link"), `page=3&per_page=100>; rel="last"`) {
		t.Errorf("300 commits should list as 3 pages (250): %s", h.Get("Link"))
	}
	_, _, body := do(t, "GET", s.URL()+"repos/o/r/pulls/2", nil, nil)
	if !bytes.Contains(body, []byte(`"commits":300`)) {
		t.Errorf("pull request should count all 300 commits: %s", body)
	}
}

func TestETagsAnd304(t *testing.T) {
	s := New(t)
	s.AddTag("o", "r", Tag{Name: "v4.2.1", CommitSHA: strings.Repeat("a", 40)})
	status, h, body := do(t, "GET", s.URL()+"repos/o/r/tags", nil, nil)
	etag := h.Get("ETag")
	if status != 200 || etag == "" || !bytes.Contains(body, []byte(`"v4.2.1"`)) {
		t.Fatalf("%d %q %s", status, etag, body)
	}
	status, h, body = do(t, "GET", s.URL()+"repos/o/r/tags", nil, map[string]string{"If-None-Match": "W/" + etag})
	if status != 304 || len(body) != 0 || h.Get("ETag") != etag || h.Get("X-RateLimit-Remaining") == "" {
		t.Errorf("matching If-None-Match: %d %v %q", status, h, body)
	}
	s.AddTag("o", "r", Tag{Name: "v4.3", CommitSHA: strings.Repeat("b", 40)})
	if status, _, _ = do(t, "GET", s.URL()+"repos/o/r/tags", nil, map[string]string{"If-None-Match": etag}); status != 200 {
		t.Errorf("changed list answered %d to the old ETag", status)
	}
	st := s.Stats()
	if st.Requests != 3 || st.NotModified != 1 {
		t.Errorf("stats %+v", st)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].IfNoneMatch || !reqs[1].IfNoneMatch || reqs[1].Status != 304 || reqs[0].Path != "/api/v3/repos/o/r/tags" {
		t.Errorf("log %+v", reqs)
	}
}

func TestFaults(t *testing.T) {
	s := New(t)
	s.AddTag("o", "r", Tag{Name: "v1", CommitSHA: strings.Repeat("a", 40)})
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	s.RateLimitNext(1, reset)
	status, h, _ := do(t, "GET", s.URL()+"repos/o/r/tags", nil, nil)
	if status != 403 || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") != strconv.FormatInt(reset.Unix(), 10) {
		t.Errorf("rate limit: %d %v", status, h)
	}
	s.SecondaryRateLimitNext(1, 90*time.Second)
	status, h, body := do(t, "GET", s.URL()+"repos/o/r/tags", nil, nil)
	if status != 403 || h.Get("Retry-After") != "90" || !bytes.Contains(body, []byte("secondary-rate-limits")) {
		t.Errorf("secondary: %d %v %s", status, h, body)
	}
	s.FailNext(2, 502)
	for i := 0; i < 2; i++ {
		if status, _, _ := do(t, "GET", s.URL()+"repos/o/r/tags", nil, nil); status != 502 {
			t.Errorf("FailNext: %d", status)
		}
	}
	s.DropNext(1)
	// A fresh connection: on a reused one net/http would itself retry.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := fresh.Get(s.URL() + "repos/o/r/tags"); err == nil {
		t.Error("DropNext: got an answer")
	}
	if status, _, _ := do(t, "GET", s.URL()+"repos/o/r/tags", nil, nil); status != 200 {
		t.Errorf("after faults: %d", status)
	}
	s.RequireToken("t0ken")
	if status, _, _ := do(t, "GET", s.URL()+"repos/o/r/tags", nil, nil); status != 401 {
		t.Errorf("no token: %d", status)
	}
	if status, _, _ := do(t, "GET", s.URL()+"repos/o/r/tags", nil, map[string]string{"Authorization": "Bearer t0ken"}); status != 200 {
		t.Errorf("with token: %d", status)
	}
	if status, _, body := do(t, "GET", s.URL()+"rate_limit", nil, map[string]string{"Authorization": "token t0ken"}); status != 200 ||
		!bytes.Contains(body, []byte(`"limit":5000`)) {
		t.Errorf("rate_limit: %d %s", status, body)
	}
	if status, _, _ := do(t, "GET", s.URL()+"repos/o/r/nothing", nil, map[string]string{"Authorization": "token t0ken"}); status != 404 {
		t.Errorf("unknown route: %d", status)
	}
}

func TestReleaseLifecycle(t *testing.T) {
	s := New(t)
	status, _, body := do(t, "POST", s.URL()+"repos/o/r/releases", []byte(`{"tag_name":"criu-forge/4.2.1-1","name":"CRIU 4.2.1 patched"}`), nil)
	var rel struct {
		ID        int64  `json:"id"`
		UploadURL string `json:"upload_url"`
	}
	if err := json.Unmarshal(body, &rel); err != nil || status != 201 || rel.ID == 0 {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, _, _ := do(t, "POST", s.URL()+"repos/o/r/releases", []byte(`{"tag_name":"criu-forge/4.2.1-1"}`), nil); status != 422 {
		t.Errorf("duplicate tag: %d", status)
	}
	upload := strings.TrimSuffix(rel.UploadURL, "{?name,label}")
	if !strings.HasPrefix(upload, strings.TrimSuffix(s.UploadURL(), "/")) {
		t.Errorf("upload_url %s not under %s", rel.UploadURL, s.UploadURL())
	}
	status, _, body = do(t, "POST", upload+"?name=criu_4.2.1-1_amd64.deb", []byte("!<arch>\n"), map[string]string{"Content-Type": "application/vnd.debian.binary-package"})
	var asset struct {
		ID          int64  `json:"id"`
		Size        int    `json:"size"`
		DownloadURL string `json:"browser_download_url"`
	}
	if err := json.Unmarshal(body, &asset); err != nil || status != 201 || asset.Size != 8 {
		t.Fatalf("upload: %d %s", status, body)
	}
	if status, _, _ := do(t, "POST", upload+"?name=criu_4.2.1-1_amd64.deb", []byte("x"), nil); status != 422 {
		t.Errorf("duplicate asset: %d", status)
	}
	if status, _, data := do(t, "GET", asset.DownloadURL, nil, nil); status != 200 || string(data) != "!<arch>\n" {
		t.Errorf("download: %d %q", status, data)
	}
	if status, _, body := do(t, "GET", s.URL()+"repos/o/r/releases/tags/criu-forge/4.2.1-1", nil, nil); status != 200 || !bytes.Contains(body, []byte("criu_4.2.1-1_amd64.deb")) {
		t.Errorf("by tag: %d %s", status, body)
	}
	if status, _, body := do(t, "GET", fmt.Sprintf("%srepos/o/r/releases/%d/assets", s.URL(), rel.ID), nil, nil); status != 200 || !bytes.Contains(body, []byte(`"size":8`)) {
		t.Errorf("list assets: %d %s", status, body)
	}
	if status, _, _ := do(t, "DELETE", fmt.Sprintf("%srepos/o/r/releases/assets/%d", s.URL(), asset.ID), nil, nil); status != 204 {
		t.Errorf("delete: %d", status)
	}
	if got := s.Releases("o", "r"); len(got) != 1 || len(got[0].Assets) != 0 || got[0].Name != "CRIU 4.2.1 patched" {
		t.Errorf("state after delete: %+v", got)
	}
	if status, _, _ := do(t, "GET", s.URL()+"repos/o/r/releases/latest", nil, nil); status != 200 {
		t.Errorf("latest: %d", status)
	}
}

// TestBackedByFixtureUpstream fills the fake from the real CRIU fixture
// repository and checks it says what git says.
func TestBackedByFixtureUpstream(t *testing.T) {
	up := upstream.New(t)
	s := New(t)
	if err := s.AddTagsFromGit("checkpoint-restore", "criu", up.Dir); err != nil {
		t.Fatal(err)
	}
	s.BackCompareWithGit("checkpoint-restore", "criu", up.Dir)
	pr := up.PRs[102]
	if err := s.AddPRFromGit("checkpoint-restore", "criu", up.Dir, PR{Number: 102, Title: pr.Title, BaseRef: pr.BaseTag}); err != nil {
		t.Fatal(err)
	}
	_, _, body := do(t, "GET", s.URL()+"repos/checkpoint-restore/criu/tags", nil, nil)
	var tags []struct {
		Name   string `json:"name"`
		Commit struct {
			SHA string `json:"sha"`
		} `json:"commit"`
	}
	if err := json.Unmarshal(body, &tags); err != nil {
		t.Fatal(err)
	}
	if len(tags) != 2 || tags[0].Name != "v4.2.1" || tags[0].Commit.SHA != up.Commits["v4.2.1"] || tags[1].Commit.SHA != up.Commits["v4.1.1"] {
		t.Errorf("tags %+v, want the peeled commits %v", tags, up.Commits)
	}
	_, _, body = do(t, "GET", s.URL()+"repos/checkpoint-restore/criu/pulls/102/commits", nil, nil)
	var commits []struct {
		SHA string `json:"sha"`
	}
	if err := json.Unmarshal(body, &commits); err != nil || len(commits) != len(pr.Commits) {
		t.Fatalf("commits %s (%v), want %v", body, err, pr.Commits)
	}
	for i := range commits {
		if commits[i].SHA != pr.Commits[i] {
			t.Errorf("commit %d: %s, want %s", i, commits[i].SHA, pr.Commits[i])
		}
	}
	status, _, body := do(t, "GET", s.URL()+"repos/checkpoint-restore/criu/compare/v4.1.1...v4.2.1", nil, nil)
	if status != 200 || !bytes.Contains(body, []byte(`"status":"ahead"`)) || !bytes.Contains(body, []byte(`"ahead_by":1`)) {
		t.Errorf("compare: %d %s", status, body)
	}
	if status, _, _ := do(t, "GET", s.URL()+"repos/checkpoint-restore/criu/compare/--output=x...v4.2.1", nil, nil); status != 404 {
		t.Errorf("option-like ref: %d", status)
	}
}
