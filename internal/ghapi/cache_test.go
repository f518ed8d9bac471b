package ghapi

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
)

func TestDecodeEntryRefusesTampering(t *testing.T) {
	good := &cacheEntry{URL: "http://h/api/v3/repos/o/r/tags", ETag: `"e1"`,
		Header: map[string][]string{"Link": {`<http://h/x?page=2>; rel="next"`}}, Body: []byte(`[{"name":"v4.2.1"}]`)}
	data, err := encodeEntry(good)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := decodeEntry(data); err != nil || !bytes.Equal(e.Body, good.Body) || e.ETag != good.ETag {
		t.Fatalf("round trip: %+v, %v", e, err)
	}
	tamper := func(f func(e *cacheEntry)) []byte {
		e := *good
		f(&e)
		b, err := encodeEntry(&e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := map[string][]byte{
		"truncated":       data[:len(data)-1],
		"body changed":    bytes.Replace(data, []byte("v4.2.1"), []byte("v9.9.9"), 1),
		"header split":    tamper(func(e *cacheEntry) { e.ETag = "\"e1\"\r\nX-Injected: 1" }),
		"empty etag":      tamper(func(e *cacheEntry) { e.ETag = "" }),
		"foreign header":  tamper(func(e *cacheEntry) { e.Header = map[string][]string{"Authorization": {"Bearer x"}} }),
		"not canonical":   tamper(func(e *cacheEntry) { e.Header = map[string][]string{"link": {"x"}} }),
		"no url":          tamper(func(e *cacheEntry) { e.URL = "" }),
		"other format":    append([]byte("criu-forge github cache v0\n"), data[len(cacheMagic):]...),
		"header too long": []byte(cacheMagic + strings.Repeat(" ", maxEntryHeader+1) + "\n"),
	}
	for name, b := range tests {
		if _, err := decodeEntry(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCacheSharedByConcurrentClients runs clients in parallel on one state
// directory, as overlapping cron runs of watch would: every answer is
// complete and right, whichever entry version each one read.
func TestCacheSharedByConcurrentClients(t *testing.T) {
	srv := fakegithub.New(t)
	seed(srv)
	state := t.TempDir()
	want := ask(t, newClient(t, srv, Options{PerPage: 50}))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				c, err := New(Options{BaseURL: srv.URL(), StateDir: state, PerPage: 50})
				if err != nil {
					errs <- err
					return
				}
				got, err := c.PullCommits(context.Background(), "checkpoint-restore", "criu", 2449)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want.Commits) {
					errs <- errDiffers
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

var errDiffers = errors.New("answer differs from the uncached one")

func TestStaleTempFilesSwept(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "github-http-cache", "ab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, young := filepath.Join(dir, ".abcd.tmp-1"), filepath.Join(dir, ".abce.tmp-2")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("crashed run's temp file kept: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a write in progress was removed: %v", err)
	}
}
