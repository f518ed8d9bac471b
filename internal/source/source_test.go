package source

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// TestFetchAlternativesAllFail: every failure is in the error, each named
// by its alternative.
func TestFetchAlternativesAllFail(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone.git")
	alts := []Alternative{
		{Git: &GitSpec{URL: missing, Ref: "v4.2.1"}},
		{Tarball: &TarballSpec{URL: filepath.Join(t.TempDir(), "criu.tar.xz"), SHA256: strings.Repeat("0", 64)}},
		{},
		{Git: &GitSpec{URL: missing, Ref: "v4.2.1", Commit: "abc"}},
	}
	_, err := Fetch(context.Background(), alts, Options{CacheDir: t.TempDir()})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"no upstream source answered", "alternative 1 (git " + missing, "alternative 2 (tarball ", "criu.tar.xz", "alternative 3 (empty): an alternative must name exactly one", `expected commit "abc" is not a commit id`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestFetchGitFirst: when git answers, later alternatives are not touched,
// and Describe names ref and commit; a branch says it floats.
func TestFetchGitFirst(t *testing.T) {
	f := upstream.New(t)
	url := f.Serve(t)
	cache := t.TempDir()
	never := &TarballSpec{URL: "http://127.0.0.1:1/never.tar.xz", SHA256: strings.Repeat("1", 64)}
	tests := []struct {
		spec     GitSpec
		commit   string
		describe string
	}{
		{GitSpec{URL: url, Ref: "v4.2.1", Commit: f.Commits["v4.2.1"]}, f.Commits["v4.2.1"], "git " + url + " v4.2.1 (" + f.Commits["v4.2.1"] + ")"},
		{GitSpec{URL: url, Ref: "v4.1.1", Commit: f.Commits["v4.1.1"][:12]}, f.Commits["v4.1.1"], "git " + url + " v4.1.1 (" + f.Commits["v4.1.1"] + ")"},
		{GitSpec{URL: url, Ref: "criu-dev"}, f.Commits["v4.2.1"], "git " + url + " criu-dev (branch, floats: resolved now to " + f.Commits["v4.2.1"] + "; the lock pins it)"},
		{GitSpec{URL: url, Commit: f.PRs[102].Head}, f.PRs[102].Head, "git " + url + " " + f.PRs[102].Head},
		{GitSpec{URL: url, Ref: "refs/pull/101/head"}, f.PRs[101].Head, "floats"},
	}
	for _, tt := range tests {
		t.Run(tt.spec.Ref+tt.spec.Commit, func(t *testing.T) {
			spec := tt.spec
			base, err := Fetch(context.Background(), []Alternative{{Git: &spec}, {Tarball: never}}, Options{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			if base.Kind != "git" || base.Alternative != 0 || len(base.Tried) != 0 || base.Commit.String() != tt.commit {
				t.Errorf("got %s %d %v %s", base.Kind, base.Alternative, base.Tried, base.Commit)
			}
			if !strings.Contains(base.Describe, tt.describe) {
				t.Errorf("describe %q, want %q", base.Describe, tt.describe)
			}
			c, _ := base.Repo.CommitObject(base.Commit)
			if !base.Date.Equal(c.Committer.When) {
				t.Errorf("date %s, commit date %s", base.Date, c.Committer.When)
			}
		})
	}
}
