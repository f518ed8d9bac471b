package ghapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// The conditional-request cache keeps, per GET URL, the last 200 answer and
// its ETag. Asking again with If-None-Match costs nothing against the rate
// limit when GitHub answers 304; the transport then replays the stored body
// as a 200, so go-github needs no special handling.
//
// Every entry is one self-checking file written aside and renamed into
// place: a crash or a second process can leave an old entry or a new one,
// never a torn one, and a damaged entry is only a cache miss.

const (
	cacheMagic     = "criu-forge github cache v1\n"
	maxCachedBody  = 32 << 20
	maxEntryHeader = 64 << 10
)

// cachedHeaders are the headers of a 200 worth keeping: what go-github
// reads from a page besides its body. Rate-limit headers are taken fresh
// from the 304.
var cachedHeaders = []string{"Content-Type", "ETag", "Last-Modified", "Link", "X-Github-Media-Type"}

type cacheEntry struct {
	URL        string              `json:"url"`
	ETag       string              `json:"etag"`
	Header     map[string][]string `json:"header"`
	BodySHA256 string              `json:"body_sha256"`
	BodyLen    int                 `json:"body_len"`
	Body       []byte              `json:"-"`
}

func encodeEntry(e *cacheEntry) ([]byte, error) {
	sum := sha256.Sum256(e.Body)
	meta := *e
	meta.BodySHA256 = hex.EncodeToString(sum[:])
	meta.BodyLen = len(e.Body)
	head, err := json.Marshal(&meta)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(cacheMagic)
	b.Write(head)
	b.WriteByte('\n')
	b.Write(e.Body)
	return b.Bytes(), nil
}

var errBadEntry = errors.New("damaged cache entry")

// decodeEntry parses a stored entry; it trusts nothing in it, since the
// file may be truncated or tampered with, and its ETag and headers go back
// onto the wire.
func decodeEntry(data []byte) (*cacheEntry, error) {
	rest, ok := bytes.CutPrefix(data, []byte(cacheMagic))
	if !ok {
		return nil, fmt.Errorf("%w: unknown format", errBadEntry)
	}
	head, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || len(head) > maxEntryHeader {
		return nil, fmt.Errorf("%w: no header line", errBadEntry)
	}
	var e cacheEntry
	if err := json.Unmarshal(head, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	if e.BodyLen != len(body) || len(body) > maxCachedBody {
		return nil, fmt.Errorf("%w: body is %d bytes, header says %d", errBadEntry, len(body), e.BodyLen)
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != e.BodySHA256 {
		return nil, fmt.Errorf("%w: body checksum mismatch", errBadEntry)
	}
	if e.URL == "" || !validHeaderValue(e.ETag) || e.ETag == "" {
		return nil, fmt.Errorf("%w: bad URL or ETag", errBadEntry)
	}
	for k, vs := range e.Header {
		if http.CanonicalHeaderKey(k) != k || !isCachedHeader(k) {
			return nil, fmt.Errorf("%w: unexpected header %q", errBadEntry, k)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, fmt.Errorf("%w: bad value for header %s", errBadEntry, k)
			}
		}
	}
	e.Body = body
	return &e, nil
}

func isCachedHeader(k string) bool {
	for _, h := range cachedHeaders {
		if http.CanonicalHeaderKey(h) == k {
			return true
		}
	}
	return false
}

// validHeaderValue refuses control characters, which net/http would refuse
// to send (and which would split a header if it did not).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// cacheTransport answers GETs through the entry store.
type cacheTransport struct {
	dir   string
	next  http.RoundTripper
	stats *counters
}

// cacheKey names an entry by what selects the representation: the URL and
// the Accept header (a .patch and the JSON of one pull request share a
// URL). The token is a header and never part of it.
func cacheKey(req *http.Request) string {
	sum := sha256.Sum256([]byte(req.URL.String() + "\n" + req.Header.Get("Accept")))
	return hex.EncodeToString(sum[:])
}

func (t *cacheTransport) path(key string) string { return filepath.Join(t.dir, key[:2], key) }

func (t *cacheTransport) load(key, url string) *cacheEntry {
	f, err := os.Open(t.path(key))
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(len(cacheMagic)+maxEntryHeader+maxCachedBody+1)))
	if err != nil {
		return nil
	}
	e, err := decodeEntry(data)
	if err != nil || e.URL != url {
		return nil
	}
	return e
}

func (t *cacheTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Header.Get("Range") != "" || req.Header.Get("If-None-Match") != "" {
		return t.next.RoundTrip(req)
	}
	key, url := cacheKey(req), req.URL.String()
	entry := t.load(key, url)
	if entry != nil {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", entry.ETag)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && entry != nil:
		t.stats.notModified.Add(1)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		return replay(entry, req, resp), nil
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "":
		return t.keep(key, url, resp)
	}
	return resp, nil
}

// keep stores a 200 with an ETag and hands back an equivalent response.
func (t *cacheTransport) keep(key, url string, resp *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCachedBody+1))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if len(body) > maxCachedBody {
		// Too big to keep: pass it through whole.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	e := &cacheEntry{URL: url, ETag: resp.Header.Get("ETag"), Header: map[string][]string{}, Body: body}
	for _, h := range cachedHeaders {
		if v := resp.Header.Values(h); len(v) > 0 {
			e.Header[http.CanonicalHeaderKey(h)] = v
		}
	}
	data, err := encodeEntry(e)
	if err == nil {
		err = fsutil.WriteFileAtomic(t.path(key), data, 0o600)
	}
	if err != nil {
		// The cache only saves requests; a full disk must not fail the call.
		t.stats.cacheWriteErrors.Add(1)
	}
	return resp, nil
}

// replay turns a 304 into the stored 200, with the 304's fresh headers
// (rate limit, date) over the stored ones.
func replay(e *cacheEntry, req *http.Request, notModified *http.Response) *http.Response {
	h := http.Header{}
	for k, v := range notModified.Header {
		switch k {
		case "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding":
			continue
		}
		h[k] = v
	}
	for k, v := range e.Header {
		if h.Get(k) == "" {
			h[k] = v
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         notModified.Proto,
		ProtoMajor:    notModified.ProtoMajor,
		ProtoMinor:    notModified.ProtoMinor,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(e.Body)),
		ContentLength: int64(len(e.Body)),
		Request:       req,
	}
}

// sweepStaleTemps removes temporary files a crashed run left behind. Only
// old ones: a young one may be another process's write in progress.
func sweepStaleTemps(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), ".") || !strings.Contains(d.Name(), ".tmp-") {
			return nil
		}
		if info, err := d.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			_ = os.Remove(p)
		}
		return nil
	})
}
