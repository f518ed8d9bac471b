// Package e2e holds the end-to-end test of the whole product: the real
// CRIU source through sync, a build in bubblewrap, a .deb, a signed apt
// repository served on loopback, a real apt-get install, and the pidfd
// checkpoint/restore round trip with the installed criu beside Debian's own.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/criu-forge/criu-forge/internal/doctor"
	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/repo"
	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/signing"
	"github.com/criu-forge/criu-forge/internal/testutil"
	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
	"github.com/criu-forge/criu-forge/internal/verify"
)

// The recipe: CRIU 4.1.1 (the first line with pidfd C/R, real release
// source) plus pull request 101 of the fixture, two real upstream commits
// taken from 4.2.1, one of them in criu/files.c, the fd restore path the
// round trip exercises. A 4.2.1 base would need a synthetic patch: 4.2.1
// already contains every real change the fixture has.
const recipeTemplate = `name: criu-e2e
upstream:
  version: 4.1.1
  github: checkpoint-restore/criu
  sources:
    - git: {url: "%s", ref: v4.1.1}
series:
  - pr: 101
build:
  deps: {deb: [%s]}
  make-vars: {WERROR: "0", PYTHON: python3}
package:
  name: criu
  mode: replace
  split: single
  maintainer: criu-forge e2e <e2e@criu-forge.invalid>
  summary: checkpoint/restore in userspace, with pidfd support
  description: CRIU 4.1.1 with a real upstream fix, built by the end-to-end test.
targets:
  - {distro: debian, release: "12", arch: amd64}
`

func TestPidfdCheckpointWithPublishedPackage(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	for _, tool := range [][2]string{{"bwrap", "bubblewrap"}, {"mmdebstrap", "mmdebstrap"}, {"dpkg-deb", "dpkg"}, {"gcc", "gcc"}, {"git", "git"}, {"mount", "mount"}} {
		testutil.RequireTool(t, tool[0], tool[1])
	}
	ctx := context.Background()
	cache := testutil.TestCacheDir(t)

	var deb string
	work := t.TempDir() // outlives the subtests: the .deb is used by all
	t.Run("build", func(t *testing.T) {
		fx := upstream.New(t)
		url := fx.Serve(t)
		gh := fakegithub.New(t)
		pr := fx.PRs[101]
		var commits []fakegithub.Commit
		for _, c := range pr.Commits {
			commits = append(commits, fakegithub.Commit{SHA: c, Message: "fixture commit"})
		}
		gh.AddPR("checkpoint-restore", "criu", fakegithub.PR{Number: 101, Title: pr.Title, State: "open", HeadSHA: pr.Head, BaseRef: "criu-dev", BaseSHA: pr.Base, Commits: commits})
		client, err := ghapi.New(ghapi.Options{BaseURL: gh.URL(), Retries: -1})
		if err != nil {
			t.Fatal(err)
		}

		root := work
		if err := os.MkdirAll(filepath.Join(root, "recipes"), 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(root, "recipes", "criu-e2e.yaml")
		// The same build deps as every heavy test, so the cached builder serves.
		body := fmt.Sprintf(recipeTemplate, url, strings.Join(testutil.CRIUDebianDeps, ", "))
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		r, _, err := recipe.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		sopts := series.Options{CacheDir: cache, GitHub: client, Log: logWriter{t}}
		if _, err := series.Sync(ctx, r, sopts); err != nil {
			t.Fatalf("sync: %v", err)
		}
		res, err := pipeline.Build(ctx, r, pipeline.Options{Series: sopts, OutDir: filepath.Join(root, "out"), Runner: "bubblewrap", Progress: logWriter{t}})
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		if res.Source.Applied != 2 {
			t.Errorf("%d patches applied, want PR 101's two commits", res.Source.Applied)
		}
		tr := res.Targets[0]
		if tr.Err != nil {
			t.Fatalf("debian-12: %v", tr.Err)
		}
		for _, a := range tr.Package.Artifacts {
			if a.Format == "deb" && a.Name == "criu" {
				deb = a.Path
			}
		}
		if deb == "" {
			t.Fatalf("no criu .deb among %+v", tr.Package.Artifacts)
		}
		t.Logf("built %s", deb)
	})
	if deb == "" {
		t.FailNow()
	}

	// The install root: the cached bookworm builder (it has criu's runtime
	// libraries) under a private overlay, so the cache stays untouched and
	// apt needs nothing but our repository. Mounted here: it outlives the
	// subtests.
	builder := testutil.BookwormBuilder(t, &sandbox.Bubblewrap{}, testutil.CRIUDebianDeps...)
	root := overlay(t, builder.Root)
	installed := ""
	t.Run("publish and apt-get install", func(t *testing.T) {
		key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{})
		keyPath := filepath.Join(t.TempDir(), "key.asc")
		if err := os.WriteFile(keyPath, key.ArmoredPrivate, 0o600); err != nil {
			t.Fatal(err)
		}
		signer, err := signing.Load(signing.KeyOptions{Path: keyPath})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, err := repo.Publish(ctx, repo.PublishOptions{Dir: dir, Packages: []repo.Input{{Path: deb}}, Signer: signer}); err != nil {
			t.Fatalf("publish: %v", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- repo.ServeListener(sctx, dir, ln, nil) }()
		defer func() { stop(); <-served }()

		keyring := "/etc/apt/keyrings/" + repo.KeyringName
		pub, err := os.ReadFile(filepath.Join(dir, repo.KeyringName))
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(root, keyring), pub)
		os.Remove(filepath.Join(root, "etc/apt/sources.list"))
		os.RemoveAll(filepath.Join(root, "etc/apt/sources.list.d"))
		mustWrite(t, filepath.Join(root, "etc/apt/sources.list.d/criu-forge.list"),
			[]byte(fmt.Sprintf("deb [signed-by=%s] http://%s bookworm main\n", keyring, ln.Addr())))
		for _, args := range [][]string{{"apt-get", "update"}, {"apt-get", "install", "-y", "--no-install-recommends", "criu"}} {
			out, err := testutil.InAptRoot(root, args...)
			if err != nil || strings.Contains(out, "W: ") || strings.Contains(out, "E: ") {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		out, err := testutil.InAptRoot(root, "dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}", "criu")
		if err != nil || !strings.Contains(out, "+forge") || !strings.Contains(out, "install ok installed") {
			t.Fatalf("dpkg-query: %v\n%s", err, out)
		}
		t.Logf("installed from the signed repository: %s", out)
		installed = root
	})
	if installed == "" {
		t.FailNow()
	}

	reports := map[string]*verify.Report{}
	roundTrip := func(t *testing.T, label string, c verify.CRIU) *verify.Report {
		rep, err := verify.Run(ctx, verify.Options{CRIU: c, WorkDir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		var buf bytes.Buffer
		rep.Print(&buf)
		t.Logf("%s:\n%s", label, buf.String())
		reports[label] = rep
		return rep
	}
	t.Run("pidfd round trip with the installed package", func(t *testing.T) {
		c, err := verify.InRoot(ctx, installed)
		if err != nil {
			t.Fatal(err)
		}
		rep := roundTrip(t, "criu-forge", c)
		if rep.Failed() != 0 || !strings.HasPrefix(rep.Version, "4.1.1") {
			t.Fatalf("criu %s from the package: %d checks failed", rep.Version, rep.Failed())
		}
	})
	t.Run("the same with the package unpacked (criu-forge verify PACKAGE)", func(t *testing.T) {
		c, err := verify.Unpack(ctx, t.TempDir(), deb)
		if err != nil {
			t.Fatal(err)
		}
		if rep := roundTrip(t, "unpacked .deb", c); rep.Failed() != 0 {
			t.Fatalf("%d checks failed", rep.Failed())
		}
	})
	t.Run("Debian's own criu on the same workload", func(t *testing.T) {
		path := testutil.RequireTool(t, "criu", "criu")
		c := verify.CRIU{Path: path}
		if v, err := c.Version(ctx); err != nil || verify.AtLeast(v, verify.PidfdSince) {
			t.Skipf("criu on PATH is %q (%v), not Debian 12's 3.17.1 (apt-get install criu)", v, err)
		}
		rep := roundTrip(t, "debian", c)
		if rep.Failed() == 0 {
			t.Fatal("Debian's criu passed the pidfd round trip: this test proves nothing")
		}
		if !strings.Contains(rep.Advice, "cannot checkpoint pidfds") {
			t.Errorf("advice does not say why: %s", rep.Advice)
		}
	})
	t.Run("doctor on a pidfd holder, with each criu", func(t *testing.T) {
		forge, err := verify.InRoot(ctx, installed)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		bin, err := verify.BuildWorkload(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		w, _, err := verify.StartWorkload(ctx, bin, filepath.Join(dir, "ctl"), "live", "dead")
		if err != nil {
			t.Fatal(err)
		}
		defer w.Kill()
		crius := map[string]verify.CRIU{"criu-forge": forge}
		if path, err := exec.LookPath("criu"); err == nil {
			if v, err := (verify.CRIU{Path: path}).Version(ctx); err == nil && !verify.AtLeast(v, verify.PidfdSince) {
				crius["debian"] = verify.CRIU{Path: path}
			}
		}
		for label, c := range crius {
			st := doctor.Probe(ctx, c)
			rep, err := doctor.Inspect(ctx, doctor.Options{Pid: w.Pid, CRIU: &st})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			rep.Print(&buf)
			t.Logf("doctor with %s's criu:\n%s", label, buf.String())
			wantDump := label == "criu-forge"
			if rep.CanDump != wantDump || len(rep.Findings) != 2 {
				t.Errorf("%s: can dump %v (want %v), %d findings (want 2 pidfds)", label, rep.CanDump, wantDump, len(rep.Findings))
			}
			if !wantDump && !strings.Contains(buf.String(), "criu-forge build recipes/criu-pidfd.yaml") {
				t.Errorf("%s: doctor does not name the recipe that fixes it", label)
			}
		}
	})
	printSideBySide(t, reports["criu-forge"], reports["debian"])
}

// printSideBySide shows our package's outcome beside Debian's, per check.
func printSideBySide(t *testing.T, ours, theirs *verify.Report) {
	t.Helper()
	if ours == nil {
		return
	}
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	other := "debian (not run)"
	byName := map[string]verify.Check{}
	if theirs != nil {
		other = "debian criu " + theirs.Version
		for _, c := range theirs.Checks {
			byName[c.Case+" "+c.Name] = c
		}
	}
	fmt.Fprintf(w, "CHECK\tcriu-forge criu %s\t%s\n", ours.Version, other)
	seen := map[string]bool{}
	verdict := func(c verify.Check, ok bool) string {
		switch {
		case !ok:
			return "-"
		case c.Pass:
			return "PASS"
		}
		return "FAIL " + c.Detail
	}
	for _, c := range ours.Checks {
		name := c.Case + " " + c.Name
		seen[name] = true
		d, ok := byName[name]
		fmt.Fprintf(w, "%s\t%s\t%s\n", name, verdict(c, true), verdict(d, ok))
	}
	if theirs != nil {
		for _, c := range theirs.Checks {
			if name := c.Case + " " + c.Name; !seen[name] {
				fmt.Fprintf(w, "%s\t-\t%s\n", name, verdict(c, true))
			}
		}
	}
	w.Flush()
	// Printed, not only logged, and kept in a file: `go test ./...` shows a
	// passing package's output only with -v, so CI can cat the file.
	table := "pidfd checkpoint/restore, side by side:\n" + buf.String()
	fmt.Print(table)
	path := os.Getenv("CRIU_FORGE_E2E_REPORT")
	if path == "" {
		path = filepath.Join(testutil.TestCacheDir(t), "e2e-pidfd-outcomes.txt")
	}
	if err := fsutil.WriteFileAtomic(path, []byte(table), 0o644); err != nil {
		t.Errorf("write the outcomes: %v", err)
	}
	t.Logf("outcomes also written to %s", path)
}

// overlay mounts a private writable view of lower and returns it.
func overlay(t *testing.T, lower string) string {
	dir := t.TempDir()
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "root")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Run(t, "", "mount", "-t", "overlay", "overlay", "-o", "lowerdir="+lower+",upperdir="+upper+",workdir="+work, merged)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", merged).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", merged, err, out)
		}
	})
	return merged
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

type logWriter struct{ t *testing.T }

func (l logWriter) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}
