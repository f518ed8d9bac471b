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
	computed := func() {
		fmt.Fprintf(b, "Filename: %s\nSize: %d\nMD5sum: %s\nSHA256: %s\n", filename, d.Size, d.MD5, d.SHA256)
	}
	done := false
	for _, f := range d.Control {
		if !done && strings.EqualFold(f.Name, "Description") {
			computed()
			done = true
		}
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	if !done {
		computed()
	}
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
	Release    []byte
	InRelease  []byte
	ReleaseGPG []byte
}

// buildSuite renders the indexes, Release and its signatures of one suite.
// Packages of every architecture are compressed in parallel: xz dominates
// the time of an incremental publish.
func buildSuite(suite string, archs []string, recs []*record, opts *PublishOptions, now time.Time) (*suiteFiles, error) {
	sortRecords(recs)
	out := &suiteFiles{}
	type result struct {
		files []indexFile
		err   error
	}
	results := make([]result, len(archs))
	var wg sync.WaitGroup
	for i, arch := range archs {
		var b bytes.Buffer
		for _, r := range recs {
			if r.Deb.Arch == arch || r.Deb.Arch == "all" {
				writePackagesEntry(&b, r.Deb, r.Filename)
			}
		}
		dir := component + "/binary-" + arch + "/"
		plain := b.Bytes()
		wg.Add(1)
		go func() {
			defer wg.Done()
			gz, err := gzipBytes(plain)
			if err != nil {
				results[i].err = err
				return
			}
			xzData, err := xzBytes(plain)
			if err != nil {
				results[i].err = err
				return
			}
			results[i].files = []indexFile{newIndexFile(dir+"Packages", plain), newIndexFile(dir+"Packages.gz", gz), newIndexFile(dir+"Packages.xz", xzData)}
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			return nil, fmt.Errorf("compress Packages of %s: %w", suite, r.err)
		}
		out.Indexes = append(out.Indexes, r.files...)
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
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
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
	w, err := xz.NewWriter(&b)
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
