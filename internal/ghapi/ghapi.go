// Package ghapi is criu-forge's GitHub client: a thin layer over go-github
// that sync, watch and publish share. It adds what a tool polled from cron
// needs: conditional requests cached across runs (304s cost no rate limit),
// bounded retries of transient failures, waiting out rate limits when the
// reset is near, and errors that say what to do and never show the token.
//
// Entry point: New(Options). The typed calls (PullRequest, PullCommits,
// Releases, Tags, Compare) return plain structs; GitHub() plus Call give the
// same behaviour for any other endpoint.
package ghapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Options configure a Client. The zero value talks to api.github.com
// without a token or cache, retries DefaultRetries times and never waits
// for a rate limit.
type Options struct {
	// BaseURL is the API root: "" for GitHub.com, otherwise an Enterprise
	// address such as https://ghe.example/api/v3/ (or https://ghe.example,
	// to which api/v3/ is added, the go-github way).
	BaseURL string
	// UploadURL is the uploads root; "" derives it from BaseURL
	// (…/api/v3/ -> …/api/uploads/).
	UploadURL string
	// Token is sent as a bearer token. It never appears in an error, a log
	// or the cache.
	Token string
	// StateDir keeps the conditional-request cache across runs; "" turns
	// it off.
	StateDir string
	// HTTPClient is the client to send through (its Transport is wrapped);
	// nil uses a default with proxy settings from the environment.
	HTTPClient *http.Client
	// MaxRateLimitWait: a rate limit that resets sooner than this is waited
	// out; a later one fails at once with the reset time. 0 never waits.
	MaxRateLimitWait time.Duration
	// Retries is how many times a transient failure (5xx, reset
	// connection, timeout) of an idempotent request is repeated: 0 means
	// DefaultRetries, a negative value none.
	Retries int
	// RetryBackoff is the first wait between retries (doubling, jittered);
	// 0 means one second.
	RetryBackoff time.Duration
	// PerPage is the page size of list calls; 0 means 100, GitHub's most.
	PerPage int
}

// DefaultRetries is the number of retries when Options.Retries is 0.
const DefaultRetries = 3

// Stats counts what a Client did, for tests and for `watch` to print.
type Stats struct {
	Requests         int64 // HTTP requests sent, retries and 304s included
	NotModified      int64 // 304 answers served from the cache
	Retries          int64 // transient failures repeated
	RateLimitWaits   int64 // rate-limit resets waited out
	CacheWriteErrors int64 // answers that could not be cached (the call still succeeded)
}

// Client talks to one GitHub (or Enterprise) API.
type Client struct {
	gh       *github.Client
	apiURL   string
	token    string
	maxWait  time.Duration
	retries  int
	perPage  int
	counters *counters
}

// New builds a Client. It sends nothing.
func New(opts Options) (*Client, error) {
	c := &Client{token: opts.Token, maxWait: opts.MaxRateLimitWait, counters: &counters{}}
	c.retries = opts.Retries
	if c.retries == 0 {
		c.retries = DefaultRetries
	}
	c.retries = max(c.retries, 0)
	c.perPage = opts.PerPage
	if c.perPage <= 0 || c.perPage > 100 {
		c.perPage = 100
	}
	backoff := opts.RetryBackoff
	if backoff <= 0 {
		backoff = time.Second
	}

	httpClient := &http.Client{}
	if opts.HTTPClient != nil {
		copied := *opts.HTTPClient
		httpClient = &copied
	}
	base := httpClient.Transport
	if base == nil {
		base = defaultTransport()
	}
	var rt http.RoundTripper = &countingTransport{next: base, stats: c.counters}
	if opts.StateDir != "" {
		dir, err := filepath.Abs(filepath.Join(opts.StateDir, "github-http-cache"))
		if err != nil {
			return nil, fmt.Errorf("GitHub cache directory: %w", err)
		}
		sweepStaleTemps(dir)
		rt = &cacheTransport{dir: dir, next: rt, stats: c.counters}
	}
	rt = &retryTransport{next: rt, retries: c.retries, backoff: backoff, stats: c.counters}
	httpClient.Transport = rt

	gh := github.NewClient(httpClient)
	if opts.BaseURL != "" {
		var err error
		if gh.BaseURL, gh.UploadURL, err = enterpriseURLs(opts.BaseURL, opts.UploadURL); err != nil {
			return nil, err
		}
	}
	if opts.Token != "" {
		gh = gh.WithAuthToken(opts.Token)
	}
	gh.UserAgent = "criu-forge"
	c.gh = gh
	c.apiURL = gh.BaseURL.String()
	return c, nil
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// A stalled server is a timeout (retried), not a hang; uploads are not
	// limited, only the wait for an answer.
	t.ResponseHeaderTimeout = time.Minute
	return t
}

// enterpriseURLs checks the user's API address and completes it the way
// go-github does (https://ghe.example -> https://ghe.example/api/v3/),
// deriving the uploads address from it unless one is given.
func enterpriseURLs(baseURL, uploadURL string) (base, upload *url.URL, err error) {
	check := func(what, s, suffix string) (*url.URL, error) {
		// The address is not quoted back: a user may have put a secret in it.
		u, err := url.Parse(s)
		if err != nil {
			// Even url's own message quotes parts of it.
			return nil, fmt.Errorf("%s is not a valid URL: want one such as https://ghe.example/api/v3/", what)
		}
		if u.User != nil {
			return nil, fmt.Errorf("%s: do not put credentials in the URL; pass the token through GITHUB_TOKEN", what)
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("%s: want an http(s) address such as https://ghe.example/api/v3/", what)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s for %s: must not have a query or fragment", what, u.Host)
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		if !strings.HasSuffix(u.Path, suffix) && !strings.HasPrefix(u.Host, "api.") && !strings.HasPrefix(u.Host, "uploads.") {
			u.Path += strings.TrimPrefix(suffix, "/")
		}
		return u, nil
	}
	if base, err = check("GitHub API URL", baseURL, "/api/v3/"); err != nil {
		return nil, nil, err
	}
	if uploadURL != "" {
		upload, err = check("GitHub upload URL", uploadURL, "/api/uploads/")
		return base, upload, err
	}
	u := *base
	if host, ok := strings.CutPrefix(u.Host, "api."); ok {
		u.Host = "uploads." + host
	} else {
		u.Path = strings.TrimSuffix(u.Path, "api/v3/") + "api/uploads/"
	}
	return base, &u, nil
}

// GitHub is the underlying go-github client, for endpoints this package
// does not wrap. It sends through the same cache and retries; wrap calls in
// Call for the same rate-limit handling and error messages.
func (c *Client) GitHub() *github.Client { return c.gh }

// APIURL is the API root the client talks to.
func (c *Client) APIURL() string { return c.apiURL }

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:         c.counters.requests.Load(),
		NotModified:      c.counters.notModified.Load(),
		Retries:          c.counters.retries.Load(),
		RateLimitWaits:   c.counters.rateLimitWaits.Load(),
		CacheWriteErrors: c.counters.cacheWriteErrors.Load(),
	}
}

// String reports the stats on one line, for `watch` to print.
func (s Stats) String() string {
	return fmt.Sprintf("%d GitHub requests (%d not modified), %d retries, %d rate-limit waits",
		s.Requests, s.NotModified, s.Retries, s.RateLimitWaits)
}

// maxRateLimitWaits bounds the waits for one call, so that a server that
// keeps answering "rate limited" cannot hold a run forever.
const maxRateLimitWaits = 3

// Call runs one go-github call. A rate limit that resets within
// MaxRateLimitWait is waited out (honouring ctx) and the call repeated;
// any other failure becomes an error that starts with what ("pull request
// o/r#1") and says what to do. The error text never contains the token.
// call may run more than once, so it must be repeatable: open an upload's
// file inside it, since net/http closes a request body it has sent.
func (c *Client) Call(ctx context.Context, what string, call func(context.Context) (*github.Response, error)) error {
	for waits := 0; ; waits++ {
		resp, err := call(ctx)
		if err == nil {
			return nil
		}
		if rl := c.rateLimited(what, resp, err); rl != nil {
			wait := time.Until(rl.Reset) + resetMargin
			if wait > c.maxWait || waits >= maxRateLimitWaits || ctx.Err() != nil {
				return c.redact(rl)
			}
			c.counters.rateLimitWaits.Add(1)
			if err := sleep(ctx, wait); err != nil {
				return c.redact(fmt.Errorf("%s: waiting for the GitHub rate limit to reset: %w", what, err))
			}
			continue
		}
		return c.redact(c.explain(what, resp, err))
	}
}

// resetMargin is added to a reset time given in whole seconds (and by a
// clock that may be a little ahead of ours).
const resetMargin = 500 * time.Millisecond

// ErrNotFound is matched (errors.Is) by errors for a missing pull request,
// release, tag or repository.
var ErrNotFound = errors.New("not found")

// RateLimitError is returned when GitHub's rate limit (primary or
// secondary) does not reset within Options.MaxRateLimitWait.
type RateLimitError struct {
	What      string
	Reset     time.Time
	Secondary bool
	HasToken  bool
	MaxWait   time.Duration
	Err       error
}

func (e *RateLimitError) Error() string {
	kind := "rate limit"
	if e.Secondary {
		kind = "secondary rate limit"
	}
	in := time.Until(e.Reset).Round(time.Second)
	msg := fmt.Sprintf("%s: GitHub API %s exceeded; it resets at %s (in %s)",
		e.What, kind, e.Reset.UTC().Format("2006-01-02 15:04:05 UTC"), max(in, 0))
	if e.MaxWait > 0 {
		msg += fmt.Sprintf(", later than the allowed wait of %s", e.MaxWait)
	}
	if !e.HasToken && !e.Secondary {
		return msg + "; no GITHUB_TOKEN is set: GitHub allows 60 requests/hour without a token, 5,000 with one, so set GITHUB_TOKEN"
	}
	return msg + "; try again after the reset"
}

func (e *RateLimitError) Unwrap() error { return e.Err }

// rateLimited recognises go-github's rate-limit errors (also the ones it
// raises itself, without asking, while a known limit lasts) and a bare 429.
func (c *Client) rateLimited(what string, resp *github.Response, err error) *RateLimitError {
	rl := &RateLimitError{What: what, HasToken: c.token != "", MaxWait: c.maxWait, Err: err}
	var primary *github.RateLimitError
	var secondary *github.AbuseRateLimitError
	var plain *github.ErrorResponse
	switch {
	case errors.As(err, &primary):
		rl.Reset = primary.Rate.Reset.Time
		if rl.Reset.IsZero() {
			rl.Reset = time.Now().Add(time.Hour)
		}
	case errors.As(err, &secondary):
		rl.Secondary = true
		// GitHub asks for at least a minute when it names no time.
		rl.Reset = time.Now().Add(time.Minute)
		if secondary.RetryAfter != nil {
			rl.Reset = time.Now().Add(*secondary.RetryAfter)
		}
	case errors.As(err, &plain) && plain.Response != nil && plain.Response.StatusCode == http.StatusTooManyRequests:
		rl.Secondary = true
		rl.Reset = time.Now().Add(time.Minute)
		if d, ok := retryAfter(plain.Response.Header); ok {
			rl.Reset = time.Now().Add(d)
		}
	default:
		return nil
	}
	return rl
}

// explain turns a failed call into an error that tells the user what
// happened and what to do.
func (c *Client) explain(what string, resp *github.Response, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var apiErr *github.ErrorResponse
	if errors.As(err, &apiErr) && apiErr.Response != nil {
		status := apiErr.Response.StatusCode
		switch {
		case status == http.StatusNotFound:
			hint := ""
			if c.token == "" {
				hint = " (a private repository also needs GITHUB_TOKEN)"
			}
			return fmt.Errorf("%s %w on %s%s", what, ErrNotFound, c.apiURL, hint)
		case status == http.StatusUnauthorized:
			return fmt.Errorf("%s: GitHub rejected the credentials (401 %s): check GITHUB_TOKEN", what, apiErr.Message)
		case status == http.StatusForbidden:
			return fmt.Errorf("%s: GitHub refused access (403 %s): check that GITHUB_TOKEN may read this repository", what, apiErr.Message)
		case status >= 500:
			return fmt.Errorf("%s: GitHub answered %d %s (after %d retries); GitHub may be having trouble, try again later: %w",
				what, status, http.StatusText(status), c.retries, err)
		}
		msg := apiErr.Message
		for _, e := range apiErr.Errors {
			if e.Message != "" {
				msg += "; " + e.Message
			} else {
				msg += fmt.Sprintf("; %s %s %s", e.Resource, e.Field, e.Code)
			}
		}
		return fmt.Errorf("%s: GitHub answered %d %s: %s", what, status, http.StatusText(status), msg)
	}
	var urlErr *url.Error
	var netErr net.Error
	if errors.As(err, &urlErr) || errors.As(err, &netErr) {
		return fmt.Errorf("%s: cannot reach the GitHub API at %s: %w; check the network connection and proxy settings, or use --offline",
			what, c.apiURL, err)
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) {
		return fmt.Errorf("%s: unexpected answer from the GitHub API at %s: %w", what, c.apiURL, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// redact hides the token should any layer (or a hostile server echoing it
// in a message) have put it into an error's text.
func (c *Client) redact(err error) error {
	if err == nil || c.token == "" || !strings.Contains(err.Error(), c.token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), c.token, "[token]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
