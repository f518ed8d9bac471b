package packager

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestDebianResolverWithHostDpkg(t *testing.T) {
	testutil.RequireTool(t, "dpkg-query", "dpkg")
	r := DebianResolver{Run: hostRunner}
	deps, err := r.Resolve(context.Background(), []Needed{{"libc.so.6", true}, {"libz.so.1", true}, {"libm.so.6", true}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"libc.so.6": "libc6", "libz.so.1": "zlib1g", "libm.so.6": "libc6"}
	for so, pkg := range want {
		d := deps[so]
		if d.Package != pkg || d.MinVersion == "" || !strings.HasPrefix(d.ProvidedBy, pkg) {
			t.Errorf("%s -> %+v, want package %s with a minimum version", so, d, pkg)
			continue
		}
		// The lower bound must be satisfied by what the builder has.
		installed := strings.TrimSpace(output(t, nil, "dpkg-query", "-W", "-f", "${Version}", d.ProvidedBy))
		if dpkgNewer(t, d.MinVersion, installed) {
			t.Errorf("%s: minimum %s is above the installed %s", so, d.MinVersion, installed)
		}
	}

	_, err = r.Resolve(context.Background(), []Needed{{"libcriu-forge-nonexistent.so.9", true}})
	if err == nil || !strings.Contains(err.Error(), "libcriu-forge-nonexistent.so.9") {
		t.Errorf("unknown soname: %v", err)
	}
	_, err = r.Resolve(context.Background(), []Needed{{"../../etc/passwd", true}})
	if err == nil || !strings.Contains(err.Error(), "not a plausible library name") {
		t.Errorf("hostile soname: %v", err)
	}
}

func TestPickOwnerAndShlibs(t *testing.T) {
	out := "diversion by foo from: /lib/x86_64-linux-gnu/libz.so.1\n" +
		"libc6-i386: /usr/lib32/libz.so.1\n" +
		"zlib1g:i386: /lib/i386-linux-gnu/libz.so.1\n" +
		"zlib1g:amd64: /lib/x86_64-linux-gnu/libz.so.1\n" +
		"zlib1g-dev:amd64: /usr/share/doc/x/libz.so.1\n"
	got, err := pickOwner(out, "libz.so.1", "amd64")
	if err != nil || got != "zlib1g:amd64" {
		t.Errorf("pickOwner = %q, %v", got, err)
	}
	shlibs := "udeb: libz 1 zlib1g-udeb (>= 1:1.2.3.3.dfsg-1)\nlibz 1 zlib1g (>= 1:1.2.3.3.dfsg-1)\nlibfoo-2.0 0 libfoo0 (>= 2.0) | libfoo-compat\n"
	tests := []struct{ soname, pkg, min string }{
		{"libz.so.1", "zlib1g", "1:1.2.3.3.dfsg-1"},
		{"libfoo-2.0.so", "", ""},
	}
	for _, tt := range tests {
		d, ok := shlibsRelation(shlibs, tt.soname)
		if tt.pkg == "" {
			if ok {
				t.Errorf("%s matched %+v", tt.soname, d)
			}
			continue
		}
		if !ok || d.Package != tt.pkg || d.MinVersion != tt.min {
			t.Errorf("shlibsRelation(%s) = %+v, %v", tt.soname, d, ok)
		}
	}
	if lib, ver := splitSoname("libfoo-2.0.so"); lib != "libfoo" || ver != "2.0" {
		t.Errorf("splitSoname = %s %s", lib, ver)
	}
	if got := debLibPackage("libcriu.so.2"); got != "libcriu2" {
		t.Errorf("debLibPackage = %s", got)
	}
}

// TestRPMResolverWithRealRpm installs (database only) an rpm that
// provides a soname into a private rpm database and asks rpm about it.
func TestRPMResolverWithRealRpm(t *testing.T) {
	testutil.RequireTool(t, "rpm", "rpm")
	dir := t.TempDir()
	lib := filepath.Join(dir, "libdemo.so.1")
	os.WriteFile(lib, []byte("not really a library"), 0o755)
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: "libdemo", Arch: "amd64", Version: "1.2", Release: "3.el9", VersionSchema: "none",
		Description: "demo", MTime: time.Unix(1656028800, 0),
		Overridables: nfpm.Overridables{
			Provides: []string{"libdemo.so.1()(64bit)"},
			Contents: files.Contents{{Source: lib, Destination: "/usr/lib64/libdemo.so.1"}},
		},
	})
	info.RPM.BuildHost = "test"
	var buf bytes.Buffer
	if err := rpm.DefaultRPM.Package(info, &buf); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "libdemo.rpm")
	os.WriteFile(pkg, buf.Bytes(), 0o644)
	db := filepath.Join(dir, "db")
	output(t, nil, "rpm", "--dbpath", db, "-i", "--justdb", "--nodeps", "--nosignature", pkg)

	runner := func(ctx context.Context, args ...string) ([]byte, error) {
		if args[0] == "rpm" {
			args = append([]string{"rpm", "--dbpath", db}, args[1:]...)
		}
		return exec.CommandContext(ctx, args[0], args[1:]...).Output()
	}
	deps, err := RPMResolver{Run: runner}.Resolve(context.Background(), []Needed{{"libdemo.so.1", true}})
	if err != nil {
		t.Fatal(err)
	}
	if d := deps["libdemo.so.1"]; d.Package != "libdemo.so.1()(64bit)" || d.ProvidedBy != "libdemo" || d.Relation(FormatRPM) != "libdemo.so.1()(64bit)" {
		t.Errorf("got %+v", d)
	}
	_, err = RPMResolver{Run: runner}.Resolve(context.Background(), []Needed{{"libdemo.so.1", false}})
	if err == nil || !strings.Contains(err.Error(), "libdemo.so.1()") {
		t.Errorf("a 32-bit need must not match the 64-bit capability: %v", err)
	}
}

func TestNewerMin(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"2.36", "2.34", true}, {"2.34", "2.36", false}, {"1:1.2", "2.0", true}, {"2.10", "2.9", true}, {"", "", false}} {
		if got := newerMin(tt.a, tt.b); got != tt.want {
			t.Errorf("newerMin(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}
