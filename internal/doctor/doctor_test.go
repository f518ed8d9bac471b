package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/criu-forge/criu-forge/internal/testutil"
	"github.com/criu-forge/criu-forge/internal/verify"
	"github.com/criu-forge/criu-forge/recipes"
)

func TestParseFDInfo(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     FDInfo
		bad      bool
	}{
		{"pidfd", "pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t1\nPid:\t1099\nNSpid:\t1099\n", FDInfo{Flags: 0o2000002, Pid: 1099, HasPid: true}, false},
		{"thread", "pos:\t0\nflags:\t02000202\nPid:\t7\n", FDInfo{Flags: 0o2000202, Pid: 7, HasPid: true}, false},
		{"dead", "flags:\t02\nPid:\t-1\n", FDInfo{Flags: 2, Pid: -1, HasPid: true}, false},
		{"uring", "pos:\t0\nflags:\t02000002\nSqMask:\t0x3\nPollList:\n", FDInfo{Flags: 0o2000002}, false},
		{"no flags", "pos:\t0\n", FDInfo{}, true},
		{"bad flags", "flags:\t9x\n", FDInfo{}, true},
		{"bad pid", "flags:\t0\nPid:\tme\n", FDInfo{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFDInfo([]byte(tc.in))
			if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
				t.Errorf("got %+v, %v; want %+v (error: %v)", got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in, comm string
		ppid     int
	}{
		{"812 (ibus-daemon) S 790 812 ...", "ibus-daemon", 790},
		{"9 (a) (b) x) R 1 9 9", "a) (b) x", 1},
		{"9 (with space) S 42 0", "with space", 42},
	} {
		ppid, comm, err := parseStat([]byte(tc.in))
		if err != nil || ppid != tc.ppid || comm != tc.comm {
			t.Errorf("parseStat(%q) = %d, %q, %v", tc.in, ppid, comm, err)
		}
	}
	for _, bad := range []string{"", "12 comm S 1", "12 (x)", "12 (x) S one"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func FuzzParseFDInfo(f *testing.F) {
	f.Add([]byte("pos:\t0\nflags:\t02000002\nPid:\t1099\n"))
	f.Add([]byte("flags:\t02000202\nPid:\t-1\n"))
	f.Add([]byte("flags:\nPid:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseFDInfo(data)
		if err == nil && !bytes.Contains(data, []byte("flags")) {
			t.Fatalf("no flags line, but parsed %+v", info)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("812 (ibus-daemon) S 790 812"))
	f.Add([]byte("1 ()) S 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, comm, err := parseStat(data)
		if err == nil && len(comm) > len(data) {
			t.Fatal("comm longer than the input")
		}
	})
}

// Every row names its source; the CRIU messages the table quotes are in the
// real 4.2.1 source; the recipe named as the pidfd fix builds a CRIU that
// is new enough.
func TestKindsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds {
		if k.Name == "" || k.Source == "" || k.Link == "" || seen[k.Name] {
			t.Errorf("row %+v: needs a unique name, a link and a source", k)
		}
		seen[k.Name] = true
		if k.Since == "" && k.Remedy == "" {
			t.Errorf("%s: nothing handles it, so it needs a remedy", k.Name)
		}
	}
	data, err := recipes.Files.ReadFile(filepath.Base(PidfdRecipe))
	if err != nil {
		t.Fatalf("the pidfd fix %s is not shipped: %v", PidfdRecipe, err)
	}
	var r struct {
		Upstream struct{ Version string } `yaml:"upstream"`
	}
	if err := yaml.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if !KindNamed(KindPidfd).Supported(r.Upstream.Version) {
		t.Errorf("%s builds CRIU %s, older than the pidfd row's %s", PidfdRecipe, r.Upstream.Version, KindNamed(KindPidfd).Since)
	}

	testutil.RequireTool(t, "tar", "tar")
	tarball := testutil.CRIUTarball(t, "4.2.1")
	read := func(name string) string {
		out, err := exec.Command("tar", "-xOJf", tarball, "criu-4.2.1/criu/"+name).Output()
		if err != nil {
			t.Fatalf("read %s from %s: %v", name, tarball, err)
		}
		return string(out)
	}
	pidfd, files := read("pidfd.c"), read("files.c")
	for _, want := range []string{"PIDFD_THREAD flag is currently not supported", "is not a part of process tree"} {
		if !strings.Contains(pidfd, want) {
			t.Errorf("criu/pidfd.c of 4.2.1 lacks %q", want)
		}
	}
	// files.c sends anon inodes it has no is_*_link for to dump_unsupp_fd:
	// the handled ones are exactly the rows with a version.
	for _, k := range Kinds {
		handled := k.Since != "" || k.Name == "bpf-map"
		if !strings.HasPrefix(k.Link, "anon_inode:") || strings.Contains(k.Link, " ") || k.Name == KindUnknownAnon {
			continue
		}
		probe := "is_" + strings.NewReplacer("-", "", "_", "").Replace(k.Name) + "_link"
		if k.Name == "eventpoll" || k.Name == "eventfd" || k.Name == "inotify" || k.Name == "fanotify" || k.Name == "signalfd" || k.Name == "timerfd" || k.Name == "pidfd" || k.Name == "bpf-map" {
			probe = "is_" + strings.ReplaceAll(k.Name, "-", "") + "_link"
		}
		if strings.Contains(files, probe) != handled {
			t.Errorf("%s: files.c has %s: %v, table says handled: %v", k.Name, probe, strings.Contains(files, probe), handled)
		}
	}
}

var (
	checkOK  = &verify.CheckResult{OK: true, Output: "Looks good."}
	checkBad = &verify.CheckResult{Output: "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds"}
)

// A fixed tree: the XFCE session of the issue, with IBus holding a pidfd.
func sessionTree() ([]Process, map[int][]OpenFD) {
	procs := []Process{
		{Pid: 700, PPid: 1, Comm: "vncserver"},
		{Pid: 790, PPid: 700, Comm: "xfce4-session"},
		{Pid: 812, PPid: 790, Comm: "ibus-daemon"},
		{Pid: 813, PPid: 812, Comm: "ibus-dconf"},
		{Pid: 830, PPid: 790, Comm: "xfce4-panel"},
		{Pid: 831, PPid: 830, Comm: "panel-6-systray"},
		{Pid: 840, PPid: 700, Comm: "Xvnc"},
	}
	pidfd := func(fd, target int, flags uint64) OpenFD {
		return OpenFD{FD: fd, Link: "anon_inode:[pidfd]", Pidfd: true, FDInfo: FDInfo{Flags: flags, Pid: target, HasPid: true}}
	}
	fds := map[int][]OpenFD{
		812: {{FD: 0, Link: "/dev/null"}, {FD: 3, Link: "anon_inode:[eventfd]"}, pidfd(7, 813, 0o2000002)},
		830: {{FD: 4, Link: "anon_inode:[eventpoll]"}, {FD: 5, Link: "socket:[1234]"}},
		840: {{FD: 9, Link: "anon_inode:inotify"}},
	}
	return procs, fds
}

func TestAnalyzeGolden(t *testing.T) {
	procs, fds := sessionTree()
	exotic := map[int][]OpenFD{
		812: append(append([]OpenFD(nil), fds[812]...),
			OpenFD{FD: 8, Link: "anon_inode:[pidfd]", Pidfd: true, FDInfo: FDInfo{Flags: 0o2000202, Pid: 812, HasPid: true}},
			OpenFD{FD: 9, Link: "anon_inode:[pidfd]", Pidfd: true, FDInfo: FDInfo{Flags: 0o2000002, Pid: 1, HasPid: true}},
			OpenFD{FD: 10, Link: "anon_inode:[pidfd]", Pidfd: true, FDInfo: FDInfo{Flags: 0o2000002, Pid: -1, HasPid: true}}),
		840: {{FD: 11, Link: "anon_inode:[io_uring]"}, {FD: 12, Link: "anon_inode:[userfaultfd]"}, {FD: 13, Link: "anon_inode:[sync_file]"}},
	}
	for _, tc := range []struct {
		name    string
		criu    CRIUStatus
		fds     map[int][]OpenFD
		canDump bool
	}{
		{"debian-3.17.1", CRIUStatus{Path: "/usr/sbin/criu", Version: "3.17.1", Check: checkBad}, fds, false},
		{"forge-4.2.1", CRIUStatus{Path: "/usr/sbin/criu", Version: "4.2.1", Check: checkOK}, fds, true},
		{"ubuntu-3.16.1-check-ok", CRIUStatus{Path: "/usr/sbin/criu", Version: "3.16.1", Check: checkOK}, fds, false},
		{"no-criu", CRIUStatus{Error: "no criu on PATH"}, fds, false},
		{"exotic-4.2.1", CRIUStatus{Path: "/usr/sbin/criu", Version: "4.2.1", Check: checkOK}, exotic, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := analyze(700, procs, tc.fds, tc.criu)
			if rep.CanDump != tc.canDump {
				t.Errorf("CanDump = %v, want %v", rep.CanDump, tc.canDump)
			}
			var buf bytes.Buffer
			rep.Print(&buf)
			testutil.Golden(t, "report-"+tc.name+".txt", buf.Bytes())
			js, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, "report-"+tc.name+".json", append(js, '\n'))
		})
	}
}

// Real processes holding the fds: the workload, named ibus-daemon, under a
// shell that also runs a clean child.
func TestInspectRealTree(t *testing.T) {
	testutil.RequireTool(t, "gcc", "gcc")
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := verify.BuildWorkload(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	ibus := filepath.Join(dir, "ibus-daemon")
	if err := os.Rename(bin, ibus); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(dir, "ctl")
	if err := os.Mkdir(ctl, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := strconv.Itoa(os.Getpid())
	script := ibus + " " + ctl + " live dead outside:" + outside + " thread uring & exec sleep 600"
	// sh -> (ibus-daemon -> its live child), sleep replaces sh: so run
	// sh under another sh to keep a clean sibling.
	root := exec.Command("sh", "-c", "sh -c '"+script+"' & sleep 600 & wait")
	root.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := root.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-root.Process.Pid, syscall.SIGKILL) // the group we started
		_ = root.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(ctl, "report")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("workload did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	data, _ := os.ReadFile(filepath.Join(ctl, "report"))
	wrep, err := verify.ParseWorkloadReport(data)
	if err != nil {
		t.Fatal(err)
	}
	live, _ := wrep.FD("live")

	for _, tc := range []struct {
		version string
		kinds   map[int]string // fd -> kind of the workload's findings
		blocks  map[string]bool
	}{
		{"3.17.1", nil, map[string]bool{KindPidfd: true, KindPidfdOutside: true, KindPidfdThread: true, KindIOUring: true}},
		{"4.2.1", nil, map[string]bool{KindPidfd: false, KindPidfdOutside: true, KindPidfdThread: true, KindIOUring: true}},
	} {
		t.Run(tc.version, func(t *testing.T) {
			rep, err := Inspect(ctx, Options{Pid: root.Process.Pid, CRIU: &CRIUStatus{Version: tc.version, Check: checkOK}})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			rep.Print(&buf)
			t.Logf("\n%s", buf.String())
			if rep.CanDump {
				t.Error("CanDump with an outside-tree pidfd in the tree")
			}
			got := map[int]Finding{}
			for _, f := range rep.Findings {
				if f.Pid != wrep.Pid {
					t.Errorf("finding for a process that holds nothing: %v", f)
				}
				got[f.FD] = f
			}
			want := map[int]string{}
			for _, h := range wrep.FDs {
				switch h.Case {
				case "live", "dead":
					want[h.FD] = KindPidfd
				case "outside":
					want[h.FD] = KindPidfdOutside
				case "thread":
					want[h.FD] = KindPidfdThread
				case "uring":
					want[h.FD] = KindIOUring
				}
			}
			for fd, kind := range want {
				f, ok := got[fd]
				if !ok || f.Kind != kind || f.Blocks != tc.blocks[kind] || f.Comm != "ibus-daemon" {
					t.Errorf("fd %d: got %+v, want kind %s blocks %v", fd, f, kind, tc.blocks[kind])
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d findings, want %d", len(got), len(want))
			}
			if f := got[live.FD]; f.Target != live.Target {
				t.Errorf("live pidfd target %d, want %d", f.Target, live.Target)
			}
			text := buf.String()
			for _, w := range []string{"ibus-daemon pid " + strconv.Itoa(wrep.Pid), "im-config -n none", "criu dump -t", "(sleep, 1 process(es))", "pidfd-outside-tree: no shipped recipe"} {
				if !strings.Contains(text, w) {
					t.Errorf("report lacks %q", w)
				}
			}
			if tc.version == "3.17.1" && !strings.Contains(text, "criu-forge build "+PidfdRecipe) {
				t.Errorf("report does not name the recipe that fixes pidfds")
			}
		})
	}

	if _, err := Inspect(ctx, Options{Pid: 1 << 30, CRIU: &CRIUStatus{}}); err == nil || !strings.Contains(err.Error(), "no process") {
		t.Errorf("missing pid: %v", err)
	}
}

func TestContainerPidMissing(t *testing.T) {
	_, err := ContainerPid(context.Background(), "criu-forge-no-such-container")
	if err == nil {
		t.Fatal("found a container that does not exist")
	}
	if !strings.Contains(err.Error(), "criu-forge-no-such-container") {
		t.Errorf("error does not name the container: %v", err)
	}
}

// BenchmarkInspectWholeSystem walks every process from pid 1 (what
// `doctor --pid 1` does on this machine), without running criu.
func BenchmarkInspectWholeSystem(b *testing.B) {
	testutil.RequireRoot(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		rep, err := Inspect(ctx, Options{Pid: 1, CRIU: &CRIUStatus{Version: "4.2.1", Check: checkOK}})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			fds := 0
			for _, p := range rep.Processes {
				fds += p.FDs
			}
			b.ReportMetric(float64(len(rep.Processes)), "procs")
			b.ReportMetric(float64(fds), "fds")
		}
	}
}

// doctor --container: a real docker container (private dockerd) whose init
// holds a pidfd of its child is found through docker inspect.
func TestInspectContainer(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireTool(t, "gcc", "gcc")
	testutil.StartDockerd(t)
	ctx := context.Background()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "ctl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.BuildWorkload(ctx, rootfs, "-static"); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	testutil.Run(t, "", "tar", "-C", rootfs, "-cf", tarball, ".")
	image := "criu-forge-doctor-test:latest"
	testutil.Run(t, "", "docker", "import", tarball, image)
	name := "criu-forge-doctor-test-" + strconv.Itoa(os.Getpid())
	ctl := filepath.Join(dir, "ctl")
	if err := os.Mkdir(ctl, 0o777); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "", "docker", "run", "-d", "--name", name, "--network", "none", "-v", ctl+":/ctl", image, "/pidfd-workload", "/ctl", "live")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(ctl, "report")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Fatalf("the container's workload did not report: %s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep, err := Inspect(ctx, Options{Container: name, CRIU: &CRIUStatus{Version: "3.17.1", Check: checkOK}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.Print(&buf)
	t.Logf("\n%s", buf.String())
	init := strings.TrimSpace(testutil.Run(t, "", "docker", "inspect", "--format", "{{.State.Pid}}", name))
	if strconv.Itoa(rep.Root) != init || len(rep.Processes) != 2 {
		t.Fatalf("tree root %d (docker says %s), %d processes, want the workload and its child", rep.Root, init, len(rep.Processes))
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != KindPidfd || rep.Findings[0].Pid != rep.Root ||
		rep.Findings[0].Target != rep.Processes[1].Pid || !rep.Findings[0].Blocks {
		t.Errorf("findings %+v, want the init's pidfd of its child (host pid %d)", rep.Findings, rep.Processes[1].Pid)
	}
	if !strings.Contains(buf.String(), "container "+name+" (init pid "+init+")") {
		t.Errorf("report does not name the container")
	}
}
