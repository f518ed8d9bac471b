package upstream

import (
	"os/exec"
	"strings"
	"testing"
)

func TestFixtureShape(t *testing.T) {
	f := New(t)
	if f.Commits["v4.1.1"] == f.TagObjects["v4.1.1"] {
		t.Fatal("v4.1.1 should be an annotated tag whose object id differs from its commit")
	}
	for n, want := range map[int]int{101: 2, 102: 2, 103: 1} {
		if got := len(f.PRs[n].Commits); got != want {
			t.Errorf("PR %d has %d commits, want %d", n, got, want)
		}
	}
	tree, err := exec.Command("git", "--git-dir", f.Dir, "ls-tree", "-r", "v4.2.1").Output()
	if err != nil {
		t.Fatal(err)
	}
	if links := strings.Count(string(tree), "120000 blob"); links != 199 {
		t.Errorf("v4.2.1 has %d symbolic links, the release tarball 199", links)
	}
	url := f.Serve(t)
	out, err := exec.Command("git", "ls-remote", url, "refs/pull/*").CombinedOutput()
	if err != nil {
		t.Fatalf("git ls-remote over http: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), f.PRs[102].Head) {
		t.Errorf("ls-remote over http does not list PR 102's head %s:\n%s", f.PRs[102].Head, out)
	}
	old := f.PRs[102].Head
	if head := f.ForcePush(t, 102); head == old {
		t.Error("force-push did not move the head")
	}
}
