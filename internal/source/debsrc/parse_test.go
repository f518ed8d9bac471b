package debsrc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// The real `apt-get indextargets` of a bookworm machine (host renamed):
// one main archive with bookworm and bookworm-updates, one security archive.
func TestParseIndexTargetsReal(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "indextargets-bookworm.txt"))
	if err != nil {
		t.Fatal(err)
	}
	archives, err := parseIndexTargets(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(archives, "", "  ")
	testutil.Golden(t, "indextargets-bookworm.golden", append(got, '\n'))
}

func TestCandidates(t *testing.T) {
	const main, sec, ports = "http://archive.example/debian/", "http://archive.example/debian-security/", "https://ports.example/"
	archives := []archive{
		{URI: sec, Releases: []string{"bookworm-security"}},
		{URI: main, Releases: []string{"bookworm", "bookworm-updates"}},
		{URI: ports, Releases: []string{"sid"}},
	}
	tests := []struct {
		suite string
		want  []string
	}{
		{"sid", []string{main, ports}},
		{"trixie", []string{main, ports}},
		{"trixie-security", []string{sec, main, ports}},
	}
	for _, tt := range tests {
		if got := candidates(archives, tt.suite); !slices.Equal(got, tt.want) {
			t.Errorf("candidates for %s: %v, want %v", tt.suite, got, tt.want)
		}
	}
}

func TestParseIndexTargets(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"Base-URI without Repo-URI", "Base-URI: http://a.example/debian/dists/sid/\nRelease: sid\n", []string{"http://a.example/debian/"}},
		{"Repo-URI without slash", "Repo-URI: https://a.example/debian\n", []string{"https://a.example/debian/"}},
		{"cdrom and file archives skipped", "Repo-URI: cdrom://[Debian]/\n\nRepo-URI: file:/srv/mirror/\n\nRepo-URI: mirror+http://a.example/list\n", nil},
		{"duplicates once, order kept", "Repo-URI: http://b.example/\n\nRepo-URI: http://a.example/\n\nRepo-URI: http://b.example/\n", []string{"http://b.example/", "http://a.example/"}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archives, err := parseIndexTargets(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range archives {
				got = append(got, a.URI)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseReleaseValidUntil(t *testing.T) {
	tests := []struct {
		field, want string
		bad         bool
	}{
		{"Fri, 06 Nov 2026 08:08:01 UTC", "2026-11-06T08:08:01Z", false},
		{"Sat, 7 Nov 2026 08:08:01 +0000", "2026-11-07T08:08:01Z", false},
		{"", "0001-01-01T00:00:00Z", false},
		{"next week", "", true},
	}
	for _, tt := range tests {
		rel, err := parseRelease([]byte("Origin: Debian\nSuite: unstable\nCodename: sid\nValid-Until: " + tt.field + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := rel.validUntil()
		if (err != nil) != tt.bad {
			t.Errorf("Valid-Until %q: error %v", tt.field, err)
			continue
		}
		if !tt.bad && got.UTC().Format("2006-01-02T15:04:05Z") != tt.want {
			t.Errorf("Valid-Until %q = %s, want %s", tt.field, got, tt.want)
		}
	}
}

func TestOrigFile(t *testing.T) {
	tests := []struct {
		name, paragraph, want, err string
	}{
		{"real criu paragraph", criuParagraph, "pool/main/c/criu/criu_4.2.1.orig.tar.xz", ""},
		{"component tarball and signature ignored", "Package: p\nVersion: 1.0-1\nDirectory: pool/main/p/p\nChecksums-Sha256:\n " +
			strings.Repeat("a", 64) + " 10 p_1.0.orig-doc.tar.xz\n " + strings.Repeat("b", 64) + " 10 p_1.0.orig.tar.gz.asc\n " +
			strings.Repeat("c", 64) + " 10 p_1.0.orig.tar.gz\n", "pool/main/p/p/p_1.0.orig.tar.gz", ""},
		{"Directory climbing out", "Package: p\nVersion: 1.0-1\nDirectory: pool/../../x\nChecksums-Sha256:\n " +
			strings.Repeat("c", 64) + " 10 p_1.0.orig.tar.gz\n", "", "bad Directory"},
		{"absolute Directory", "Package: p\nVersion: 1.0-1\nDirectory: /etc\nChecksums-Sha256:\n " +
			strings.Repeat("c", 64) + " 10 p_1.0.orig.tar.gz\n", "", "bad Directory"},
		{"bad hash", "Package: p\nVersion: 1.0-1\nDirectory: pool/main/p/p\nChecksums-Sha256:\n xyz 10 p_1.0.orig.tar.gz\n", "", "bad Checksums-Sha256"},
		{"no orig", "Package: p\nVersion: 1.0-1\nDirectory: pool/main/p/p\nChecksums-Sha256:\n " +
			strings.Repeat("c", 64) + " 10 p_1.0-1.dsc\n", "", "no p_1.0.orig.tar.*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg := strings.Fields(tt.paragraph)[1]
			ver := strings.Fields(strings.SplitN(tt.paragraph, "Version:", 2)[1])[0]
			found, err := scanSources(strings.NewReader(tt.paragraph), pkg, ver)
			if err != nil || found.entry == nil {
				t.Fatalf("scan: %v %+v", err, found)
			}
			up, err := upstreamVersion(ver)
			if err != nil {
				t.Fatal(err)
			}
			_, got, err := found.entry.origFile(pkg, up)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestUpstreamVersion(t *testing.T) {
	for in, want := range map[string]string{"4.2.1-1": "4.2.1", "1:4.2.1-1~bpo12+1": "4.2.1", "4.2.1-rc1-2": "4.2.1-rc1"} {
		if got, err := upstreamVersion(in); err != nil || got != want {
			t.Errorf("upstreamVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// Fuzzers: every parser of archive or apt output must refuse, not panic.

func FuzzParseIndexTargets(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		archives, err := parseIndexTargets(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, a := range archives {
			if !strings.HasSuffix(a.URI, "/") || !(strings.HasPrefix(a.URI, "http://") || strings.HasPrefix(a.URI, "https://")) {
				t.Fatalf("archive URI %q", a.URI)
			}
		}
		candidates(archives, "sid")
	})
}

// FuzzRelease covers the clear-signed wrapper and the Release parser.
func FuzzRelease(f *testing.F) {
	f.Add([]byte("Origin: Debian\nSuite: unstable\nCodename: sid\nValid-Until: Fri, 06 Nov 2026 08:08:01 UTC\nSHA256:\n " +
		strings.Repeat("0", 64) + " 12 main/source/Sources.xz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rel, err := parseRelease(data); err == nil {
			rel.validUntil()
			rel.index("main/source/Sources.xz")
			for _, e := range rel.SHA256 {
				if !sha256Hex.MatchString(e.Hash) {
					t.Fatalf("accepted hash %q", e.Hash)
				}
			}
		}
		if block, err := splitClearsigned(data); err == nil {
			parseRelease(block.Plaintext)
			if verifyAnySignature(block, nil) == nil {
				t.Fatal("signature accepted with no keys")
			}
		}
		keyringFor("", data)
	})
}

// FuzzSources covers the Sources scan and the orig selection.
func FuzzSources(f *testing.F) {
	f.Add([]byte(otherParagraphs + criuParagraph))
	f.Fuzz(func(t *testing.T, data []byte) {
		found, err := scanSources(bytes.NewReader(data), "criu", "4.2.1-1")
		if err != nil || found.entry == nil {
			return
		}
		_, poolPath, err := found.entry.origFile("criu", "4.2.1")
		if err != nil {
			return
		}
		if strings.HasPrefix(poolPath, "/") || strings.Contains(poolPath, "..") || !strings.HasSuffix(poolPath, "/"+"criu_4.2.1.orig.tar."+poolPath[strings.LastIndex(poolPath, ".")+1:]) {
			t.Fatalf("pool path %q", poolPath)
		}
	})
}

// BenchmarkScanSources scans a Sources index of 30,000 criu-sized
// paragraphs (about sid's main) for a package it does not hold, the worst
// case: every paragraph is read.
func BenchmarkScanSources(b *testing.B) {
	var buf bytes.Buffer
	for i := 0; i < 30000; i++ {
		buf.WriteString(strings.Replace(criuParagraph, "Package: criu\n", "Package: pkg"+strconv.Itoa(i)+"\n", 1))
		buf.WriteString("\n")
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		found, err := scanSources(bytes.NewReader(buf.Bytes()), "criu", "4.2.1-1")
		if err != nil || found.entry != nil {
			b.Fatal(err)
		}
	}
}

func TestDecompress(t *testing.T) {
	a := newFakeArchive(t)
	text := otherParagraphs + criuParagraph
	xzData, gzData := a.files[sourcesXZPath], a.files["dists/sid/main/source/Sources.gz"]
	tests := []struct {
		name, file string
		data       []byte
		noXZ       bool // hide the xz program: Go's decoder
		ok         bool
	}{
		{"xz program", "Sources.xz", xzData, false, true},
		{"Go xz decoder", "Sources.xz", xzData, true, true},
		{"gzip", "Sources.gz", gzData, false, true},
		{"truncated xz, xz program", "Sources.xz", xzData[:len(xzData)-20], false, false},
		{"truncated xz, Go decoder", "Sources.xz", xzData[:len(xzData)-20], true, false},
		{"truncated gzip", "Sources.gz", gzData[:len(gzData)-20], false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noXZ {
				t.Setenv("PATH", "")
			} else if strings.HasSuffix(tt.file, ".xz") {
				testutil.RequireTool(t, "xz", "xz-utils")
			}
			r, err := decompress(context.Background(), tt.file, bytes.NewReader(tt.data))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(r)
				r.Close()
			}
			if tt.ok && (err != nil || string(got) != text) {
				t.Fatalf("got %d bytes, %v", len(got), err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("truncated input read cleanly (%d bytes)", len(got))
			}
		})
	}
}

// A reader closed early stops the xz program.
func TestDecompressCloseEarly(t *testing.T) {
	testutil.RequireTool(t, "xz", "xz-utils")
	a := newFakeArchive(t)
	r, err := decompress(context.Background(), "Sources.xz", bytes.NewReader(a.files[sourcesXZPath]))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if f, ok := r.(*filterReader); ok && f.cmd.ProcessState == nil {
		t.Error("xz still running after Close")
	}
}

// BenchmarkDecompressXZ compares the xz program with Go's xz decoder on a
// Sources-like index: the reason .xz indexes go through the program.
func BenchmarkDecompressXZ(b *testing.B) {
	// Fresh checksums in every paragraph keep the compression ratio near a
	// real index's (about 6:1); repeated text would flatter Go's decoder.
	var text bytes.Buffer
	for i := 0; i < 8000; i++ {
		p := strings.Replace(criuParagraph, "Package: criu\n", "Package: pkg"+strconv.Itoa(i)+"\n", 1)
		for _, old := range []string{criuOrigSHA256, "9286c86e5adfd70b97a68e117c2905d91bf9e31132296e7ebf57066189a2f0b0", "15af4ed4460591e31fc5be6cab994ac9"} {
			sum := sha256.Sum256([]byte(old + strconv.Itoa(i)))
			p = strings.Replace(p, old, hex.EncodeToString(sum[:])[:len(old)], 1)
		}
		text.WriteString(p + "\n")
	}
	var packed bytes.Buffer
	w, err := xz.NewWriter(&packed)
	if err != nil {
		b.Fatal(err)
	}
	w.Write(text.Bytes())
	w.Close()
	for _, mode := range []string{"xz-program", "go-decoder"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "go-decoder" {
				b.Setenv("PATH", "")
			} else {
				testutil.RequireTool(b, "xz", "xz-utils")
			}
			b.SetBytes(int64(text.Len()))
			for b.Loop() {
				r, err := decompress(context.Background(), "Sources.xz", bytes.NewReader(packed.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil || n != int64(text.Len()) {
					b.Fatal(n, err)
				}
				r.Close()
			}
			b.ReportMetric(float64(text.Len())/float64(packed.Len()), "ratio")
		})
	}
}
