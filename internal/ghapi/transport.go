package ghapi

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// counters back Stats; the transports and Call share them.
type counters struct {
	requests, notModified, retries, rateLimitWaits, cacheWriteErrors atomic.Int64
}

// countingTransport counts the requests that reach the network.
type countingTransport struct {
	next  http.RoundTripper
	stats *counters
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.stats.requests.Add(1)
	return t.next.RoundTrip(req)
}

// retryTransport repeats idempotent requests that failed for a reason that
// may pass: a 5xx, a reset connection, a timeout. Everything else (4xx,
// refused connections, unknown hosts) fails at once; a POST is never
// repeated, since GitHub may have acted on it.
type retryTransport struct {
	next    http.RoundTripper
	retries int
	backoff time.Duration // first wait; doubles per attempt
	stats   *counters
}

const maxBackoff = 30 * time.Second

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodHead ||
		req.Method == http.MethodPut || req.Method == http.MethodDelete || req.Method == http.MethodOptions
	for attempt := 0; ; attempt++ {
		try := req
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		resp, err := t.next.RoundTrip(try)
		if attempt >= t.retries || !idempotent || !replayable || !transient(req.Context(), resp, err) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		t.stats.retries.Add(1)
		if err := sleep(req.Context(), jittered(t.backoff, attempt)); err != nil {
			return nil, err
		}
	}
}

// transient reports whether a failed attempt is worth repeating.
func transient(ctx context.Context, resp *http.Response, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if err == nil {
		switch resp.StatusCode {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// jittered is the wait before retry attempt+1: exponential, capped, with
// half of it random so that many clients do not retry in step.
func jittered(base time.Duration, attempt int) time.Duration {
	d := base << min(attempt, 20)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(h http.Header) (time.Duration, bool) {
	v, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || v < 0 {
		return 0, false
	}
	return time.Duration(v) * time.Second, true
}
