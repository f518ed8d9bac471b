// Package debsrc fetches an upstream release tarball (the "orig" tarball of
// a Debian source package) through a Debian or Ubuntu archive, for build
// farms that reach a Debian mirror but not the upstream forge.
//
// The tarball is proven genuine by the archive's signed chain, as apt
// would: the InRelease signature (archive keyring) covers the Sources
// index's sha256 and size, and the Sources paragraph of the exact
// package and version covers the orig tarball's sha256 and size. Only the
// orig tarball is fetched, so a mirror that lacks the .dsc or the
// .debian.tar.* (as partial mirrors do) still serves. Nothing unverified
// enters the cache.
//
// Cache layout below Request.CacheDir:
//
//	tarballs/<sha256>                           verified tarballs (shared with other sources)
//	debsrc/<suite>/<package>_<version>.json     what was verified, for reuse and Offline
//	debsrc/<suite>/<package>_<version>.lock     one fetch of a package version at a time
package debsrc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// Request names a source package version and where to fetch it.
type Request struct {
	Package, Version string // source package and full Debian version, e.g. "criu", "4.2.1-1"
	Suite            string // e.g. "sid", "trixie", "bookworm"; distribution codename or suite
	// Mirror is the archive base URL. "" follows the machine's apt
	// configuration (apt-get indextargets): its archives are tried in
	// order, and its Acquire::Check-Valid-Until applies.
	Mirror string
	// Keyring verifies InRelease; "" = DebianKeyring, or UbuntuKeyring
	// when the Release says Origin: Ubuntu.
	Keyring    string
	CacheDir   string       // criu-forge cache root
	Offline    bool         // use only what the cache holds
	HTTPClient *http.Client // nil = a default with sane timeouts
}

// Result is a verified orig tarball in the cache.
type Result struct {
	Path   string // verified orig tarball in the cache (CacheDir/tarballs/<sha256>)
	SHA256 string
	Size   int64
	Name   string // e.g. criu_4.2.1.orig.tar.xz
	URL    string // where it came from
	Mirror string
}

// Errors a caller may want to tell apart (test with errors.Is).
var (
	ErrNotCached       = errors.New("not in the cache")
	ErrNoMirror        = errors.New("no archive found in the apt configuration")
	ErrSuiteNotFound   = errors.New("suite not on the archive")
	ErrBadSignature    = errors.New("InRelease signature not valid")
	ErrExpired         = errors.New("InRelease expired")
	ErrHashMismatch    = errors.New("checksum mismatch")
	ErrVersionNotFound = errors.New("version not in Sources")
	ErrPoolFileMissing = errors.New("pool file missing on this mirror")
	errInvalidRequest  = errors.New("invalid debian-source request")
)

// Bounds on what is read before it is verified: a mirror must not make
// this process read without end.
const (
	maxInReleaseSize    = 64 << 20
	maxSourcesIndexSize = 512 << 20
)

// Fetch returns the orig tarball of req.Package at req.Version from
// req.Suite, verified through the archive's signed chain, downloading it
// only when the cache does not already hold it.
func Fetch(ctx context.Context, req Request) (*Result, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if res, err := req.fromCache(); err == nil || req.Offline {
		return res, err
	}
	lock, err := fsutil.Acquire(ctx, req.cachePath(".lock"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req, err)
	}
	defer lock.Release()
	// Another process may have finished the same fetch while we waited.
	if res, err := req.fromCache(); err == nil {
		return res, nil
	}
	res, err := req.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req, err)
	}
	return res, nil
}

// kindError carries a full message and is one of the Err* kinds.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func kindErrorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (r Request) String() string {
	return fmt.Sprintf("debian-source %s %s (%s)", r.Package, r.Version, r.Suite)
}

var (
	packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	suiteName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

func (r Request) validate() error {
	switch {
	case !packageName.MatchString(r.Package):
		return fmt.Errorf("%w: package %q is not a Debian source package name", errInvalidRequest, r.Package)
	case !suiteName.MatchString(r.Suite) || strings.Contains(r.Suite, ".."):
		return fmt.Errorf("%w: suite %q is not a suite or codename such as sid or trixie", errInvalidRequest, r.Suite)
	case r.Mirror != "" && !isHTTPURL(r.Mirror):
		return fmt.Errorf("%w: mirror %q is not an http(s) URL of an archive", errInvalidRequest, r.Mirror)
	case r.CacheDir == "":
		return fmt.Errorf("%w: no cache directory", errInvalidRequest)
	}
	if _, err := upstreamVersion(r.Version); err != nil {
		return fmt.Errorf("%w: version %q: %v", errInvalidRequest, r.Version, err)
	}
	return nil
}

// cachePath is CacheDir/debsrc/<suite>/<package>_<version><ext>; the
// version's epoch colon is escaped as Debian's pool does in URLs.
func (r Request) cachePath(ext string) string {
	name := r.Package + "_" + strings.ReplaceAll(r.Version, ":", "%3a") + ext
	return filepath.Join(r.CacheDir, "debsrc", filepath.FromSlash(strings.ReplaceAll(r.Suite, "/", "_")), name)
}

func tarballPath(cacheDir, sha string) string {
	return filepath.Join(cacheDir, "tarballs", sha)
}

// record is what was verified for one package version: once the signed
// chain vouched for a (name, sha256, size), the version's orig can only be
// that file, so later runs need no network.
type record struct {
	Package    string    `json:"package"`
	Version    string    `json:"version"`
	Suite      string    `json:"suite"`
	Name       string    `json:"name"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	URL        string    `json:"url"`
	Mirror     string    `json:"mirror"`
	VerifiedAt time.Time `json:"verified_at"`
}

// fromCache resolves the request from its record and the tarball it names,
// rehashing the tarball so a damaged cache entry is never handed out.
func (r Request) fromCache() (*Result, error) {
	path := r.cachePath(".json")
	missing := kindErrorf(ErrNotCached, "%s is not in the cache %s; run once with network access", r, r.CacheDir)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, missing
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", r, path, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil || rec.Package != r.Package || rec.Version != r.Version ||
		rec.Suite != r.Suite || !sha256Hex.MatchString(rec.SHA256) {
		return nil, kindErrorf(ErrNotCached, "%s: cache record %s is damaged; run once with network access to rewrite it", r, path)
	}
	tarball := tarballPath(r.CacheDir, rec.SHA256)
	if err := checkFile(tarball, rec.Size, rec.SHA256); err != nil {
		return nil, kindErrorf(ErrNotCached, "%s: cached tarball: %v; run once with network access to fetch it again", r, err)
	}
	return &Result{Path: tarball, SHA256: rec.SHA256, Size: rec.Size, Name: rec.Name, URL: rec.URL, Mirror: rec.Mirror}, nil
}

// checkFile verifies a file's size and sha256.
func checkFile(path string, size int64, sha string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return copyChecked(io.Discard, f, path, size, sha)
}

// fetch walks the signed chain on the first archive that has the suite.
func (r Request) fetch(ctx context.Context) (*Result, error) {
	client := r.HTTPClient
	if client == nil {
		client = defaultClient()
	}
	mirrors := []string{r.Mirror}
	checkValidUntil := true
	if r.Mirror == "" {
		var err error
		if mirrors, err = aptMirrors(ctx, r.Suite); err != nil {
			return nil, fmt.Errorf("%w; name the archive with mirror: in the recipe", err)
		}
		checkValidUntil = aptChecksValidUntil(ctx)
	}
	// Try each archive in turn; report every failure if none has the suite.
	var failures []string
	var firstErr error
	for _, m := range mirrors {
		m = strings.TrimSuffix(m, "/") + "/"
		rel, err := r.release(ctx, client, m, checkValidUntil)
		if err == nil {
			return r.fetchFrom(ctx, client, m, rel)
		}
		if len(mirrors) == 1 && !isNotFound(err) {
			return nil, err
		}
		failures = append(failures, fmt.Sprintf("%s: %v", m, err))
		if firstErr == nil && !isNotFound(err) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, fmt.Errorf("no archive served a verified %s: %s: %w", r.Suite, strings.Join(failures, "; "), firstErr)
	}
	return nil, fmt.Errorf("%w: suite %s not found (%s); check the suite name, or name an archive that has it with mirror: in the recipe",
		ErrSuiteNotFound, r.Suite, strings.Join(failures, "; "))
}

// release fetches and verifies dists/<suite>/InRelease of mirror.
func (r Request) release(ctx context.Context, client *http.Client, mirror string, checkValidUntil bool) (*release, error) {
	url := mirror + "dists/" + r.Suite + "/InRelease"
	data, err := getSmall(ctx, client, url, maxInReleaseSize)
	if err != nil {
		return nil, err
	}
	keyring := keyringFor(r.Keyring, data)
	keys, err := readKeyring(keyring)
	if err != nil {
		return nil, fmt.Errorf("read keyring %s: %w (install debian-archive-keyring or ubuntu-keyring, or name a keyring)", keyring, err)
	}
	rel, err := verifyInRelease(data, keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (keyring %s: if the archive has a new key, update the keyring package or name a keyring)", url, err, keyring)
	}
	if !rel.names(r.Suite) {
		return nil, fmt.Errorf("%w: %s describes suite %q, codename %q, not %s", ErrBadSignature, url, rel.Suite, rel.Codename, r.Suite)
	}
	until, err := rel.validUntil()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if checkValidUntil && !until.IsZero() && time.Now().After(until) {
		hint := "leave mirror: unset to check it as this machine's apt does (Acquire::Check-Valid-Until)"
		if r.Mirror == "" {
			hint = "set apt's Acquire::Check-Valid-Until to false if a frozen archive is intended"
		}
		return nil, fmt.Errorf("%w: %s was valid until %s: the mirror is stale (or the clock is wrong); use an up-to-date mirror, or %s",
			ErrExpired, url, until.UTC().Format(time.RFC1123), hint)
	}
	return rel, nil
}

// fetchFrom finds the package version in the suite's Sources indexes and
// brings its orig tarball into the cache.
func (r Request) fetchFrom(ctx context.Context, client *http.Client, mirror string, rel *release) (*Result, error) {
	upstream, _ := upstreamVersion(r.Version) // validated already
	var versions []string
	for _, comp := range componentsMainFirst(rel.Components) {
		found, err := r.searchSources(ctx, client, mirror, rel, comp)
		if err != nil {
			return nil, err
		}
		if found == nil {
			continue
		}
		versions = append(versions, found.versions...)
		if found.entry == nil {
			continue
		}
		file, poolPath, err := found.entry.origFile(r.Package, upstream)
		if err != nil {
			return nil, fmt.Errorf("%s %s in %s/source/Sources: %w", r.Package, r.Version, comp, err)
		}
		return r.fetchOrig(ctx, client, mirror, poolPath, file.Filename, file.Size, file.Hash)
	}
	if len(versions) == 0 {
		return nil, kindErrorf(ErrVersionNotFound, "the Sources of %s on %s list no source package %s; check the package name and suite", r.Suite, mirror, r.Package)
	}
	return nil, kindErrorf(ErrVersionNotFound, "version %s is not in the Sources of %s on %s, which list %s %s; pin one of those or pick the suite that has %s",
		r.Version, r.Suite, mirror, r.Package, strings.Join(versions, ", "), r.Version)
}

func componentsMainFirst(components []string) []string {
	out := []string{"main"}
	for _, c := range components {
		if c != "" && c != "main" {
			out = append(out, c)
		}
	}
	return out
}

// searchSources downloads one component's Sources index, checks it against
// the Release, and scans it; nil when the Release lists no such index.
func (r Request) searchSources(ctx context.Context, client *http.Client, mirror string, rel *release, comp string) (*lookup, error) {
	var lastErr error
	for _, name := range []string{comp + "/source/Sources.xz", comp + "/source/Sources.gz"} {
		entry, ok := rel.index(name)
		if !ok {
			continue
		}
		if entry.Size > maxSourcesIndexSize {
			return nil, fmt.Errorf("%s is %d bytes, more than this tool reads", name, entry.Size)
		}
		data, err := r.getIndex(ctx, client, mirror, rel, name, entry.Size, entry.Hash)
		if isNotFound(err) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("Sources index %s of %s: %w", name, r.Suite, err)
		}
		text, err := decompress(ctx, name, bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		found, err := scanSources(text, r.Package, r.Version)
		text.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", name, r.Suite, err)
		}
		return found, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("no Sources index of %s/%s answers on %s: %w", r.Suite, comp, mirror, lastErr)
	}
	return nil, nil
}

// getIndex downloads an index by hash when the archive offers that (no race
// with a mirror update between InRelease and the index), else by name, and
// verifies it against the Release.
func (r Request) getIndex(ctx context.Context, client *http.Client, mirror string, rel *release, name string, size int64, sha string) ([]byte, error) {
	base := mirror + "dists/" + r.Suite + "/"
	urls := []string{base + name}
	if rel.AcquireByHash {
		dir := name[:strings.LastIndex(name, "/")+1]
		urls = []string{base + dir + "by-hash/SHA256/" + sha, base + name}
	}
	var err error
	for _, url := range urls {
		var buf bytes.Buffer
		if err = copyVerified(ctx, client, url, &buf, size, sha); err == nil {
			return buf.Bytes(), nil
		}
		if !isNotFound(err) {
			return nil, err
		}
	}
	return nil, err
}

// fetchOrig brings the orig tarball into CacheDir/tarballs/<sha256> unless
// it is there already, and records what was verified.
func (r Request) fetchOrig(ctx context.Context, client *http.Client, mirror, poolPath, name string, size int64, sha string) (*Result, error) {
	url := mirror + poolPath
	dest := tarballPath(r.CacheDir, sha)
	if checkFile(dest, size, sha) != nil {
		// Keep the download's own error apart from the cache write's, so
		// a refused download reads as such and a full disk as a full disk.
		var downloadErr error
		err := fsutil.WriteAtomic(dest, 0o644, func(w io.Writer) error {
			downloadErr = copyVerified(ctx, client, url, w, size, sha)
			return downloadErr
		})
		if isNotFound(downloadErr) {
			return nil, kindErrorf(ErrPoolFileMissing, "the pool file %s is missing on this mirror %s (404), though the signed Sources index lists it; name another archive with mirror: in the recipe or use an upstream tarball source",
				poolPath, mirror)
		}
		if errors.Is(downloadErr, ErrHashMismatch) {
			return nil, fmt.Errorf("refused %s, nothing was cached: %w", name, downloadErr)
		}
		if downloadErr != nil {
			return nil, fmt.Errorf("fetch %s: %w", url, downloadErr)
		}
		if err != nil {
			return nil, fmt.Errorf("store %s in the cache: %w", name, err)
		}
	}
	rec := record{Package: r.Package, Version: r.Version, Suite: r.Suite, Name: name, SHA256: sha, Size: size,
		URL: url, Mirror: mirror, VerifiedAt: time.Now().UTC()}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(r.cachePath(".json"), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("record %s: %w", name, err)
	}
	return &Result{Path: dest, SHA256: sha, Size: size, Name: name, URL: url, Mirror: mirror}, nil
}
