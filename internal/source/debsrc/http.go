package debsrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// defaultClient gives up on a dead mirror quickly but lets a large index
// or tarball take its time on a slow link.
func defaultClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Minute,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
		},
	}
}

// httpStatusError is an answer other than 200 OK.
type httpStatusError struct {
	URL    string
	Status string
	Code   int
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("GET %s: %s", e.URL, e.Status) }

func isNotFound(err error) bool {
	var se *httpStatusError
	return errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusGone)
}

// get starts a GET and returns the body of a 200 answer.
func get(ctx context.Context, client *http.Client, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "criu-forge-debsrc")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &httpStatusError{URL: url, Status: resp.Status, Code: resp.StatusCode}
	}
	return resp.Body, nil
}

// getSmall reads a whole answer of at most limit bytes.
func getSmall(ctx context.Context, client *http.Client, url string, limit int64) ([]byte, error) {
	body, err := get(ctx, client, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", url, limit)
	}
	return data, nil
}

// copyVerified streams a download of url into w and checks it has exactly
// size bytes with the given sha256; w must be discarded on any error.
func copyVerified(ctx context.Context, client *http.Client, url string, w io.Writer, size int64, sha string) error {
	body, err := get(ctx, client, url)
	if err != nil {
		return err
	}
	defer body.Close()
	return copyChecked(w, body, url, size, sha)
}

// copyChecked copies at most size+1 bytes of r into w and checks the size
// and sha256 of what it copied.
func copyChecked(w io.Writer, r io.Reader, name string, size int64, sha string) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("%w: %s has %d bytes, the signed listing says %d", ErrHashMismatch, name, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%w: %s has sha256 %s, the signed listing says %s", ErrHashMismatch, name, got, sha)
	}
	return nil
}
