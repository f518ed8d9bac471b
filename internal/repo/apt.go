package repo

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/version"
)

const component = "main"

// writePackagesEntry appends one Packages stanza: the control fields as the
// .deb has them, with the repository's Filename, Size and hashes before
// Description (where dpkg-scanpackages puts them).
func writePackagesEntry(b *bytes.Buffer, d *debInfo, filename string) {
	at := d.DescriptionAt
	if at < 0 || at > len(d.Control) { // from a damaged state: keep the index well-formed
		at = len(d.Control)
	}
	b.WriteString(d.Control[:at])
	b.WriteString("Filename: ")
	b.WriteString(filename)
	b.WriteString("\nSize: ")
	b.WriteString(strconv.FormatInt(d.Size, 10))
	b.WriteString("\nMD5sum: ")
	b.WriteString(d.MD5)
	b.WriteString("\nSHA256: ")
	b.WriteString(d.SHA256)
	b.WriteString("\n")
	b.WriteString(d.Control[at:])
	b.WriteByte('\n')
}

// sortRecords orders a suite's packages by name, then Debian version, then
// architecture, so Packages is the same for the same set of packages.
func sortRecords(recs []*record) {
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i].Deb, recs[j].Deb
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if c := compareVersions(a.Version, b.Version); c != 0 {
			return c < 0
		}
		return a.Arch < b.Arch
	})
}

func compareVersions(a, b string) int {
	va, errA := version.Parse(a)
	vb, errB := version.Parse(b)
	if errA != nil || errB != nil { // validated on the way in; keep the order total anyway
		return strings.Compare(a, b)
	}
	return version.Compare(va, vb)
}

// indexFile is one file a Release lists.
type indexFile struct {
	Name   string // relative to dists/<suite>/
	Data   []byte
	MD5    string
	SHA256 string
}

func newIndexFile(name string, data []byte) indexFile {
	m, s := md5.Sum(data), sha256.Sum256(data)
	return indexFile{Name: name, Data: data, MD5: hex.EncodeToString(m[:]), SHA256: hex.EncodeToString(s[:])}
}

// suiteFiles is everything under dists/<suite>/ for one generation.
type suiteFiles struct {
	Indexes    []indexFile // Packages, .gz, .xz of every architecture
	Chunks     []string    // compressed chunks the indexes are made of (see chunks.go)
	Release    []byte
	InRelease  []byte
	ReleaseGPG []byte
}

// buildSuite renders the indexes, Release and its signatures of one suite.
// Packages of every architecture are compressed in parallel: xz dominates
// the time of an incremental publish.
func buildSuite(suite string, archs []string, recs []*record, opts *PublishOptions, now time.Time, cache *chunkCache) (*suiteFiles, error) {
	sortRecords(recs)
	out := &suiteFiles{}
	type result struct {
		files  []indexFile
		chunks []string
		err    error
	}
	results := make([]result, len(archs))
	var wg sync.WaitGroup
	for i, arch := range archs {
		var b bytes.Buffer
		var chunks [][]byte
		start, inChunk := 0, 0
		for _, r := range recs {
			if r.Deb.Arch != arch && r.Deb.Arch != "all" {
				continue
			}
			writePackagesEntry(&b, r.Deb, r.Filename)
			inChunk++
			if chunkBoundary(r.Deb, inChunk) {
				chunks = append(chunks, b.Bytes()[start:b.Len():b.Len()])
				start, inChunk = b.Len(), 0
			}
		}
		if start < b.Len() || len(chunks) == 0 {
			chunks = append(chunks, b.Bytes()[start:b.Len():b.Len()])
		}
		dir := component + "/binary-" + arch + "/"
		plain := b.Bytes()
		wg.Add(1)
		go func() {
			defer wg.Done()
			gz, gzNames, err := cache.compressChunks(chunks, ".gz", gzipBytes, concat)
			if err != nil {
				results[i].err = err
				return
			}
			xzData, xzNames, err := cache.compressChunks(chunks, ".xz", xzBytes, xzJoin)
			if err != nil {
				results[i].err = err
				return
			}
			results[i].chunks = append(gzNames, xzNames...)
			results[i].files = []indexFile{newIndexFile(dir+"Packages", plain), newIndexFile(dir+"Packages.gz", gz), newIndexFile(dir+"Packages.xz", xzData)}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return nil, fmt.Errorf("compress Packages of %s: %w", suite, r.err)
		}
		out.Indexes = append(out.Indexes, r.files...)
		out.Chunks = append(out.Chunks, r.chunks...)
	}

	var rel bytes.Buffer
	fmt.Fprintf(&rel, "Origin: %s\nLabel: %s\nSuite: %s\nCodename: %s\n", opts.Origin, opts.Label, suite, suite)
	fmt.Fprintf(&rel, "Date: %s\n", now.UTC().Format(time.RFC1123))
	fmt.Fprintf(&rel, "Architectures: %s\nComponents: %s\n", strings.Join(archs, " "), component)
	fmt.Fprintf(&rel, "Description: %s packages for %s\nAcquire-By-Hash: yes\n", opts.Label, suite)
	rel.WriteString("MD5Sum:\n")
	for _, f := range out.Indexes {
		fmt.Fprintf(&rel, " %s %16d %s\n", f.MD5, len(f.Data), f.Name)
	}
	rel.WriteString("SHA256:\n")
	for _, f := range out.Indexes {
		fmt.Fprintf(&rel, " %s %16d %s\n", f.SHA256, len(f.Data), f.Name)
	}
	out.Release = rel.Bytes()

	var in, sig bytes.Buffer
	if err := opts.Signer.ClearSign(&in, out.Release); err != nil {
		return nil, fmt.Errorf("sign InRelease of %s: %w", suite, err)
	}
	if err := opts.Signer.DetachSign(&sig, out.Release, true); err != nil {
		return nil, fmt.Errorf("sign Release.gpg of %s: %w", suite, err)
	}
	out.InRelease, out.ReleaseGPG = in.Bytes(), sig.Bytes()
	return out, nil
}

// byHashPath is where apt fetches an index by its SHA256 (Acquire-By-Hash).
func byHashPath(f indexFile) string {
	return path.Join(path.Dir(f.Name), "by-hash", "SHA256", f.SHA256)
}

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func xzBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	// A chunk is small: a small dictionary saves allocating (and clearing)
	// the default 8 MiB for each.
	w, err := xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&b)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
