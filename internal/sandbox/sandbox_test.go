package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestSelect(t *testing.T) {
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	tests := []struct {
		name, env, arg, want, wantErr string
	}{
		{name: "default is bubblewrap", want: "bubblewrap"},
		{name: "environment", env: "bubblewrap", want: "bubblewrap"},
		{name: "alias", arg: "bwrap", want: "bubblewrap"},
		{name: "unknown", arg: "lxc", wantErr: `unknown runner "lxc"`},
		{name: "unknown from environment", env: "chroot", wantErr: `unknown runner "chroot"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(sandbox.EnvRunner, tt.env)
			r, err := sandbox.Select(tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Select(%q) error = %v, want %q", tt.arg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name() != tt.want {
				t.Errorf("Select(%q) = %s, want %s", tt.arg, r.Name(), tt.want)
			}
		})
	}
}

// A runner whose program is missing names the Debian package to install.
func TestAvailableNamesPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, r := range []sandbox.Runner{&sandbox.Bubblewrap{}, sandbox.NewDocker(), sandbox.NewPodman(t.TempDir())} {
		err := r.Available()
		want := map[string]string{"bubblewrap": "bubblewrap", "docker": "docker.io", "podman": "podman"}[r.Name()]
		if err == nil || !strings.Contains(err.Error(), "install the Debian package "+want) {
			t.Errorf("%s.Available() = %v, want it to name %s", r.Name(), err, want)
		}
	}
}

// hostBuilder is the machine's own root, entered read-only: enough to test
// the bubblewrap runner without making a root file system.
func hostBuilder() *sandbox.Builder { return &sandbox.Builder{Key: "host", Root: "/"} }

func TestBubblewrapIsolation(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	work := t.TempDir()
	ro := t.TempDir()
	os.WriteFile(filepath.Join(ro, "input"), []byte("in\n"), 0o644)
	r := &sandbox.Bubblewrap{}
	tests := []struct {
		name    string
		script  string
		network bool
		want    string
		fail    bool
	}{
		{name: "environment and directory", script: `echo "$GREETING $(pwd) $PATH"`, want: "hi /build/out " + "/usr/bin:/bin\n"},
		{name: "writable mount", script: "echo out > /build/out/file && cat /build/out/file", want: "out\n"},
		{name: "read-only mount", script: "cat /build/in/input; touch /build/in/x", want: "in\n", fail: true},
		{name: "builder root is read-only", script: "touch /usr/criu-forge-test", fail: true},
		{name: "private tmp", script: "test ! -e /tmp/" + filepath.Base(filepath.Dir(work)) + " && touch /tmp/x /var/tmp/x && echo ok", want: "ok\n"},
		{name: "no network", script: "grep -c : /proc/net/dev", want: "1\n"}, // only lo
		{name: "network when asked", script: "test $(grep -c : /proc/net/dev) -gt 1 && echo net", network: true, want: "net\n"},
		{name: "own pid namespace", script: "echo $$", want: "2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := r.Run(context.Background(), sandbox.RunSpec{
				Builder: hostBuilder(),
				Cmd:     []string{"sh", "-c", tt.script},
				Dir:     "/build/out",
				Env:     []string{"GREETING=hi", "PATH=/usr/bin:/bin"},
				Mounts:  []sandbox.Mount{{Source: work, Target: "/build/out"}, {Source: ro, Target: "/build/in", ReadOnly: true}},
				Network: tt.network,
				Stdout:  &out, Stderr: &errOut,
			})
			if (err != nil) != tt.fail {
				t.Fatalf("Run: err = %v, want failure %v; stderr: %s", err, tt.fail, errOut.String())
			}
			if out.String() != tt.want {
				t.Errorf("output %q, want %q (stderr %s)", out.String(), tt.want, errOut.String())
			}
		})
	}
}

func TestBubblewrapCancelStopsEverything(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := (&sandbox.Bubblewrap{}).Run(ctx, sandbox.RunSpec{Builder: hostBuilder(), Cmd: []string{"sh", "-c", "sleep 60 & sleep 60"}})
	if err == nil || ctx.Err() == nil {
		t.Fatalf("Run = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

// The fixture C project builds with the host's compiler in the host root.
func TestBubblewrapBuildsHelloOnHostRoot(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	testutil.RequireTool(t, "cc", "gcc")
	testutil.RequireTool(t, "make", "make")
	buildHello(t, &sandbox.Bubblewrap{}, hostBuilder())
}

// buildHello builds testdata/hello in b with r, installs it into a stage
// directory and runs the staged program inside the builder.
func buildHello(t *testing.T, r sandbox.Runner, b *sandbox.Builder) {
	t.Helper()
	src := t.TempDir()
	stage := t.TempDir()
	for _, f := range []string{"Makefile", "hello.c"} {
		data, err := os.ReadFile(filepath.Join("testdata", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(src, f), data, 0o644)
	}
	var out bytes.Buffer
	run := func(cmd string) {
		t.Helper()
		out.Reset()
		err := r.Run(context.Background(), sandbox.RunSpec{
			Builder: b,
			Cmd:     []string{"sh", "-c", cmd},
			Dir:     "/build/src",
			Env:     []string{"PATH=/usr/lib/ccache:/usr/bin:/bin", "HOME=/tmp", "CCACHE_DIR=/tmp/ccache"},
			Mounts:  []sandbox.Mount{{Source: src, Target: "/build/src"}, {Source: stage, Target: "/build/stage"}},
			Stdout:  &out, Stderr: &out,
		})
		if err != nil {
			t.Fatalf("%s: %s: %v\n%s", r.Name(), cmd, err, out.String())
		}
	}
	run(`make CFLAGS= GREETING= && make install DESTDIR=/build/stage PREFIX=/usr`)
	if _, err := os.Stat(filepath.Join(stage, "usr", "bin", "hello")); err != nil {
		t.Fatalf("%s: staged program missing: %v\n%s", r.Name(), err, out.String())
	}
	run("/build/stage/usr/bin/hello")
	if got := out.String(); got != "hello from criu-forge\n" {
		t.Errorf("%s: staged program printed %q", r.Name(), got)
	}
}

// Every runner present builds the fixture project in a real bookworm
// builder; a runner that cannot start here is skipped with its reason.
func TestRunnersBuildHello(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	for _, name := range sandbox.Runners {
		t.Run(name, func(t *testing.T) {
			if name == "docker" {
				testutil.StartDockerd(t)
			}
			var r sandbox.Runner
			if name == "podman" {
				r = sandbox.NewPodman(t.TempDir())
			} else {
				var err error
				if r, err = sandbox.Select(name); err != nil {
					t.Skipf("runner %s cannot start here: %v", name, err)
				}
			}
			if err := r.Available(); err != nil {
				t.Skipf("runner %s cannot start here: %v", name, err)
			}
			b := testutil.BookwormBuilder(t, r, testutil.CRIUDebianDeps...)
			buildHello(t, r, b)
		})
	}
}

// A builder creation killed half way leaves nothing that looks complete,
// and the next creation of the same key succeeds.
func TestKilledBuilderCreation(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mmdebstrap", "mmdebstrap")
	cache := t.TempDir()
	// Kill it while dpkg writes into the new root: the hardest moment.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log := &cancelOn{text: "I: extracting archives", cancel: cancel}
	_, err := sandbox.Prepare(ctx, &sandbox.Bubblewrap{}, sandbox.BuilderSpec{Target: testutil.BookwormTarget(), Packages: []string{"make"}, CacheDir: cache, Log: log})
	if err == nil || !log.seen {
		t.Fatalf("Prepare = %v (cancelled while extracting: %v); cannot test an interrupted creation", err, log.seen)
	}
	list, err := sandbox.Builders(cache)
	if err != nil || len(list) != 0 {
		t.Fatalf("after a killed creation Builders = %v, %v; want none", list, err)
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "builders"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("a killed creation left %s, which looks like a builder", e.Name())
		}
	}
	if _, err := sandbox.Prune(cache, time.Now()); err != nil {
		t.Fatal(err)
	}
	if m, _ := exec.Command("grep", "-c", cache, "/proc/self/mountinfo").Output(); strings.TrimSpace(string(m)) != "0" {
		t.Errorf("mounts left below %s", cache)
	}
}

// cancelOn cancels a context when text appears in what is written to it.
type cancelOn struct {
	text   string
	cancel context.CancelFunc
	seen   bool
}

func (c *cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.text) {
		c.seen = true
		c.cancel()
	}
	return len(p), nil
}

// writeBuilder makes a builder record the way Prepare leaves one.
func writeBuilder(t *testing.T, cache, key string, lastUsed time.Time) {
	t.Helper()
	dir := filepath.Join(cache, "builders", key)
	os.MkdirAll(filepath.Join(dir, "rootfs", "usr"), 0o755)
	rec, _ := json.Marshal(sandbox.Builder{Key: key, ID: "id-" + key, Target: testutil.BookwormTarget()})
	os.WriteFile(filepath.Join(dir, "builder.json"), rec, 0o644)
	os.WriteFile(filepath.Join(dir, "last-used"), nil, 0o644)
	os.Chtimes(filepath.Join(dir, "last-used"), lastUsed, lastUsed)
}

func TestBuildersAndPrune(t *testing.T) {
	cache := t.TempDir()
	now := time.Now()
	writeBuilder(t, cache, "aaa", now.Add(-48*time.Hour))
	writeBuilder(t, cache, "bbb", now.Add(-time.Minute))
	os.MkdirAll(filepath.Join(cache, "builders", "ccc", "rootfs"), 0o755) // no record: incomplete
	os.MkdirAll(filepath.Join(cache, "builders", ".tmp-ddd-123", "rootfs"), 0o755)

	list, err := sandbox.Builders(cache)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range list {
		keys = append(keys, b.Key)
	}
	if strings.Join(keys, " ") != "bbb aaa" {
		t.Fatalf("Builders = %v, want [bbb aaa] (most recently used first, incomplete ones left out)", keys)
	}
	removed, err := sandbox.Prune(cache, now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Key != "aaa" {
		t.Fatalf("Prune removed %v, want aaa", removed)
	}
	for _, gone := range []string{"aaa", ".tmp-ddd-123"} {
		if _, err := os.Stat(filepath.Join(cache, "builders", gone)); err == nil {
			t.Errorf("%s still there after Prune", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "builders", "bbb", "builder.json")); err != nil {
		t.Errorf("recently used builder removed: %v", err)
	}
}

// Builders that cannot be made say what would make them possible, before
// anything is downloaded.
func TestPrepareRefusesWhatCannotWork(t *testing.T) {
	tests := []struct {
		name    string
		runner  sandbox.Runner
		target  sandbox.Target
		pkgs    []string
		wantErr string
	}{
		{name: "rpm without mirror or image", runner: &sandbox.Bubblewrap{}, target: sandbox.Target{Name: "rocky-9", Distro: "rocky", Release: "9"},
			wantErr: "needs either the target's container image with --runner docker or podman, or an RPM mirror"},
		{name: "rpm image with bubblewrap", runner: &sandbox.Bubblewrap{}, target: sandbox.Target{Distro: "fedora", Release: "41", Image: "fedora:41"},
			wantErr: "an RPM mirror"},
		{name: "unknown distribution", runner: &sandbox.Bubblewrap{}, target: sandbox.Target{Distro: "plan9", Release: "4"},
			wantErr: `unknown distribution "plan9"`},
		{name: "bad package name", runner: &sandbox.Bubblewrap{}, target: sandbox.Target{Distro: "debian", Release: "bookworm"}, pkgs: []string{"gcc; rm -rf /"},
			wantErr: "is not a package name"},
		{name: "option as package", runner: &sandbox.Bubblewrap{}, target: sandbox.Target{Distro: "debian", Release: "bookworm"}, pkgs: []string{"--allow-unauthenticated"},
			wantErr: "is not a package name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sandbox.Prepare(context.Background(), tt.runner, sandbox.BuilderSpec{Target: tt.target, Packages: tt.pkgs, CacheDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Prepare error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// A target image (here the imported bookworm builder standing in for a
// registry image, as no registry answers on the project's machines) gets
// the packages installed with apt-get and committed as the builder image.
func TestImageBuilderDocker(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.StartDockerd(t)
	r := sandbox.NewDocker()
	if err := r.Available(); err != nil {
		t.Skipf("docker cannot start here: %v", err)
	}
	base := testutil.BookwormBuilder(t, r, testutil.CRIUDebianDeps...)
	target := testutil.BookwormTarget()
	target.Name, target.Image = "image-test", sandbox.ImageTag(base)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log bytes.Buffer
	b, err := sandbox.Prepare(ctx, r, sandbox.BuilderSpec{Target: target, Packages: []string{"gcc", "make", "hello"}, CacheDir: t.TempDir(), Log: &log})
	if err != nil {
		if strings.Contains(log.String(), "Temporary failure resolving") || strings.Contains(log.String(), "Could not connect") {
			t.Skipf("containers do not reach the archive here: %s", log.String())
		}
		t.Fatalf("prepare image builder: %v\n%s", err, log.String())
	}
	if b.Root != "" || b.Image != target.Image || b.ID == "" {
		t.Fatalf("image builder %+v", b)
	}
	var out bytes.Buffer
	if err := r.Run(ctx, sandbox.RunSpec{Builder: b, Cmd: []string{"hello", "-g", "installed"}, Stdout: &out, Stderr: &out}); err != nil || out.String() != "installed\n" {
		t.Fatalf("package installed into the image: %v %q", err, out.String())
	}
	buildHello(t, r, b)
}
