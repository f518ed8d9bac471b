package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// offlineHint ends every error about something the cache does not hold.
const offlineHint = "run without --offline where the upstream answers"

// The refspecs of a mirror: every branch and tag, forced, because the mirror
// follows upstream; pinned commits stay safe through the lock and through
// refs/criu-forge/moved (see keepMovedTags).
var mirrorRefSpecs = []config.RefSpec{
	"+refs/heads/*:refs/heads/*",
	"+refs/tags/*:refs/tags/*",
}

// movedRefPrefix keeps the old target of a tag that moved or vanished
// upstream, so a commit a lock file pins stays in the mirror.
const movedRefPrefix = "refs/criu-forge/moved/"

// commitRefPrefix keeps commits fetched by id reachable.
const commitRefPrefix = "refs/criu-forge/commits/"

// Mirror is a bare git mirror of one upstream repository in the cache.
// Every network use and every change of its refs happens under
// <path>.lock; a clone is made in a temporary folder and renamed into
// place, so the path exists only once the clone is complete.
type Mirror struct {
	url     string // as given; may carry credentials, so never printed
	path    string
	offline bool
	repo    *git.Repository
	log     io.Writer
}

// OpenMirror returns the mirror of url under cacheDir/git. The repository
// is opened when it exists; otherwise the first Update clones it. Offline,
// a missing mirror is an error that names the URL and the path.
func OpenMirror(cacheDir, url string, offline bool) (*Mirror, error) {
	if cacheDir == "" {
		return nil, errors.New("open mirror: no cache directory given")
	}
	if url == "" {
		return nil, errors.New("open mirror: no upstream URL given")
	}
	m := &Mirror{url: url, path: MirrorPath(cacheDir, url), offline: offline, log: io.Discard}
	if err := m.open(); err != nil {
		return nil, err
	}
	if m.repo == nil && offline {
		return nil, fmt.Errorf("offline: no mirror of %s in the cache (%s): %s", redactURL(url), m.path, offlineHint)
	}
	return m, nil
}

// MirrorPath is where the mirror of url lives: git/<sha256(url)[:16]>-<name>.git.
// Credentials in the URL do not change the path.
func MirrorPath(cacheDir, url string) string {
	clean := redactURL(url)
	sum := sha256.Sum256([]byte(clean))
	return filepath.Join(cacheDir, "git", hex.EncodeToString(sum[:])[:16]+"-"+repoName(clean)+".git")
}

var unsafeNameChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// repoName is a readable name for a mirror folder: the URL's last element
// without .git, reduced to safe characters.
func repoName(u string) string {
	base := path.Base(strings.TrimRight(strings.ReplaceAll(u, "\\", "/"), "/"))
	base = strings.TrimSuffix(base, ".git")
	base = strings.Trim(unsafeNameChars.ReplaceAllString(base, "_"), "._")
	if base == "" {
		return "repo"
	}
	return base
}

// redactURL drops user information (tokens) from a URL for messages and
// for the remote recorded on disk.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// SetLog sets where the mirror reports what it does (moved tags, fetches).
func (m *Mirror) SetLog(w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	m.log = w
}

// Repo is the opened repository, nil before the first Update clones it.
func (m *Mirror) Repo() *git.Repository { return m.repo }

// Path is the bare repository's folder.
func (m *Mirror) Path() string { return m.path }

func (m *Mirror) open() error {
	if m.repo != nil {
		return nil
	}
	if _, err := os.Stat(m.path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	repo, err := git.PlainOpen(m.path)
	if err != nil {
		return fmt.Errorf("open mirror %s: %w (remove it to clone again)", m.path, err)
	}
	m.repo = repo
	return nil
}

// locked runs fn under the mirror's lock.
func (m *Mirror) locked(ctx context.Context, fn func() error) error {
	lock, err := fsutil.Acquire(ctx, m.path+".lock")
	if err != nil {
		return err
	}
	defer lock.Release()
	return fn()
}

// Update brings the mirror up to date: the first call clones, later calls
// fetch only new objects of refs/heads/* and refs/tags/*. A tag that moved
// or vanished upstream is reported and its old target kept under
// refs/criu-forge/moved/. Offline, Update uses the mirror as it is.
func (m *Mirror) Update(ctx context.Context) error {
	if m.offline {
		if err := m.open(); err != nil {
			return err
		}
		if m.repo == nil {
			return fmt.Errorf("offline: no mirror of %s in the cache (%s): %s", redactURL(m.url), m.path, offlineHint)
		}
		return nil
	}
	return m.locked(ctx, func() error {
		m.repo = nil
		if err := m.open(); err != nil {
			return err
		}
		if m.repo == nil {
			return m.clone(ctx)
		}
		return m.fetchAll(ctx)
	})
}

// clone fetches everything into a temporary bare repository beside the
// final path and renames it into place. Called under the lock, so any
// temporary folder left by a killed clone is stale and removed first.
func (m *Mirror) clone(ctx context.Context) error {
	dir, base := filepath.Split(m.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("clone %s: %w", redactURL(m.url), err)
	}
	stale, _ := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*"))
	for _, s := range stale {
		os.RemoveAll(s)
	}
	tmp, err := os.MkdirTemp(dir, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("clone %s: %w", redactURL(m.url), err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	fmt.Fprintf(m.log, "source: cloning %s into %s\n", redactURL(m.url), m.path)
	repo, err := git.PlainInit(tmp, true)
	if err != nil {
		return fmt.Errorf("clone %s: %w", redactURL(m.url), err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{redactURL(m.url)}, Fetch: mirrorRefSpecs}); err != nil {
		return fmt.Errorf("clone %s: %w", redactURL(m.url), err)
	}
	if err := m.fetch(ctx, repo, mirrorRefSpecs, false); err != nil {
		return err
	}
	if err := syncPacks(tmp); err != nil {
		return fmt.Errorf("clone %s: %w", redactURL(m.url), err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		return fmt.Errorf("clone %s: %w", redactURL(m.url), err)
	}
	ok = true
	if err := fsutil.SyncDir(dir); err != nil {
		return err
	}
	m.repo = nil
	return m.open()
}

// syncPacks fsyncs the pack files of a repository and their folder: the
// data must be on disk before a rename or a ref announces it (go-git does
// not sync what it writes).
func syncPacks(repoDir string) error {
	dir := filepath.Join(repoDir, "objects", "pack")
	names, err := filepath.Glob(filepath.Join(dir, "pack-*"))
	if err != nil {
		return err
	}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", name, err)
		}
	}
	return fsutil.SyncDir(dir)
}

// fetchAll fetches new branches and tags into an existing mirror.
func (m *Mirror) fetchAll(ctx context.Context) error {
	before, err := m.refs("refs/tags/")
	if err != nil {
		return err
	}
	if err := m.fetch(ctx, m.repo, mirrorRefSpecs, true); err != nil {
		return err
	}
	after, err := m.refs("refs/tags/")
	if err != nil {
		return err
	}
	return m.keepMovedTags(before, after)
}

// fetch runs one go-git fetch from the upstream URL.
func (m *Mirror) fetch(ctx context.Context, repo *git.Repository, specs []config.RefSpec, prune bool) error {
	err := repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RemoteURL:  m.url,
		RefSpecs:   specs,
		Tags:       git.NoTags,
		Prune:      prune,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetch from %s into %s: %w", redactURL(m.url), m.path, scrub(err, m.url))
	}
	return nil
}

// scrub removes the credential-bearing URL from an error message.
func scrub(err error, raw string) error {
	if redactURL(raw) == raw || !strings.Contains(err.Error(), raw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, redactURL(raw)))
}

func (m *Mirror) refs(prefix string) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	out := map[plumbing.ReferenceName]plumbing.Hash{}
	iter, err := m.repo.References()
	if err != nil {
		return nil, fmt.Errorf("list refs of %s: %w", m.path, err)
	}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && strings.HasPrefix(r.Name().String(), prefix) {
			out[r.Name()] = r.Hash()
		}
		return nil
	})
	return out, err
}

// keepMovedTags reports tags that upstream moved or deleted and keeps each
// old target under refs/criu-forge/moved/<tag>/<old id>: a release tag
// should never move, and a lock that pinned the old commit must still find it.
func (m *Mirror) keepMovedTags(before, after map[plumbing.ReferenceName]plumbing.Hash) error {
	var names []plumbing.ReferenceName
	for name := range before {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	for _, name := range names {
		old := before[name]
		now, ok := after[name]
		if ok && now == old {
			continue
		}
		tag := strings.TrimPrefix(name.String(), "refs/tags/")
		keep := plumbing.ReferenceName(movedRefPrefix + tag + "/" + old.String())
		if err := m.repo.Storer.SetReference(plumbing.NewHashReference(keep, old)); err != nil {
			return fmt.Errorf("keep old target of tag %s: %w", tag, err)
		}
		if ok {
			fmt.Fprintf(m.log, "source: warning: tag %s moved upstream from %s to %s; the old target stays in the mirror as %s\n", tag, old, now, keep)
		} else {
			fmt.Fprintf(m.log, "source: warning: tag %s was deleted upstream; its old target %s stays in the mirror as %s\n", tag, old, keep)
		}
	}
	return nil
}

// FetchPulls fetches refs/pull/N/head of each pull request into the same
// name in the mirror (cloning it first if needed) and returns the heads.
// Offline it answers from the mirror and names the heads it lacks.
func (m *Mirror) FetchPulls(ctx context.Context, prs ...int) (map[int]plumbing.Hash, error) {
	if !m.offline {
		if m.repo == nil {
			if err := m.Update(ctx); err != nil {
				return nil, err
			}
		}
		specs := make([]config.RefSpec, 0, len(prs))
		for _, n := range prs {
			if n <= 0 {
				return nil, fmt.Errorf("fetch pull request %d: not a pull request number", n)
			}
			specs = append(specs, config.RefSpec(fmt.Sprintf("+%s:%s", pullRef(n), pullRef(n))))
		}
		if len(specs) > 0 {
			err := m.locked(ctx, func() error { return m.fetch(ctx, m.repo, specs, false) })
			var noMatch git.NoMatchingRefSpecError
			if errors.As(err, &noMatch) {
				return nil, fmt.Errorf("fetch pull requests %v from %s: upstream has no %s (check the PR number): %w", prs, redactURL(m.url), noMatch.Error(), err)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if m.repo == nil {
		return nil, fmt.Errorf("offline: no mirror of %s in the cache (%s): %s", redactURL(m.url), m.path, offlineHint)
	}
	heads := make(map[int]plumbing.Hash, len(prs))
	var missing []string
	for _, n := range prs {
		ref, err := m.repo.Reference(plumbing.ReferenceName(pullRef(n)), true)
		if err != nil {
			missing = append(missing, pullRef(n))
			continue
		}
		heads[n] = ref.Hash()
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("offline: the mirror %s of %s lacks %s: %s", m.path, redactURL(m.url), strings.Join(missing, ", "), offlineHint)
	}
	return heads, nil
}

func pullRef(n int) string { return "refs/pull/" + strconv.Itoa(n) + "/head" }

var fullHash = regexp.MustCompile(`^[0-9a-f]{40}$`)
var shortHash = regexp.MustCompile(`^[0-9a-f]{4,39}$`)

// EnsureCommits makes sure each commit id is in the mirror, fetching the
// missing ones by id (the server must allow reachable SHA-1s in wants, as
// GitHub does). Abbreviated ids can only be checked, not fetched.
func (m *Mirror) EnsureCommits(ctx context.Context, ids ...string) error {
	if m.repo == nil && !m.offline {
		if err := m.Update(ctx); err != nil {
			return err
		}
	}
	if m.repo == nil {
		return fmt.Errorf("offline: no mirror of %s in the cache (%s): %s", redactURL(m.url), m.path, offlineHint)
	}
	var missing []string
	for _, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		if _, err := m.resolveHash(id); err == nil {
			continue
		}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return nil
	}
	if m.offline {
		return fmt.Errorf("offline: the mirror %s of %s lacks commits %s: %s", m.path, redactURL(m.url), strings.Join(missing, ", "), offlineHint)
	}
	var specs []config.RefSpec
	for _, id := range missing {
		if !fullHash.MatchString(id) {
			return fmt.Errorf("commit %s is not in the mirror %s and an abbreviated id cannot be fetched: give the full 40-character id", id, m.path)
		}
		specs = append(specs, config.RefSpec(id+":"+commitRefPrefix+id))
	}
	err := m.locked(ctx, func() error { return m.fetch(ctx, m.repo, specs, false) })
	if errors.Is(err, git.ErrExactSHA1NotSupported) {
		return fmt.Errorf("fetch commits %s by id: %s does not allow fetching commits by id (uploadpack.allowReachableSHA1InWant): name a branch, tag or pull request that holds them: %w", strings.Join(missing, ", "), redactURL(m.url), err)
	}
	if err != nil && strings.Contains(err.Error(), "not our ref") {
		return fmt.Errorf("fetch commits %s by id: upstream does not have them (force-pushed away, or a wrong id): %w", strings.Join(missing, ", "), err)
	}
	if err != nil {
		return fmt.Errorf("fetch commits %s by id: %w", strings.Join(missing, ", "), err)
	}
	for _, id := range missing {
		if _, err := m.resolveHash(id); err != nil {
			return fmt.Errorf("upstream %s: %w", redactURL(m.url), err)
		}
	}
	return nil
}

// refKind says what a recipe's ref named; a branch floats.
type refKind string

const (
	kindTag    refKind = "tag"
	kindBranch refKind = "branch"
	kindCommit refKind = "commit"
	kindRef    refKind = "ref"
)

// Resolve turns a ref into a commit: a full ref name (refs/pull/N/head,
// refs/tags/v1), a tag (annotated tags are peeled: a tag object id is not
// a commit), a branch, or a full or abbreviated commit id.
func (m *Mirror) Resolve(ref string) (plumbing.Hash, error) {
	h, _, err := m.resolve(ref)
	return h, err
}

func (m *Mirror) resolve(ref string) (plumbing.Hash, refKind, error) {
	if m.repo == nil {
		return plumbing.ZeroHash, "", fmt.Errorf("resolve %s: no mirror of %s at %s yet", ref, redactURL(m.url), m.path)
	}
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return plumbing.ZeroHash, "", errors.New("resolve: empty ref")
	}
	if fullHash.MatchString(strings.ToLower(ref)) {
		h, err := m.resolveHash(ref)
		return h, kindCommit, err
	}
	candidates := []struct {
		name string
		kind refKind
	}{{ref, kindRef}, {"refs/tags/" + ref, kindTag}, {"refs/heads/" + ref, kindBranch}}
	if strings.HasPrefix(ref, "refs/") {
		candidates = candidates[:1]
		if strings.HasPrefix(ref, "refs/tags/") {
			candidates[0].kind = kindTag
		} else if strings.HasPrefix(ref, "refs/heads/") {
			candidates[0].kind = kindBranch
		}
	} else {
		candidates = candidates[1:]
	}
	for _, c := range candidates {
		r, err := m.repo.Reference(plumbing.ReferenceName(c.name), true)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			continue
		}
		if err != nil {
			return plumbing.ZeroHash, "", fmt.Errorf("resolve %s in %s: %w", ref, m.path, err)
		}
		h, err := m.peel(r.Hash(), c.name)
		return h, c.kind, err
	}
	if shortHash.MatchString(strings.ToLower(ref)) {
		h, err := m.resolveHash(ref)
		return h, kindCommit, err
	}
	return plumbing.ZeroHash, "", fmt.Errorf("ref %s not found in the mirror %s of %s (no such tag, branch or commit: check the recipe's ref)", ref, m.path, redactURL(m.url))
}

// resolveHash finds a commit by full or abbreviated id, peeling tag objects.
func (m *Mirror) resolveHash(id string) (plumbing.Hash, error) {
	id = strings.ToLower(id)
	if fullHash.MatchString(id) {
		return m.peel(plumbing.NewHash(id), id)
	}
	if !shortHash.MatchString(id) {
		return plumbing.ZeroHash, fmt.Errorf("%q is not a commit id", id)
	}
	prefixer, ok := m.repo.Storer.(interface {
		HashesWithPrefix([]byte) ([]plumbing.Hash, error)
	})
	if !ok {
		return plumbing.ZeroHash, fmt.Errorf("abbreviated id %s: this repository cannot look up prefixes", id)
	}
	even := id[:len(id)/2*2]
	raw, _ := hex.DecodeString(even)
	hashes, err := prefixer.HashesWithPrefix(raw)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("abbreviated id %s: %w", id, err)
	}
	var found []plumbing.Hash
	for _, h := range hashes {
		if strings.HasPrefix(h.String(), id) {
			found = append(found, h)
		}
	}
	switch len(found) {
	case 0:
		return plumbing.ZeroHash, fmt.Errorf("commit %s not found in the mirror %s", id, m.path)
	case 1:
		return m.peel(found[0], id)
	default:
		return plumbing.ZeroHash, fmt.Errorf("abbreviated id %s is ambiguous in %s (%d objects): give more characters", id, m.path, len(found))
	}
}

// peel follows annotated tags to the commit they name.
func (m *Mirror) peel(h plumbing.Hash, name string) (plumbing.Hash, error) {
	for range 16 {
		obj, err := m.repo.Storer.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s: object %s not in the mirror %s: %w", name, h, m.path, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			tag, err := object.DecodeTag(m.repo.Storer, obj)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("%s: read tag %s: %w", name, h, err)
			}
			h = tag.Target
		default:
			return plumbing.ZeroHash, fmt.Errorf("%s names a %s (%s), not a commit", name, obj.Type(), h)
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("%s: too many nested tags", name)
}
