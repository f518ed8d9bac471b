package verify

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"Version: 4.2.1\n", "4.2.1"},
		{"Version: 3.17.1\nGitID: v3.17.1-2-gd46f40f\n", "3.17.1"},
		{"Version: 4.2\n", "4.2"},
		{"criu: unknown option\n", ""},
	} {
		got, err := ParseVersion([]byte(tc.out))
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("ParseVersion(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
		}
	}
}

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v, min string
		want   bool
	}{
		{"4.1", "4.1", true},
		{"4.1.1", "4.1", true},
		{"4.0", "4.1", false},
		{"3.17.1", "4.1", false},
		{"4.2.1+forge1", "4.1", true},
		{"10.0", "4.1", true},
		{"3.19", "3.17.1", true},
		{"", "4.1", false},
	} {
		if got := AtLeast(tc.v, tc.min); got != tc.want {
			t.Errorf("AtLeast(%q, %q) = %v, want %v", tc.v, tc.min, got, tc.want)
		}
	}
}

// The workload itself, no CRIU: each case holds the fd it says, and a
// report on request matches.
func TestWorkload(t *testing.T) {
	testutil.RequireTool(t, "gcc", "gcc")
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := BuildWorkload(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	w, first, err := StartWorkload(ctx, bin, filepath.Join(dir, "ctl"), "live", "dead", "outside:"+strconv.Itoa(os.Getpid()), "thread", "uring")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Kill()
	again, err := w.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rep := range []*WorkloadReport{first, again} {
		if rep.Pid != w.Pid {
			t.Errorf("report pid %d, started %d", rep.Pid, w.Pid)
		}
		for _, tc := range []struct{ kase, link, fdpid, signal string }{
			{"live", pidfdLink, "", "ok"},
			{"dead", pidfdLink, "-1", "ESRCH"},
			{"outside", pidfdLink, strconv.Itoa(os.Getpid()), "ok"},
			{"thread", pidfdLink, strconv.Itoa(w.Pid), "ok"},
			{"uring", "anon_inode:[io_uring]", "none", "none"},
		} {
			h, ok := rep.FD(tc.kase)
			if !ok {
				t.Errorf("no %s fd in %+v", tc.kase, rep.FDs)
				continue
			}
			want := tc.fdpid
			if want == "" {
				want = strconv.Itoa(h.Target)
			}
			if h.Link != tc.link || h.FDPid != want || h.Signal != tc.signal || h.FD < 3 {
				t.Errorf("%s: got %+v, want link %s Pid %s signal %s", tc.kase, h, tc.link, want, tc.signal)
			}
		}
	}
	// The workload closed what it inherited: only 0-2 and its own fds.
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(w.Pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 3+5 {
		t.Errorf("workload has %d fds, want 8 (stdio + 5 held)", len(ents))
	}
}

func TestUnpack(t *testing.T) {
	testutil.RequireTool(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	for _, d := range []string{"DEBIAN", "usr/sbin", "usr/lib/x86_64-linux-gnu"} {
		if err := os.MkdirAll(filepath.Join(pkg, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(pkg, rel), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("DEBIAN/control", "Package: criu\nVersion: 4.2.1\nArchitecture: all\nMaintainer: t <t@x.invalid>\nDescription: test\n", 0o644)
	// A script stands in for criu: it shows the environment it runs with.
	write("usr/sbin/criu", "#!/bin/sh\necho \"Version: 4.2.1\"\necho \"lib=$LD_LIBRARY_PATH\"\n", 0o755)
	write("usr/lib/x86_64-linux-gnu/libcriu.so.2", "not really", 0o644)
	deb := filepath.Join(dir, "criu.deb")
	testutil.Run(t, "", "dpkg-deb", "--root-owner-group", "-b", pkg, deb)

	root := filepath.Join(dir, "root")
	c, err := Unpack(context.Background(), root, deb)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != filepath.Join(root, "usr/sbin/criu") {
		t.Errorf("path %s", c.Path)
	}
	v, err := c.Version(context.Background())
	if err != nil || v != "4.2.1" {
		t.Fatalf("version %q, %v", v, err)
	}
	out, _ := c.command(context.Background()).Output()
	if want := "lib=" + filepath.Join(root, "usr/lib/x86_64-linux-gnu"); !strings.Contains(string(out), want) {
		t.Errorf("criu ran with %q, want %q", out, want)
	}

	if _, err := Unpack(context.Background(), filepath.Join(dir, "r2"), filepath.Join(dir, "missing.deb")); err == nil || !strings.Contains(err.Error(), "missing.deb") {
		t.Errorf("missing package: %v", err)
	}
}

// Debian 12's own criu (3.17.1): fails `criu check` on kernels >= 6.13
// and cannot dump pidfds; verify must say so and fail.
func TestRunDistroCRIU(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "gcc", "gcc")
	path := testutil.RequireTool(t, "criu", "criu")
	c := CRIU{Path: path}
	v, err := c.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if AtLeast(v, PidfdSince) {
		t.Skipf("the criu on PATH is %s, not a distro criu without pidfd support (install Debian 12's criu)", v)
	}
	rep, err := Run(context.Background(), Options{CRIU: c, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.Print(&buf)
	t.Logf("criu %s:\n%s", v, buf.String())
	if rep.Failed() == 0 {
		t.Fatal("verify passed with a criu that has no pidfd support")
	}
	if !strings.Contains(rep.Advice, "cannot checkpoint pidfds") || !strings.Contains(buf.String(), "FAILED") {
		t.Errorf("advice does not explain: %q", rep.Advice)
	}
}

// A real CRIU 4.2.1 built from the fixture on this host: every check passes.
func TestRunCRIU421(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.HostCRIU(t, "4.2.1")
	rep, err := Run(context.Background(), Options{CRIU: CRIU{Path: bin}, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.Print(&buf)
	t.Logf("\n%s", buf.String())
	if rep.Failed() != 0 || rep.Version != "4.2.1" {
		t.Fatalf("%d checks failed", rep.Failed())
	}
	names := map[string]bool{}
	for _, c := range rep.Checks {
		names[c.Case+"/"+c.Name] = true
	}
	for _, want := range []string{"live/fdinfo Pid names the restored child", "dead/pidfd_send_signal(fd, 0) says ESRCH", "outside/process keeps running"} {
		if !names[want] {
			t.Errorf("check %s did not run", want)
		}
	}
}

func FuzzParseWorkloadReport(f *testing.F) {
	f.Add([]byte("pid 12\nfd 3 case=live target=13 link=anon_inode:[pidfd] fdpid=13 flags=02000002 signal=ok\n"))
	f.Add([]byte("pid x\n"))
	f.Add([]byte("fd 3 case=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := ParseWorkloadReport(data)
		if err == nil && rep.Pid == 0 {
			t.Fatal("accepted a report without a pid")
		}
	})
}
