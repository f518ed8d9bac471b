package ghapi

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

// FuzzParseRepo: whatever ParseRepo accepts is a valid owner/name that
// reads back the same, and never climbs out of the API path.
func FuzzParseRepo(f *testing.F) {
	for _, s := range []string{"checkpoint-restore/criu", "https://github.com/o/r.git", "git@h:o/r.git", "ssh://git@h:22/o/r", "../x", "o/r/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		owner, name, err := ParseRepo(s)
		if err != nil {
			return
		}
		if err := ValidRepo(owner, name); err != nil {
			t.Fatalf("ParseRepo(%q) accepted %q/%q: %v", s, owner, name, err)
		}
		o2, n2, err := ParseRepo(owner + "/" + name)
		if err != nil || o2 != owner || n2 != name {
			t.Fatalf("ParseRepo(%q) = %q/%q does not read back: %q/%q %v", s, owner, name, o2, n2, err)
		}
	})
}

// FuzzDecodeEntry: a stored cache entry is untrusted; decoding never
// panics, and what it accepts is safe to send (ETag) and re-encodes to an
// entry that decodes the same.
func FuzzDecodeEntry(f *testing.F) {
	good, err := encodeEntry(&cacheEntry{URL: "http://127.0.0.1/api/v3/repos/o/r/tags?page=2", ETag: `"abc"`,
		Header: map[string][]string{"Link": {`<http://127.0.0.1/x?page=3>; rel="next"`}, "Content-Type": {"application/json"}},
		Body:   []byte(`[{"name":"v4.2.1"}]`)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte(cacheMagic + "{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		if !validHeaderValue(e.ETag) || e.ETag == "" {
			t.Fatalf("accepted ETag %q", e.ETag)
		}
		h := http.Header{}
		for k, vs := range e.Header {
			if !isCachedHeader(k) {
				t.Fatalf("accepted header %q", k)
			}
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		again, err := encodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := decodeEntry(again)
		if err != nil || !bytes.Equal(e2.Body, e.Body) || e2.ETag != e.ETag || e2.URL != e.URL || !reflect.DeepEqual(e2.Header, e.Header) {
			t.Fatalf("re-encoded entry differs: %v", err)
		}
	})
}
