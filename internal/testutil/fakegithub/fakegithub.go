// Package fakegithub is a loopback stand-in for the GitHub REST API, enough
// of it for go-github: pull requests and their commits, releases and their
// assets, tags, compare and rate_limit. Every GET carries an ETag and answers
// 304 to a matching If-None-Match, lists paginate with per_page/page and Link
// headers like GitHub's, and tests can inject rate limits and server errors.
//
// Tests set the state (AddPR, AddRelease, AddTag, SetCompare or BackCompareWithGit)
// and pass URL() as the client's base URL. All methods are safe for
// concurrent use.
package fakegithub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Commit is one commit as a pull request lists it.
type Commit struct {
	SHA         string
	Parents     []string
	Message     string
	AuthorName  string
	AuthorEmail string
	AuthorDate  time.Time
}

// PR is a pull request. State is "open" or "closed".
type PR struct {
	Number           int
	Title            string
	State            string
	Merged           bool
	MergedAt         time.Time
	MergeCommitSHA   string
	HeadSHA          string
	HeadRef          string
	HeadRepoCloneURL string // "" = the base repository's clone URL on this server
	BaseRef          string
	BaseSHA          string
	Commits          []Commit
}

// Release is a GitHub release; ID is assigned by AddRelease when zero.
type Release struct {
	ID              int64
	Tag             string
	Name            string
	Body            string
	TargetCommitish string
	Draft           bool
	Prerelease      bool
	PublishedAt     time.Time
	Assets          []Asset
}

// Asset is a file attached to a release.
type Asset struct {
	ID          int64
	Name        string
	Label       string
	ContentType string
	Data        []byte
}

// Tag is a git tag as GET /tags lists it.
type Tag struct {
	Name      string
	CommitSHA string
}

// Comparison is the answer of GET /compare/{base}...{head}.
type Comparison struct {
	Status   string // ahead, behind, identical, diverged
	AheadBy  int
	BehindBy int
}

// Request is one request the server answered.
type Request struct {
	Method      string
	Path        string // escaped path, without the query
	Query       string
	Status      int  // 0 when DropNext closed the connection unanswered
	IfNoneMatch bool // the request carried If-None-Match
	Authorized  bool // the request carried an Authorization header
}

// Stats sums up the request log.
type Stats struct {
	Requests    int
	NotModified int
	ByStatus    map[int]int
}

type repoState struct {
	pulls    map[int]*PR
	releases []*Release // newest first, as GitHub lists them
	tags     []Tag      // newest first
	compare  map[string]Comparison
	gitDir   string
}

// Server is the fake API. Create it with New.
type Server struct {
	srv *httptest.Server

	mu          sync.Mutex
	repos       map[string]*repoState
	log         []Request
	nextID      int64
	token       string
	rateLimited int
	rateReset   time.Time
	secondary   int
	retryAfter  time.Duration
	failures    int
	failStatus  int
	drops       int
	delays      int
	delay       time.Duration
	used        int
}

// New starts a server on loopback and closes it when t ends.
func New(t testing.TB) *Server {
	s := &Server{repos: map[string]*repoState{}, nextID: 1000}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base to give the client: http://127.0.0.1:PORT/api/v3/.
func (s *Server) URL() string { return s.srv.URL + "/api/v3/" }

// UploadURL is the uploads base: http://127.0.0.1:PORT/api/uploads/.
func (s *Server) UploadURL() string { return s.srv.URL + "/api/uploads/" }

// Close stops the server, so that tests can see how a client meets a dead
// network.
func (s *Server) Close() { s.srv.Close() }

// RequireToken makes every request without "Authorization: Bearer token"
// (or "token token") fail with 401 Bad credentials.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

func (s *Server) repo(owner, name string) *repoState {
	key := strings.ToLower(owner + "/" + name)
	r := s.repos[key]
	if r == nil {
		r = &repoState{pulls: map[int]*PR{}, compare: map[string]Comparison{}}
		s.repos[key] = r
	}
	return r
}

// AddPR adds or replaces a pull request.
func (s *Server) AddPR(owner, repo string, pr PR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := pr
	p.Commits = slices.Clone(pr.Commits)
	s.repo(owner, repo).pulls[pr.Number] = &p
}

// SetPRHead replaces a pull request's head and commits, as a force-push does.
func (s *Server) SetPRHead(owner, repo string, number int, headSHA string, commits []Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.repo(owner, repo).pulls[number]
	if p == nil {
		panic(fmt.Sprintf("fakegithub: SetPRHead: no pull request %s/%s#%d", owner, repo, number))
	}
	p.HeadSHA = headSHA
	p.Commits = slices.Clone(commits)
}

// MergePR marks a pull request merged (or closed without merge when
// mergeCommitSHA is "").
func (s *Server) MergePR(owner, repo string, number int, mergeCommitSHA string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.repo(owner, repo).pulls[number]
	if p == nil {
		panic(fmt.Sprintf("fakegithub: MergePR: no pull request %s/%s#%d", owner, repo, number))
	}
	p.State = "closed"
	p.Merged = mergeCommitSHA != ""
	p.MergeCommitSHA = mergeCommitSHA
	p.MergedAt = at
}

// AddRelease adds a release as the newest one and returns its ID.
func (s *Server) AddRelease(owner, repo string, rel Release) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRelease(s.repo(owner, repo), rel).ID
}

func (s *Server) addRelease(r *repoState, rel Release) *Release {
	p := rel
	if p.ID == 0 {
		p.ID = s.newID()
	}
	p.Assets = nil
	for _, a := range rel.Assets {
		if a.ID == 0 {
			a.ID = s.newID()
		}
		p.Assets = append(p.Assets, a)
	}
	r.releases = append([]*Release{&p}, r.releases...)
	return &p
}

func (s *Server) newID() int64 {
	s.nextID++
	return s.nextID
}

// Releases returns a copy of a repository's releases, newest first, for
// tests to check what a client published.
func (s *Server) Releases(owner, repo string) []Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Release
	for _, r := range s.repo(owner, repo).releases {
		c := *r
		c.Assets = slices.Clone(r.Assets)
		out = append(out, c)
	}
	return out
}

// AddTag adds a tag as the newest one.
func (s *Server) AddTag(owner, repo string, tag Tag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(owner, repo)
	r.tags = append([]Tag{tag}, r.tags...)
}

// SetCompare fixes the answer for GET /compare/{base}...{head}.
func (s *Server) SetCompare(owner, repo, base, head string, c Comparison) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(owner, repo).compare[base+"..."+head] = c
}

// BackCompareWithGit answers compare requests not fixed by SetCompare from
// the git repository at gitDir (bare or not) with the git command, so a
// comparison is as real as the repository. An unknown ref gives 404.
func (s *Server) BackCompareWithGit(owner, repo, gitDir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repo(owner, repo).gitDir = gitDir
}

// RateLimitNext makes the next n requests fail as an exhausted primary rate
// limit: 403, X-RateLimit-Remaining: 0, X-RateLimit-Reset: reset.
func (s *Server) RateLimitNext(n int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimited, s.rateReset = n, reset
}

// SecondaryRateLimitNext makes the next n requests fail as a secondary
// (abuse) rate limit: 403 with Retry-After.
func (s *Server) SecondaryRateLimitNext(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secondary, s.retryAfter = n, retryAfter
}

// FailNext makes the next n requests fail with status (a 5xx, usually).
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures, s.failStatus = n, status
}

// DropNext makes the server close the connection of the next n requests
// without answering, as a reset connection looks to a client.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops = n
}

// DelayNext makes the server wait d before answering each of the next n
// requests (or until the client gives up), as a stalled server does.
func (s *Server) DelayNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays, s.delay = n, d
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// Stats sums up the request log.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{ByStatus: map[int]int{}}
	for _, r := range s.log {
		st.Requests++
		st.ByStatus[r.Status]++
		if r.Status == http.StatusNotModified {
			st.NotModified++
		}
	}
	return st
}

// ResetLog forgets the request log.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

const rateLimitAuthorized, rateLimitAnonymous = 5000, 60

// response is what a handler produces; serve writes it, adding ETags and
// deciding 304s in one place.
type response struct {
	status int
	body   any
	raw    []byte // body bytes as is (asset downloads)
	header http.Header
}

func jsonResponse(status int, body any) *response { return &response{status: status, body: body} }

func errorResponse(status int, message string) *response {
	return jsonResponse(status, map[string]any{"message": message})
}

func notFound() *response { return errorResponse(http.StatusNotFound, "Not Found") }

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	s.mu.Lock()
	if s.delays > 0 {
		s.delays--
		d := s.delay
		s.mu.Unlock()
		select {
		case <-time.After(d):
		case <-req.Context().Done():
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	entry := Request{
		Method:      req.Method,
		Path:        req.URL.EscapedPath(),
		Query:       req.URL.RawQuery,
		IfNoneMatch: req.Header.Get("If-None-Match") != "",
		Authorized:  req.Header.Get("Authorization") != "",
	}
	if s.drops > 0 {
		s.drops--
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			entry.Status = 0
			s.log = append(s.log, entry)
			return
		}
	}
	resp := s.answer(req)
	limit := rateLimitAnonymous
	if entry.Authorized {
		limit = rateLimitAuthorized
	}
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if h.Get("X-RateLimit-Remaining") == "" {
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(max(limit-s.used, 1)))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	}
	body := resp.raw
	if resp.raw == nil && resp.body != nil {
		b, err := json.Marshal(resp.body)
		if err != nil {
			panic(err)
		}
		body = b
	}
	status := resp.status
	if req.Method == http.MethodGet && status == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		h.Set("ETag", etag)
		if etagMatches(req.Header.Get("If-None-Match"), etag) {
			status = http.StatusNotModified
			body = nil
		}
	}
	if status != http.StatusNotModified {
		// GitHub does not count 304s against the rate limit.
		s.used++
	}
	if resp.raw == nil && body != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	entry.Status = status
	s.log = append(s.log, entry)
	w.WriteHeader(status)
	if body != nil && req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func etagMatches(ifNoneMatch, etag string) bool {
	for _, candidate := range strings.Split(ifNoneMatch, ",") {
		c := strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if c == "*" || c == etag {
			return true
		}
	}
	return false
}

// answer routes a request; s.mu is held.
func (s *Server) answer(req *http.Request) *response {
	if s.token != "" {
		auth := req.Header.Get("Authorization")
		if auth != "Bearer "+s.token && auth != "token "+s.token {
			return errorResponse(http.StatusUnauthorized, "Bad credentials")
		}
	}
	if s.rateLimited > 0 {
		s.rateLimited--
		r := errorResponse(http.StatusForbidden, "API rate limit exceeded. (But here's the good news: Authenticated requests get a higher rate limit.)")
		r.header = http.Header{}
		limit := rateLimitAnonymous
		if req.Header.Get("Authorization") != "" {
			limit = rateLimitAuthorized
		}
		r.header.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		r.header.Set("X-RateLimit-Remaining", "0")
		r.header.Set("X-RateLimit-Reset", strconv.FormatInt(s.rateReset.Unix(), 10))
		return r
	}
	if s.secondary > 0 {
		s.secondary--
		r := jsonResponse(http.StatusForbidden, map[string]any{
			"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			"documentation_url": "/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		})
		r.header = http.Header{}
		r.header.Set("Retry-After", strconv.Itoa(int(s.retryAfter.Round(time.Second)/time.Second)))
		return r
	}
	if s.failures > 0 {
		s.failures--
		return errorResponse(s.failStatus, http.StatusText(s.failStatus))
	}

	segs, err := splitPath(req.URL.EscapedPath())
	if err != nil {
		return errorResponse(http.StatusBadRequest, err.Error())
	}
	switch {
	case len(segs) >= 3 && segs[0] == "api" && segs[1] == "v3":
		return s.api(req, segs[2:])
	case len(segs) == 8 && segs[0] == "api" && segs[1] == "uploads" && segs[2] == "repos" &&
		segs[5] == "releases" && segs[7] == "assets" && req.Method == http.MethodPost:
		return s.uploadAsset(req, segs[3], segs[4], segs[6])
	case len(segs) == 6 && segs[2] == "releases" && segs[3] == "download" && req.Method == http.MethodGet:
		return s.downloadAsset(segs[0], segs[1], segs[4], segs[5])
	}
	return notFound()
}

// splitPath splits an escaped path into unescaped segments.
func splitPath(p string) ([]string, error) {
	var segs []string
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		u, err := url.PathUnescape(part)
		if err != nil {
			return nil, fmt.Errorf("bad path segment %q", part)
		}
		segs = append(segs, u)
	}
	return segs, nil
}

func (s *Server) api(req *http.Request, segs []string) *response {
	get := req.Method == http.MethodGet
	if len(segs) == 1 && segs[0] == "rate_limit" && get {
		return s.rateLimit(req)
	}
	if len(segs) < 4 || segs[0] != "repos" {
		return notFound()
	}
	owner, name, rest := segs[1], segs[2], segs[3:]
	r := s.repo(owner, name)
	base := "http://" + req.Host
	switch {
	case rest[0] == "pulls" && len(rest) == 2 && get:
		p := r.pulls[atoi(rest[1])]
		if p == nil {
			return notFound()
		}
		return jsonResponse(http.StatusOK, pullJSON(base, owner, name, p))
	case rest[0] == "pulls" && len(rest) == 3 && rest[2] == "commits" && get:
		p := r.pulls[atoi(rest[1])]
		if p == nil {
			return notFound()
		}
		// GitHub lists at most 250 commits of a pull request.
		commits := p.Commits[:min(len(p.Commits), 250)]
		return paginate(req, commits, func(c Commit) any { return commitJSON(base, owner, name, c) })
	case rest[0] == "releases":
		return s.releases(req, r, base, owner, name, rest[1:])
	case rest[0] == "tags" && len(rest) == 1 && get:
		return paginate(req, r.tags, func(t Tag) any {
			return map[string]any{"name": t.Name, "commit": map[string]any{"sha": t.CommitSHA}}
		})
	case rest[0] == "compare" && len(rest) >= 2 && get:
		return s.compare(r, strings.Join(rest[1:], "/"))
	}
	return notFound()
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func (s *Server) releases(req *http.Request, r *repoState, base, owner, name string, rest []string) *response {
	get := req.Method == http.MethodGet
	toJSON := func(rel *Release) any { return releaseJSON(base, owner, name, rel) }
	switch {
	case len(rest) == 0 && get:
		return paginate(req, r.releases, toJSON)
	case len(rest) == 0 && req.Method == http.MethodPost:
		var in struct {
			TagName         string `json:"tag_name"`
			TargetCommitish string `json:"target_commitish"`
			Name            string `json:"name"`
			Body            string `json:"body"`
			Draft           bool   `json:"draft"`
			Prerelease      bool   `json:"prerelease"`
		}
		if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&in); err != nil || in.TagName == "" {
			return errorResponse(http.StatusUnprocessableEntity, "Validation Failed: tag_name is required")
		}
		for _, rel := range r.releases {
			if rel.Tag == in.TagName {
				return jsonResponse(http.StatusUnprocessableEntity, map[string]any{
					"message": "Validation Failed",
					"errors":  []any{map[string]any{"resource": "Release", "code": "already_exists", "field": "tag_name"}},
				})
			}
		}
		rel := s.addRelease(r, Release{Tag: in.TagName, TargetCommitish: in.TargetCommitish, Name: in.Name,
			Body: in.Body, Draft: in.Draft, Prerelease: in.Prerelease, PublishedAt: time.Now().UTC().Truncate(time.Second)})
		return jsonResponse(http.StatusCreated, toJSON(rel))
	case len(rest) == 1 && rest[0] == "latest" && get:
		for _, rel := range r.releases {
			if !rel.Draft && !rel.Prerelease {
				return jsonResponse(http.StatusOK, toJSON(rel))
			}
		}
		return notFound()
	case len(rest) >= 2 && rest[0] == "tags" && get:
		tag := strings.Join(rest[1:], "/")
		for _, rel := range r.releases {
			if rel.Tag == tag {
				return jsonResponse(http.StatusOK, toJSON(rel))
			}
		}
		return notFound()
	case len(rest) == 2 && rest[0] == "assets" && req.Method == http.MethodDelete:
		id := int64(atoi(rest[1]))
		for _, rel := range r.releases {
			for i, a := range rel.Assets {
				if a.ID == id {
					rel.Assets = slices.Delete(rel.Assets, i, i+1)
					return &response{status: http.StatusNoContent}
				}
			}
		}
		return notFound()
	case len(rest) == 1 && get:
		if rel := findRelease(r, rest[0]); rel != nil {
			return jsonResponse(http.StatusOK, toJSON(rel))
		}
		return notFound()
	case len(rest) == 2 && rest[1] == "assets" && get:
		rel := findRelease(r, rest[0])
		if rel == nil {
			return notFound()
		}
		return paginate(req, rel.Assets, func(a Asset) any { return assetJSON(base, owner, name, rel, a) })
	}
	return notFound()
}

func findRelease(r *repoState, id string) *Release {
	n := int64(atoi(id))
	for _, rel := range r.releases {
		if rel.ID == n {
			return rel
		}
	}
	return nil
}

func (s *Server) uploadAsset(req *http.Request, owner, name, id string) *response {
	r := s.repo(owner, name)
	rel := findRelease(r, id)
	if rel == nil {
		return notFound()
	}
	q := req.URL.Query()
	assetName := q.Get("name")
	if assetName == "" || strings.ContainsAny(assetName, "/\\") {
		return errorResponse(http.StatusUnprocessableEntity, "Validation Failed: bad asset name")
	}
	for _, a := range rel.Assets {
		if a.Name == assetName {
			return jsonResponse(http.StatusUnprocessableEntity, map[string]any{
				"message": "Validation Failed",
				"errors":  []any{map[string]any{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}},
			})
		}
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, 1<<30))
	if err != nil {
		return errorResponse(http.StatusBadRequest, "reading upload: "+err.Error())
	}
	if req.ContentLength >= 0 && int64(len(data)) != req.ContentLength {
		return errorResponse(http.StatusBadRequest, "upload shorter than Content-Length")
	}
	a := Asset{ID: s.newID(), Name: assetName, Label: q.Get("label"), ContentType: req.Header.Get("Content-Type"), Data: data}
	rel.Assets = append(rel.Assets, a)
	return jsonResponse(http.StatusCreated, assetJSON("http://"+req.Host, owner, name, rel, a))
}

func (s *Server) downloadAsset(owner, name, tag, file string) *response {
	for _, rel := range s.repo(owner, name).releases {
		if rel.Tag != tag {
			continue
		}
		for _, a := range rel.Assets {
			if a.Name == file {
				h := http.Header{}
				h.Set("Content-Type", "application/octet-stream")
				return &response{status: http.StatusOK, raw: slices.Clone(a.Data), header: h}
			}
		}
	}
	return notFound()
}

func (s *Server) compare(r *repoState, basehead string) *response {
	base, head, ok := strings.Cut(basehead, "...")
	if !ok || base == "" || head == "" {
		return notFound()
	}
	c, ok := r.compare[base+"..."+head]
	if !ok {
		if r.gitDir == "" {
			return notFound()
		}
		var err error
		if c, err = gitCompare(r.gitDir, base, head); err != nil {
			return notFound()
		}
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"status": c.Status, "ahead_by": c.AheadBy, "behind_by": c.BehindBy,
		"total_commits": c.AheadBy, "commits": []any{},
	})
}

func (s *Server) rateLimit(req *http.Request) *response {
	limit := rateLimitAnonymous
	if req.Header.Get("Authorization") != "" {
		limit = rateLimitAuthorized
	}
	rate := map[string]any{"limit": limit, "remaining": max(limit-s.used, 1), "used": s.used,
		"reset": time.Now().Add(time.Hour).Unix()}
	return jsonResponse(http.StatusOK, map[string]any{"resources": map[string]any{"core": rate}, "rate": rate})
}

// paginate answers one page of items with GitHub's per_page/page rules and
// Link header.
func paginate[T any](req *http.Request, items []T, toJSON func(T) any) *response {
	q := req.URL.Query()
	perPage := 30
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		perPage = min(v, 100)
	}
	page := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	last := max((len(items)+perPage-1)/perPage, 1)
	out := []any{}
	for i := (page - 1) * perPage; i < len(items) && i < page*perPage; i++ {
		out = append(out, toJSON(items[i]))
	}
	resp := jsonResponse(http.StatusOK, out)
	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		u := url.URL{Scheme: "http", Host: req.Host, Path: req.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		resp.header = http.Header{}
		resp.header.Set("Link", strings.Join(links, ", "))
	}
	return resp
}

func timeJSON(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func pullJSON(base, owner, name string, p *PR) any {
	clone := p.HeadRepoCloneURL
	if clone == "" {
		clone = base + "/" + owner + "/" + name + ".git"
	}
	var mergeSHA any
	if p.MergeCommitSHA != "" {
		mergeSHA = p.MergeCommitSHA
	}
	state := p.State
	if state == "" {
		state = "open"
	}
	return map[string]any{
		"number":           p.Number,
		"title":            p.Title,
		"state":            state,
		"merged":           p.Merged,
		"merged_at":        timeJSON(p.MergedAt),
		"merge_commit_sha": mergeSHA,
		"commits":          len(p.Commits),
		"html_url":         fmt.Sprintf("%s/%s/%s/pull/%d", base, owner, name, p.Number),
		"url":              fmt.Sprintf("%s/api/v3/repos/%s/%s/pulls/%d", base, owner, name, p.Number),
		"head": map[string]any{"sha": p.HeadSHA, "ref": p.HeadRef,
			"repo": map[string]any{"clone_url": clone}},
		"base": map[string]any{"sha": p.BaseSHA, "ref": p.BaseRef,
			"repo": map[string]any{"clone_url": base + "/" + owner + "/" + name + ".git", "full_name": owner + "/" + name}},
	}
}

func commitJSON(base, owner, name string, c Commit) any {
	parents := []any{}
	for _, p := range c.Parents {
		parents = append(parents, map[string]any{"sha": p})
	}
	person := map[string]any{"name": c.AuthorName, "email": c.AuthorEmail, "date": timeJSON(c.AuthorDate)}
	return map[string]any{
		"sha":      c.SHA,
		"html_url": fmt.Sprintf("%s/%s/%s/commit/%s", base, owner, name, c.SHA),
		"commit":   map[string]any{"message": c.Message, "author": person, "committer": person},
		"parents":  parents,
	}
}

func releaseJSON(base, owner, name string, rel *Release) any {
	assets := []any{}
	for _, a := range rel.Assets {
		assets = append(assets, assetJSON(base, owner, name, rel, a))
	}
	return map[string]any{
		"id":               rel.ID,
		"tag_name":         rel.Tag,
		"name":             rel.Name,
		"body":             rel.Body,
		"target_commitish": rel.TargetCommitish,
		"draft":            rel.Draft,
		"prerelease":       rel.Prerelease,
		"published_at":     timeJSON(rel.PublishedAt),
		"html_url":         fmt.Sprintf("%s/%s/%s/releases/tag/%s", base, owner, name, rel.Tag),
		"url":              fmt.Sprintf("%s/api/v3/repos/%s/%s/releases/%d", base, owner, name, rel.ID),
		"upload_url":       fmt.Sprintf("%s/api/uploads/repos/%s/%s/releases/%d/assets{?name,label}", base, owner, name, rel.ID),
		"assets":           assets,
	}
}

func assetJSON(base, owner, name string, rel *Release, a Asset) any {
	return map[string]any{
		"id":                   a.ID,
		"name":                 a.Name,
		"label":                a.Label,
		"content_type":         a.ContentType,
		"size":                 len(a.Data),
		"state":                "uploaded",
		"browser_download_url": fmt.Sprintf("%s/%s/%s/releases/download/%s/%s", base, owner, name, url.PathEscape(rel.Tag), url.PathEscape(a.Name)),
	}
}
