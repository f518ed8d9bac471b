package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/doctor"
	"github.com/criu-forge/criu-forge/internal/packager"
	"github.com/criu-forge/criu-forge/internal/testutil"
	"github.com/criu-forge/criu-forge/internal/verify"
)

func TestVerifyDoctorUsage(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"verify"}, 2, "exactly one of"},
		{[]string{"verify", "--installed", "--target", "debian-12"}, 2, "exactly one of"},
		{[]string{"verify", "--target", "debian-12", "--out", empty}, 1, "nothing built in " + empty},
		{[]string{"doctor"}, 2, "--pid PID or --container NAME"},
		{[]string{"doctor", "--pid", "1", "--container", "x"}, 2, "exactly one of"},
		{[]string{"doctor", "--pid", "1073741824"}, 1, "no process 1073741824"},
	} {
		code, _, stderr := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d (want %d), stderr:\n%s", tc.args, code, tc.code, stderr)
		}
	}
}

// doctor on a real process holding a pidfd of its child: it is found, and
// the exit code follows the verdict for whatever criu this machine has.
func TestDoctorFindsPidfdHolder(t *testing.T) {
	testutil.RequireTool(t, "gcc", "gcc")
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := verify.BuildWorkload(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	w, rep, err := verify.StartWorkload(ctx, bin, filepath.Join(dir, "ctl"), "live")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Kill()
	held, _ := rep.FD("live")

	code, out, stderr := cli(t, "doctor", "--pid", itoa(w.Pid), "--json")
	var got doctor.Report
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, out, stderr)
	}
	if (code == 0) != got.CanDump {
		t.Errorf("exit %d with can_dump %v", code, got.CanDump)
	}
	if len(got.Findings) != 1 || got.Findings[0].FD != held.FD || got.Findings[0].Kind != doctor.KindPidfd || got.Findings[0].Target != held.Target {
		t.Errorf("findings %+v, want the pidfd fd %d of %d", got.Findings, held.FD, held.Target)
	}
	if len(got.Processes) != 2 {
		t.Errorf("tree %+v, want the workload and its child", got.Processes)
	}

	_, text, _ := cli(t, "doctor", "--pid", itoa(w.Pid))
	for _, want := range []string{"pidfd-workload pid " + itoa(w.Pid) + " fd ", "anon_inode:[pidfd] -> needs CRIU >= 4.1", "criu: "} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

// verify against a criu without pidfd support (Debian 12's 3.17.1) fails
// with a message that says why and what to use.
func TestVerifyDistroCRIUFails(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "gcc", "gcc")
	path := testutil.RequireTool(t, "criu", "criu")
	v, err := (verify.CRIU{Path: path}).Version(context.Background())
	if err != nil || verify.AtLeast(v, verify.PidfdSince) {
		t.Skipf("criu on PATH is %q (%v), not a distro criu without pidfd support", v, err)
	}
	work := t.TempDir()
	code, out, stderr := cli(t, "verify", "--installed", "--work-dir", work)
	t.Logf("\n%s%s", out, stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"FAIL  live     dump", "cannot checkpoint pidfds", "criu-forge build recipes/criu-pidfd.yaml"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !strings.Contains(stderr, work) {
		t.Errorf("stderr does not name the kept work folder %s", work)
	}
	if _, err := os.Stat(filepath.Join(work, "live", "images", "dump.log")); err != nil {
		t.Errorf("dump.log not kept: %v", err)
	}
}

// verify --criu with a fixture-built CRIU 4.2.1 passes (heavy: builds it once).
func TestVerifyCRIU421(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.HostCRIU(t, "4.2.1")
	code, out, stderr := cli(t, "verify", "--criu", bin)
	if code != 0 || !strings.Contains(out, "OK: all 13 checks passed with criu 4.2.1") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestTargetDebs(t *testing.T) {
	out := t.TempDir()
	manifest := func(name, target, at string, files ...string) {
		var arts []packager.Artifact
		for _, f := range files {
			format := strings.TrimPrefix(filepath.Ext(f), ".")
			arts = append(arts, packager.Artifact{Path: filepath.Join(out, f), File: f, Name: "criu", Format: format})
		}
		m := packager.Manifest{Schema: packager.ManifestSchema, Name: "criu", PackagedAt: at, Artifacts: arts}
		parts := strings.SplitN(target, "-", 3)
		m.Target = packager.Target{Distro: parts[0], Release: parts[1], Arch: parts[2]}
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name+packager.ManifestSuffix), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest("old", "debian-12-amd64", "2026-01-01T00:00:00Z", "criu_old.deb")
	manifest("new", "debian-12-amd64", "2026-02-01T00:00:00Z", "criu_new.deb", "libcriu2_new.deb")
	manifest("rocky", "rocky-9-amd64", "2026-02-01T00:00:00Z", "criu.rpm")
	for _, tc := range []struct {
		target string
		want   []string
		err    string
	}{
		{"debian-12", []string{"criu_new.deb", "libcriu2_new.deb"}, ""},
		{"debian-12-amd64", []string{"criu_new.deb", "libcriu2_new.deb"}, ""},
		{"rocky-9", nil, "no .deb packages"},
		{"ubuntu-24.04", nil, "no build for target ubuntu-24.04"},
	} {
		got, err := targetDebs(out, tc.target)
		var names []string
		for _, p := range got {
			names = append(names, filepath.Base(p))
		}
		if strings.Join(names, " ") != strings.Join(tc.want, " ") || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: got %v, %v; want %v, %q", tc.target, names, err, tc.want, tc.err)
		}
	}
}
