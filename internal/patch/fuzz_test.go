package patch

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzNormalize: any input either fails cleanly or normalizes to a form
// that is itself stable (normalizing it again changes nothing) and names
// no path outside the tree.
func FuzzNormalize(f *testing.F) {
	f.Add([]byte("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Normalize(data)
		if err != nil {
			return
		}
		again, err := Normalize(n)
		if err != nil {
			t.Fatalf("normalized form does not parse: %v\n%s", err, n)
		}
		if !bytes.Equal(n, again) {
			t.Fatalf("Normalize is not idempotent:\n%s\n---\n%s", n, again)
		}
		if _, err := Hash(data); err != nil {
			t.Fatalf("Hash fails where Normalize succeeds: %v", err)
		}
	})
}

// FuzzParseMbox: any input either fails cleanly or gives patches whose
// diffs normalize and name only safe paths.
func FuzzParseMbox(f *testing.F) {
	f.Add([]byte("From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\nDate: Tue, 10 Feb 2026 10:00:00 +0000\nSubject: [PATCH] x\n\n---\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseMbox(data)
		if err != nil {
			return
		}
		for _, p := range ps {
			files, err := parseDiff(p.Diff)
			if err != nil {
				t.Fatalf("ParseMbox accepted a diff that does not parse: %v", err)
			}
			for _, fl := range files {
				for _, name := range []string{fl.OldName, fl.NewName} {
					if name != "" && errors.Is(checkPath(name), ErrUnsafePath) {
						t.Fatalf("unsafe path %q accepted", name)
					}
				}
			}
		}
	})
}

// FuzzApplyText: hunks from an untrusted patch applied to any content, at
// any fuzz, forward and reverse, fail cleanly or succeed, never panic; a
// hunk that applies and is then reversed gives the content back.
func FuzzApplyText(f *testing.F) {
	f.Add([]byte("a\nb\nc\nd\n"), []byte("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -2,2 +2,2 @@\n b\n-c\n+C\n"), uint8(0))
	f.Add([]byte("x\n"), []byte("--- a/x\n+++ b/x\n@@ -1 +1,2 @@\n x\n+y\n\\ No newline at end of file\n"), uint8(2))
	f.Fuzz(func(t *testing.T, src, diff []byte, fuzz uint8) {
		files, err := parseDiff(diff)
		if err != nil {
			return
		}
		for _, fl := range files {
			out, he := applyText(src, fl.TextFragments, int(fuzz%4))
			if he != nil || fuzz%4 != 0 {
				continue
			}
			back, he := applyText(out, reverseFragments(fl.TextFragments), 0)
			if he == nil && !bytes.Equal(back, src) && len(fl.TextFragments) == 1 {
				// Reversal may find another place for an ambiguous hunk;
				// it must at least be a valid result of the same length.
				if len(back) != len(src) {
					t.Fatalf("reverse of a one-hunk patch changed the length: %q -> %q -> %q", src, out, back)
				}
			}
		}
	})
}
