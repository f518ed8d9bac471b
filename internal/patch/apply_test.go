package patch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

var testCommitter = Signature{Name: "Forge Test", Email: "forge@example.org"}

func TestApplyFixturePRs(t *testing.T) {
	f, repo := fixture(t)
	tests := []struct {
		name     string
		pr       int
		base     string
		strict   bool
		want     []Status
		sameAs   string // the applied files must equal this release's blobs
		conflict *ConflictError
		contErr  bool
	}{
		{name: "backport applies on 4.1.1", pr: 101, base: "v4.1.1", want: []Status{Applied, Applied}, sameAs: "v4.2.1"},
		{name: "merged PR is contained in 4.2.1", pr: 101, base: "v4.2.1", want: []Status{Contained, Contained}},
		{name: "strict refuses a contained PR", pr: 101, base: "v4.2.1", strict: true, contErr: true},
		{name: "open PR applies on 4.2.1", pr: 102, base: "v4.2.1", want: []Status{Applied, Applied}},
		{name: "PR conflicts with 4.2.1", pr: 103, base: "v4.2.1",
			conflict: &ConflictError{Index: 0, File: "Makefile.versions", Hunk: "@@ -4,7 +4,7 @@", Line: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := f.PRs[tt.pr]
			patches := commitPatches(t, repo, pr.Commits)
			base := plumbing.NewHash(f.Commits[tt.base])
			head, outcomes, err := Apply(context.Background(), repo, base, patches, Options{Strict: tt.strict, Committer: testCommitter})
			switch {
			case tt.conflict != nil:
				var ce *ConflictError
				if !errors.As(err, &ce) {
					t.Fatalf("want a conflict, got %v", err)
				}
				if ce.Index != tt.conflict.Index || ce.File != tt.conflict.File || ce.Hunk != tt.conflict.Hunk || ce.Line != tt.conflict.Line {
					t.Errorf("conflict = %+v, want index %d file %s hunk %s line %d", ce, tt.conflict.Index, tt.conflict.File, tt.conflict.Hunk, tt.conflict.Line)
				}
				for _, want := range []string{"patch 1/1", tt.conflict.File, tt.conflict.Hunk, "re-sync the series, drop the entry, or rebase it"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				t.Log(err)
				return
			case tt.contErr:
				var ce *ContainedError
				if !errors.As(err, &ce) {
					t.Fatalf("want a ContainedError, got %v", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			var got []Status
			applied := 0
			for _, o := range outcomes {
				got = append(got, o.Status)
				if o.Status == Applied {
					applied++
					if o.Commit.IsZero() {
						t.Error("applied patch without a commit")
					}
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("statuses %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("statuses %v, want %v", got, tt.want)
				}
			}
			if applied == 0 && head != base {
				t.Errorf("nothing applied but head moved to %s", head)
			}
			if tt.sameAs != "" {
				for _, path := range pr.Files {
					if got, want := blobAt(t, repo, head, path), blobAt(t, repo, plumbing.NewHash(f.Commits[tt.sameAs]), path); got != want {
						t.Errorf("%s after apply is %s, %s has %s", path, got, tt.sameAs, want)
					}
				}
			}
			// Same base and patches: same commit ids.
			again, _, err := Apply(context.Background(), repo, base, patches, Options{Committer: testCommitter})
			if err != nil || again != head {
				t.Errorf("second apply gave %s (%v), first %s", again, err, head)
			}
		})
	}
	_ = time.Now
}

// TestConflictMessage pins the message a user sees.
func TestConflictMessage(t *testing.T) {
	f, repo := fixture(t)
	ps := commitPatches(t, repo, append(append([]string(nil), f.PRs[102].Commits...), f.PRs[103].Commits...))
	ps[2].Origin = "https://github.com/checkpoint-restore/criu/pull/103 (commit " + f.PRs[103].Commits[0][:12] + ")"
	_, _, err := Apply(context.Background(), repo, plumbing.NewHash(f.Commits["v4.2.1"]), ps, Options{})
	want := "patch 3/3 (https://github.com/checkpoint-restore/criu/pull/103 (commit " + f.PRs[103].Commits[0][:12] + ")): Makefile.versions: " +
		"hunk @@ -4,7 +4,7 @@ does not apply at line 4: line 4 is \"CRIU_VERSION_MINOR\\t:= 2\", the patch expects \"CRIU_VERSION_MINOR\\t:= 1\" " +
		"(and the hunk matches nowhere else); re-sync the series, drop the entry, or rebase it onto the new base"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}
