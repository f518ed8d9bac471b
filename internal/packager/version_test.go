package packager

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func mustVersion(t *testing.T, up string, series, build int, tg Target) Version {
	t.Helper()
	v, err := MakeVersion(up, series, build, tg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	bookworm = Target{"debian", "12", "amd64"}
	noble    = Target{"ubuntu", "24.04", "amd64"}
	el9      = Target{"rocky", "9", "amd64"}
	fc41     = Target{"fedora", "41", "amd64"}
)

func TestMakeVersionStrings(t *testing.T) {
	tests := []struct {
		up            string
		series, build int
		target        Target
		deb, rpm      string
	}{
		{"4.2.1", 3, 1, bookworm, "4.2.1+forge3-1~deb12", "4.2.1+forge3-1.deb12"},
		{"4.2.1", 3, 2, noble, "4.2.1+forge3-2~ubuntu24.04", "4.2.1+forge3-2.ubuntu24.04"},
		{"v3.19", 1, 1, Target{"rhel", "9.4", "amd64"}, "3.19+forge1-1~el9", "3.19+forge1-1.el9"},
		{"3.19", 1, 1, el9, "3.19+forge1-1~el9rocky", "3.19+forge1-1.el9.rocky"},
		{"3.19", 1, 1, Target{"almalinux", "9", "amd64"}, "3.19+forge1-1~el9alma", "3.19+forge1-1.el9.alma"},
		{"4.2-rc1", 1, 1, fc41, "4.2~rc1+forge1-1~fc41", "4.2~rc1+forge1-1.fc41"},
	}
	for _, tt := range tests {
		v := mustVersion(t, tt.up, tt.series, tt.build, tt.target)
		if v.Deb != tt.deb || v.For(FormatRPM) != tt.rpm {
			t.Errorf("MakeVersion(%s, %d, %d, %s) = %s / %s, want %s / %s", tt.up, tt.series, tt.build, tt.target, v.Deb, v.For(FormatRPM), tt.deb, tt.rpm)
		}
	}
}

func TestMakeVersionRejects(t *testing.T) {
	tests := []struct {
		up            string
		series, build int
		target        Target
		want          string
	}{
		{"4.2.1 ", 1, 1, bookworm, "upstream version"},
		{"", 1, 1, bookworm, "upstream version"},
		{"4.2.1", 0, 1, bookworm, "series revision"},
		{"4.2.1", 1, 0, bookworm, "build revision"},
		{"4.2.1", 1, 1, Target{"arch", "1", "amd64"}, "unknown distro"},
		{"4.2.1", 1, 1, Target{"debian", "bookworm", "amd64"}, "not a number"},
	}
	for _, tt := range tests {
		_, err := MakeVersion(tt.up, tt.series, tt.build, tt.target)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("MakeVersion(%q, %d, %d, %s) = %v, want error containing %q", tt.up, tt.series, tt.build, tt.target, err, tt.want)
		}
	}
}

// dpkgNewer asks dpkg itself whether a > b.
func dpkgNewer(t *testing.T, a, b string) bool {
	t.Helper()
	err := exec.Command("dpkg", "--compare-versions", a, "gt", b).Run()
	if _, ok := err.(*exec.ExitError); ok {
		return false
	}
	if err != nil {
		t.Fatalf("dpkg --compare-versions %s gt %s: %v", a, b, err)
	}
	return true
}

// rpmNewer asks rpm's own rpmvercmp (through its Lua interface) whether
// the EVR a > b.
func rpmNewer(t *testing.T, a, b string) bool {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), "rpm", "--eval", fmt.Sprintf(`%%{lua: print(rpm.vercmp(%q, %q))}`, a, b)).Output()
	if err != nil {
		t.Fatalf("rpm vercmp %s %s: %v", a, b, err)
	}
	return strings.TrimSpace(string(out)) == "1"
}

func TestDebVersionOrderWithDpkg(t *testing.T) {
	testutil.RequireTool(t, "dpkg", "dpkg")
	ours := func(up string, s, b int, tg Target) string { return mustVersion(t, up, s, b, tg).Deb }
	tests := []struct {
		name         string
		newer, older string
	}{
		{"above bookworm's criu", ours("3.17.1", 1, 1, bookworm), "3.17.1-2+deb12u2"},
		{"above trixie's criu", ours("4.1.1", 1, 1, Target{"debian", "13", "amd64"}), "4.1.1-1"},
		{"above sid's criu", ours("4.2.1", 1, 1, bookworm), "4.2.1-1"},
		{"above a later distro revision", ours("4.2.1", 1, 1, bookworm), "4.2.1-7"},
		{"above a binNMU", ours("4.2.1", 1, 1, bookworm), "4.2.1-1+b3"},
		{"above an Ubuntu revision", ours("4.2.1", 1, 1, noble), "4.2.1-1ubuntu2"},
		{"above a security update", ours("3.17.1", 1, 1, bookworm), "3.17.1-2+deb12u9"},
		{"above a dfsg repack", ours("4.2.1", 1, 1, bookworm), "4.2.1+dfsg-1"},
		{"below the next upstream", "4.2.2-1", ours("4.2.1", 9, 9, bookworm)},
		{"below the next point release", "4.2.1.1-1", ours("4.2.1", 9, 9, bookworm)},
		{"series rises", ours("4.2.1", 4, 1, bookworm), ours("4.2.1", 3, 1, bookworm)},
		{"series rises past 9", ours("4.2.1", 10, 1, bookworm), ours("4.2.1", 9, 1, bookworm)},
		{"series beats build", ours("4.2.1", 4, 1, bookworm), ours("4.2.1", 3, 7, bookworm)},
		{"build rises", ours("4.2.1", 3, 2, bookworm), ours("4.2.1", 3, 1, bookworm)},
		{"upstream beats series", ours("4.2.2", 1, 1, bookworm), ours("4.2.1", 12, 1, bookworm)},
		{"rc below release", ours("4.2", 1, 1, bookworm), ours("4.2-rc1", 5, 1, bookworm)},
		{"distro upgrade 12 -> 13 does not downgrade", ours("4.2.1", 3, 1, Target{"debian", "13", "amd64"}), ours("4.2.1", 3, 1, bookworm)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !dpkgNewer(t, tt.newer, tt.older) {
				t.Errorf("dpkg says %s is not newer than %s", tt.newer, tt.older)
			}
		})
	}
}

func TestRPMVersionOrderWithRpm(t *testing.T) {
	testutil.RequireTool(t, "rpm", "rpm")
	ours := func(up string, s, b int, tg Target) string { return mustVersion(t, up, s, b, tg).For(FormatRPM) }
	tests := []struct {
		name         string
		newer, older string
	}{
		{"above EL9's criu", ours("3.19", 1, 1, el9), "3.19-1.el9"},
		{"above a later EL9 release", ours("3.19", 1, 1, el9), "3.19-5.el9_4"},
		{"above EL9 4.1.1", ours("4.1.1", 1, 1, el9), "4.1.1-1.el9"},
		{"above Fedora's criu", ours("4.2.1", 1, 1, fc41), "4.2.1-1.fc41"},
		{"above a Fedora rebuild", ours("4.2.1", 1, 1, fc41), "4.2.1-3.fc41"},
		{"below the next upstream", "4.2.2-1.fc41", ours("4.2.1", 9, 9, fc41)},
		{"below the next point release", "4.2.1.1-1.el9", ours("4.2.1", 9, 9, el9)},
		{"series rises", ours("4.2.1", 4, 1, el9), ours("4.2.1", 3, 1, el9)},
		{"series rises past 9", ours("4.2.1", 10, 1, el9), ours("4.2.1", 9, 1, el9)},
		{"series beats build", ours("4.2.1", 4, 1, el9), ours("4.2.1", 3, 7, el9)},
		{"build rises", ours("4.2.1", 3, 2, el9), ours("4.2.1", 3, 1, el9)},
		{"rc below release", ours("4.2", 1, 1, fc41), ours("4.2-rc1", 5, 1, fc41)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !rpmNewer(t, tt.newer, tt.older) {
				t.Errorf("rpm says %s is not newer than %s", tt.newer, tt.older)
			}
		})
	}
}

func TestTargetsNeverShareAFileName(t *testing.T) {
	targets := []Target{bookworm, {"debian", "13", "amd64"}, noble, {"ubuntu", "22.04", "amd64"},
		{"rhel", "9", "amd64"}, el9, {"almalinux", "9", "amd64"}, {"rocky", "8", "amd64"}, fc41, {"fedora", "42", "amd64"}}
	seen := map[string]Target{}
	for _, tg := range targets {
		v := mustVersion(t, "4.2.1", 1, 1, tg)
		for _, name := range []string{fileName(FormatDeb, "criu", v, tg.Arch), fileName(FormatRPM, "criu", v, tg.Arch)} {
			if prev, ok := seen[name]; ok {
				t.Errorf("%s and %s both make %s", prev, tg, name)
			}
			seen[name] = tg
		}
	}
}
