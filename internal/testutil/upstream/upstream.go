// Package upstream builds a realistic CRIU upstream for tests: a bare git
// repository made from the real CRIU 4.1.1 and 4.2.1 release sources in the
// shared fixtures, with annotated release tags and pull-request heads under
// refs/pull/N/head, served from disk or over HTTP by git's own http-backend.
//
// The repository is built once per machine (it is deterministic: fixed
// authors and dates) and each test gets a private copy it may change.
package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// formatVersion changes whenever the layout below changes, so a stale
// machine-wide copy is never reused.
const formatVersion = "4"

// PR describes one pull request of the fixture.
type PR struct {
	Number  int
	Title   string
	BaseTag string   // the release the PR was opened against
	Base    string   // commit the PR branches from
	Head    string   // refs/pull/N/head
	Commits []string // oldest first
	Files   []string // paths the PR touches
}

// Fixture is a private copy of the fixture upstream.
type Fixture struct {
	// Dir is the bare repository (ends in criu.git).
	Dir string
	// Commits maps each release tag (v4.1.1, v4.2.1) to its commit.
	Commits map[string]string
	// TagObjects maps each release tag to its annotated tag object id,
	// which is not the commit id.
	TagObjects map[string]string
	// PRs:
	//  101: two real upstream changes taken from 4.1.1 -> 4.2.1, opened on
	//       v4.1.1; v4.2.1 already contains them.
	//  102: two commits opened on v4.2.1 that v4.2.1 does not contain.
	//  103: opened on v4.1.1; conflicts with v4.2.1 in Makefile.versions.
	PRs map[int]PR
}

// Release dates of the fixture tags (also the commit dates).
var releaseDates = map[string]string{
	"v4.1.1": "2025-07-29T12:00:00Z",
	"v4.2.1": "2026-07-20T12:00:00Z",
}

// New returns a private copy of the fixture upstream for t.
func New(t testing.TB) *Fixture {
	t.Helper()
	testutil.RequireTool(t, "git", "git")
	cached := buildOnce(t)
	dir := filepath.Join(t.TempDir(), "criu.git")
	testutil.Run(t, "", "cp", "-a", cached.Dir, dir)
	f := *cached
	f.Dir = dir
	return &f
}

// Serve serves the fixture over HTTP with git's smart http-backend on
// loopback and returns the clone URL (http://127.0.0.1:PORT/criu.git).
func (f *Fixture) Serve(t testing.TB) string {
	t.Helper()
	execPath := strings.TrimSpace(testutil.Run(t, "", "git", "--exec-path"))
	backend := filepath.Join(execPath, "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Skipf("git http-backend not found at %s: install the Debian package git", backend)
	}
	h := &cgi.Handler{
		Path: backend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(f.Dir),
			"GIT_HTTP_EXPORT_ALL=1",
		},
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(f.Dir)
}

// ForcePush rewrites the head of pull request n with one more commit, as a
// contributor's force-push would, and returns the new head.
func (f *Fixture) ForcePush(t testing.TB, n int) string {
	t.Helper()
	pr, ok := f.PRs[n]
	if !ok {
		t.Fatalf("fixture has no PR %d", n)
	}
	work := t.TempDir()
	git(t, work, nil, "init", "-q")
	git(t, work, nil, "fetch", "-q", f.Dir, fmt.Sprintf("refs/pull/%d/head", n))
	git(t, work, nil, "checkout", "-q", "FETCH_HEAD")
	path := filepath.Join(work, "FORCE-PUSHED")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("PR %d was force-pushed\n", n)), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, nil, "add", "FORCE-PUSHED")
	git(t, work, commitEnv("2026-08-01T12:00:00Z"), "commit", "-q", "-m", "Address review comments")
	head := strings.TrimSpace(git(t, work, nil, "rev-parse", "HEAD"))
	git(t, work, nil, "push", "-q", "-f", f.Dir, fmt.Sprintf("HEAD:refs/pull/%d/head", n))
	pr.Head = head
	pr.Commits = append(append([]string(nil), pr.Commits...), head)
	f.PRs = clonePRs(f.PRs)
	f.PRs[n] = pr
	return head
}

func clonePRs(in map[int]PR) map[int]PR {
	out := make(map[int]PR, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

var built *Fixture

// buildOnce builds the shared copy, or finds it from an earlier run.
func buildOnce(t testing.TB) *Fixture {
	t.Helper()
	if built != nil {
		return built
	}
	old, neu := testutil.CRIUTarball(t, "4.1.1"), testutil.CRIUTarball(t, "4.2.1")
	key := sha256.New()
	for _, p := range []string{old, neu} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		key.Write(data)
	}
	fmt.Fprint(key, formatVersion)
	root := filepath.Join(os.TempDir(), "criu-forge-fixture-"+hex.EncodeToString(key.Sum(nil))[:16])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lock, err := fsutil.Acquire(ctx, root+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	f, err := load(root)
	if err != nil {
		tmp := root + ".tmp"
		os.RemoveAll(tmp)
		build(t, tmp, old, neu)
		if err := fsutil.ReplaceDir(tmp, root); err != nil {
			t.Fatal(err)
		}
		if f, err = load(root); err != nil {
			t.Fatal(err)
		}
	}
	built = f
	return f
}

// load reads the fixture's facts back from the repository itself, so the
// machine-wide copy needs no side file that could go stale.
func load(root string) (*Fixture, error) {
	dir := filepath.Join(root, "criu.git")
	if _, err := os.Stat(filepath.Join(dir, "packed-refs")); err != nil {
		return nil, err
	}
	rev := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"--git-dir", dir}, args...)...)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	f := &Fixture{Dir: dir, Commits: map[string]string{}, TagObjects: map[string]string{}, PRs: map[int]PR{}}
	for tag := range releaseDates {
		c, err := rev("rev-parse", tag+"^{commit}")
		if err != nil {
			return nil, err
		}
		o, err := rev("rev-parse", tag)
		if err != nil {
			return nil, err
		}
		f.Commits[tag], f.TagObjects[tag] = c, o
	}
	for _, spec := range prSpecs {
		head, err := rev("rev-parse", fmt.Sprintf("refs/pull/%d/head", spec.number))
		if err != nil {
			return nil, err
		}
		list, err := rev("rev-list", "--reverse", f.Commits[spec.base]+".."+head)
		if err != nil {
			return nil, err
		}
		var files []string
		for _, c := range spec.commits {
			files = append(files, c.path)
		}
		f.PRs[spec.number] = PR{
			Number: spec.number, Title: spec.title, BaseTag: spec.base, Base: f.Commits[spec.base],
			Head: head, Commits: strings.Fields(list), Files: files,
		}
	}
	return f, nil
}

// prCommit is one commit of a fixture PR: the file it changes and how.
type prCommit struct {
	path    string
	subject string
	// from, when set, takes the file's content from that release's tree
	// (a real upstream change); otherwise edit rewrites it.
	from string
	edit func(old string) string
}

var prSpecs = []struct {
	number  int
	title   string
	base    string
	commits []prCommit
}{
	{101, "files: drop helper BUG_ON; docs: compel_prepare signature", "v4.1.1", []prCommit{
		{path: "criu/files.c", subject: "files: remove BUG_ON for TASK_HELPER in prepare_fds", from: "4.2.1"},
		{path: "Documentation/compel.txt", subject: "Documentation: compel_prepare takes handle_rseq", from: "4.2.1"},
	}},
	{102, "pidfd: document the helper process", "v4.2.1", []prCommit{
		{path: "criu/pidfd.c", subject: "pidfd: explain the temporary helper", edit: func(s string) string {
			return strings.Replace(s, "#undef LOG_PREFIX\n", "/*\n * Pidfds of dead processes are restored through a temporary helper\n * process that is created, opened and reaped during restore.\n */\n#undef LOG_PREFIX\n", 1)
		}},
		{path: "README.md", subject: "README: mention pidfd checkpoint/restore", edit: func(s string) string {
			return s + "\nPidfds (anon_inode:[pidfd]) are checkpointed and restored since CRIU 4.1.\n"
		}},
	}},
	{103, "versions: name the release", "v4.1.1", []prCommit{
		{path: "Makefile.versions", subject: "versions: rename release", edit: func(s string) string {
			return strings.Replace(s, "CRIU_VERSION_NAME	:= CRISCV", "CRIU_VERSION_NAME	:= CRISCV-FORGE", 1)
		}},
	}},
}

func build(t testing.TB, root, oldTarball, newTarball string) {
	t.Helper()
	work := filepath.Join(root, "work")
	trees := filepath.Join(root, "trees")
	for _, d := range []string{work, trees} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	extract := func(tarball, version string) string {
		dir := filepath.Join(trees, version)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		testutil.Run(t, dir, "tar", "-xJf", tarball, "--strip-components=1")
		return dir
	}
	oldTree, newTree := extract(oldTarball, "4.1.1"), extract(newTarball, "4.2.1")
	releaseTree := map[string]string{"4.1.1": oldTree, "4.2.1": newTree}

	git(t, work, nil, "init", "-q", "-b", "criu-dev")
	importTree := func(tree, tag string) {
		testutil.Run(t, "", "find", work, "-mindepth", "1", "-maxdepth", "1", "!", "-name", ".git", "-exec", "rm", "-rf", "{}", "+")
		testutil.Run(t, "", "cp", "-a", tree+"/.", work)
		// --force: CRIU's own .gitignore (*.so) would drop three of the
		// release's symbolic links, and the tree would no longer be the
		// tarball's.
		git(t, work, nil, "add", "-A", "--force")
		env := commitEnv(releaseDates[tag])
		git(t, work, env, "commit", "-q", "-m", "CRIU "+strings.TrimPrefix(tag, "v"))
		git(t, work, env, "tag", "-a", tag, "-m", "CRIU "+strings.TrimPrefix(tag, "v"))
	}
	importTree(oldTree, "v4.1.1")
	importTree(newTree, "v4.2.1")

	for i, spec := range prSpecs {
		git(t, work, nil, "checkout", "-q", "--detach", spec.base)
		for j, c := range spec.commits {
			target := filepath.Join(work, c.path)
			var data []byte
			var err error
			if c.from != "" {
				data, err = os.ReadFile(filepath.Join(releaseTree[c.from], c.path))
			} else {
				data, err = os.ReadFile(target)
				if err == nil {
					edited := c.edit(string(data))
					if edited == string(data) {
						t.Fatalf("fixture PR %d: edit of %s changed nothing", spec.number, c.path)
					}
					data = []byte(edited)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, data, 0o644); err != nil {
				t.Fatal(err)
			}
			git(t, work, nil, "add", c.path)
			date := fmt.Sprintf("2026-0%d-%02dT10:00:00Z", 2+i, 10+j)
			git(t, work, authorEnv(date, "Pat Contributor", "pat@example.org"), "commit", "-q", "-m",
				c.subject+"\n\nSigned-off-by: Pat Contributor <pat@example.org>")
		}
		git(t, work, nil, "update-ref", fmt.Sprintf("refs/pull/%d/head", spec.number), "HEAD")
	}
	git(t, work, nil, "checkout", "-q", "criu-dev")

	bare := filepath.Join(root, "criu.git")
	git(t, root, nil, "clone", "-q", "--bare", work, bare)
	// clone --bare does not copy refs/pull/*: push them explicitly.
	git(t, work, nil, "push", "-q", bare, "refs/pull/*:refs/pull/*")
	git(t, bare, nil, "config", "uploadpack.allowReachableSHA1InWant", "true")
	git(t, bare, nil, "config", "http.receivepack", "true")
	git(t, bare, nil, "gc", "-q")
	for _, d := range []string{work, trees} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
}

func commitEnv(date string) []string {
	return authorEnv(date, "CRIU Maintainers", "criu@example.org")
}

func authorEnv(date, name, email string) []string {
	return []string{
		"GIT_AUTHOR_NAME=" + name, "GIT_AUTHOR_EMAIL=" + email, "GIT_AUTHOR_DATE=" + date,
		"GIT_COMMITTER_NAME=CRIU Maintainers", "GIT_COMMITTER_EMAIL=criu@example.org", "GIT_COMMITTER_DATE=" + date,
	}
}

func git(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
