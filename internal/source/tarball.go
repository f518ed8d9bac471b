package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// maxTarballSize bounds a download; CRIU's tarballs are about 1 MB.
const maxTarballSize = 1 << 30

// importRefPrefix names each imported tarball's commit by the tarball's
// sha256, so a second import is a ref lookup.
const importRefPrefix = "refs/imports/"

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// The fixed identity of import commits: an import must give the same
// commit id on every machine.
const (
	importName  = "criu-forge"
	importEmail = "criu-forge@localhost"
)

// tarballPath is where the verified tarball with this sha256 is cached.
func tarballPath(cacheDir, sum string) string {
	return filepath.Join(cacheDir, "tarballs", sum)
}

// importsPath is the bare repository holding the import commits.
func importsPath(cacheDir string) string {
	return filepath.Join(cacheDir, "git", "imports.git")
}

// fetchTarball brings a release tarball in as a commit of imports.git.
func fetchTarball(ctx context.Context, spec TarballSpec, opts Options) (*Base, error) {
	sum := strings.ToLower(strings.TrimSpace(spec.SHA256))
	if !sha256Hex.MatchString(sum) {
		return nil, fmt.Errorf("tarball %s: sha256 %q is not 64 hex digits", redactURL(spec.URL), spec.SHA256)
	}
	name := tarballName(spec.URL)
	// Unlocked fast path; any doubt (a ref being written right now, a
	// damaged repository) is settled by importTarball under the lock.
	imp, err := lookupImport(opts.CacheDir, sum)
	if err != nil || imp == nil {
		file, err := cacheTarball(ctx, spec.URL, sum, opts)
		if err != nil {
			return nil, err
		}
		if imp, err = importTarball(ctx, opts.CacheDir, file, sum, name, redactURL(spec.URL), opts.Log); err != nil {
			return nil, err
		}
	}
	imp.Kind = "tarball"
	imp.SHA256 = sum
	imp.Describe = fmt.Sprintf("tarball %s sha256:%s (import %s)", redactURL(spec.URL), sum, imp.Commit)
	return imp, nil
}

// tarballName is the file name of a tarball URL or path.
func tarballName(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Path != "" {
		return path.Base(u.Path)
	}
	return filepath.Base(raw)
}

// cacheTarball returns the cached, verified tarball with this sha256,
// fetching it from http(s), file:// or a local path when missing. The file
// is written aside and renamed into place only once its sha256 matched.
func cacheTarball(ctx context.Context, src, sum string, opts Options) (string, error) {
	dst := tarballPath(opts.CacheDir, sum)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	local, isLocal := localPath(src)
	if opts.Offline && !isLocal {
		return "", fmt.Errorf("offline: tarball %s (sha256 %s) is not in the cache (%s): %s", redactURL(src), sum, dst, offlineHint)
	}
	lock, err := fsutil.Acquire(ctx, dst+".lock")
	if err != nil {
		return "", err
	}
	defer lock.Release()
	if _, err := os.Stat(dst); err == nil {
		return dst, nil // another process fetched it while we waited
	}
	var body io.ReadCloser
	if isLocal {
		body, err = os.Open(local)
	} else {
		body, err = httpGet(ctx, opts.HTTPClient, src)
	}
	if err != nil {
		return "", fmt.Errorf("tarball %s: %w", redactURL(src), err)
	}
	defer body.Close()
	fmt.Fprintf(opts.logger(), "source: fetching %s\n", redactURL(src))
	err = fsutil.WriteAtomic(dst, 0o444, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, maxTarballSize+1))
		if err != nil {
			return err
		}
		if n > maxTarballSize {
			return fmt.Errorf("larger than %d bytes: refused", maxTarballSize)
		}
		return checkSum(src, sum, h)
	})
	if err != nil {
		return "", fmt.Errorf("tarball %s: %w", redactURL(src), err)
	}
	return dst, nil
}

// ErrChecksum marks a tarball whose content is not what the recipe pins.
var ErrChecksum = errors.New("sha256 mismatch")

func checkSum(src, want string, h hash.Hash) error {
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return fmt.Errorf("%w: expected %s, got %s: refused, nothing kept (the file changed at %s, or the recipe's sha256 is wrong)", ErrChecksum, want, got, redactURL(src))
	}
	return nil
}

// localPath reports whether src is a file:// URL or a plain path.
func localPath(src string) (string, bool) {
	u, err := url.Parse(src)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 { // "C:" style or no scheme: a path
		return src, true
	}
	if u.Scheme == "file" {
		return u.Path, true
	}
	return "", false
}

func httpGet(ctx context.Context, client *http.Client, src string) (io.ReadCloser, error) {
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("unsupported URL scheme (want http, https, file or a path)")
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, scrub(err, src)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET: %s", resp.Status)
	}
	return resp.Body, nil
}

// lookupImport finds an earlier import of the tarball with this sha256.
func lookupImport(cacheDir, sum string) (*Base, error) {
	dir := importsPath(cacheDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w (remove it to import again)", dir, err)
	}
	ref, err := repo.Reference(plumbing.ReferenceName(importRefPrefix+sum), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s in %s: %w", importRefPrefix+sum, dir, err)
	}
	c, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, fmt.Errorf("import commit %s in %s: %w (remove %s to import again)", ref.Hash(), dir, err, dir)
	}
	return &Base{RepoPath: dir, Repo: repo, Commit: c.Hash, Date: c.Committer.When}, nil
}

// importTarball imports a cached tarball as one commit of imports.git,
// straight from the tar stream into a pack: nothing is extracted. The
// tarball's sha256 is checked again while it streams, so a cached file
// that changed on disk is refused too.
func importTarball(ctx context.Context, cacheDir, file, sum, name, srcURL string, log io.Writer) (*Base, error) {
	dir := importsPath(cacheDir)
	lock, err := fsutil.Acquire(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if b, err := lookupImport(cacheDir, sum); b != nil || err != nil {
		return b, err
	}
	store := memory.NewStorage()
	commit, date, err := importFile(ctx, store, file, sum, name, srcURL, log)
	if errors.Is(err, ErrChecksum) {
		// The cached file changed since it was verified: it is garbage.
		os.Remove(file)
	}
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", name, err)
	}
	repo, err := openOrInitBare(dir)
	if err != nil {
		return nil, err
	}
	if err := writePack(repo, store); err != nil {
		return nil, fmt.Errorf("import %s into %s: %w", name, dir, err)
	}
	if err := syncPacks(dir); err != nil {
		return nil, fmt.Errorf("import %s into %s: %w", name, dir, err)
	}
	// The ref comes last: its presence means the objects are all there.
	if err := repo.Storer.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(importRefPrefix+sum), commit)); err != nil {
		return nil, fmt.Errorf("import %s into %s: %w", name, dir, err)
	}
	return &Base{RepoPath: dir, Repo: repo, Commit: commit, Date: date}, nil
}

// importFile reads, verifies and imports one tarball into store and makes
// the deterministic import commit.
func importFile(ctx context.Context, store storer.EncodedObjectStorer, file, sum, name, srcURL string, log io.Writer) (plumbing.Hash, time.Time, error) {
	f, err := os.Open(file)
	if err != nil {
		return plumbing.ZeroHash, time.Time{}, err
	}
	defer f.Close()
	h := sha256.New()
	raw := io.TeeReader(f, h)
	tarStream, done, err := decompress(ctx, raw)
	if err != nil {
		return plumbing.ZeroHash, time.Time{}, err
	}
	tree, newest, err := importTarTree(tarStream, store, log)
	if derr := done(); err == nil {
		err = derr
	}
	// Hash the whole file even when the archive did not parse: a changed
	// file is the better explanation of a broken stream.
	if _, cerr := io.Copy(io.Discard, raw); cerr != nil && err == nil {
		err = cerr
	}
	if serr := checkSum(file, sum, h); serr != nil {
		return plumbing.ZeroHash, time.Time{}, fmt.Errorf("cached file %s: %w; it was removed, run again to fetch it anew", file, serr)
	}
	if err != nil {
		return plumbing.ZeroHash, time.Time{}, err
	}
	commit, err := importCommit(store, tree, newest, name, sum, srcURL)
	return commit, newest.UTC(), err
}

// importCommit writes the import commit: fixed identity, the archive's
// newest mtime as date, and a message naming the tarball.
func importCommit(store storer.EncodedObjectStorer, tree plumbing.Hash, date time.Time, name, sum, srcURL string) (plumbing.Hash, error) {
	sig := object.Signature{Name: importName, Email: importEmail, When: date.UTC()}
	c := &object.Commit{
		Author:    sig,
		Committer: sig,
		Message:   fmt.Sprintf("Import %s\n\nsha256: %s\nurl: %s\n", name, sum, srcURL),
		TreeHash:  tree,
	}
	obj := store.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return store.SetEncodedObject(obj)
}

// writePack writes every object of store into repo as one pack (written
// aside and renamed by go-git once its index is built).
func writePack(repo *git.Repository, store *memory.Storage) error {
	pw, ok := repo.Storer.(storer.PackfileWriter)
	if !ok {
		return errors.New("repository cannot take packs")
	}
	var hashes []plumbing.Hash
	for h := range store.Objects {
		hashes = append(hashes, h)
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return err
	}
	if _, err := packfile.NewEncoder(w, store, false).Encode(hashes, 0); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// openOrInitBare opens a bare repository, creating it aside and renaming
// it into place the first time.
func openOrInitBare(dir string) (*git.Repository, error) {
	if _, err := os.Stat(dir); err == nil {
		return git.PlainOpen(dir)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, err
	}
	if _, err := git.PlainInit(tmp, true); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	return git.PlainOpen(dir)
}
