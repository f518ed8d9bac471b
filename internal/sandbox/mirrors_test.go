package sandbox_test

import (
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/sandbox"
)

// machineSources is `apt-get indextargets` output as this kind of machine
// prints it (archive names are placeholders: no host is written here).
const machineSources = "http://archive.invalid/debian/\tbookworm\tDebian\tdeb\n" +
	"http://archive.invalid/debian/\tbookworm\tDebian\tdeb\n" +
	"http://archive.invalid/debian/\tbookworm-updates\tDebian\tdeb\n" +
	"http://security.invalid/debian-security/\tbookworm-security\tDebian\tdeb\n" +
	"http://archive.invalid/debian/\tbookworm\tDebian\tdeb-src\n" +
	"http://archive.invalid/debian/\tbookworm-backports\tDebian\tdeb\n" +
	"broken line\n" +
	"ftp://old.invalid/debian/\tbookworm\tDebian\tdeb\n"

func TestAptSources(t *testing.T) {
	machine := sandbox.ParseIndexTargets(machineSources)
	if len(machine) != 4 {
		t.Fatalf("ParseIndexTargets kept %d entries, want 4: %+v", len(machine), machine)
	}
	tests := []struct {
		name    string
		target  sandbox.Target
		want    []string
		wantErr string
	}{
		{name: "same release", target: sandbox.Target{Distro: "debian", Release: "bookworm"}, want: []string{
			"deb http://archive.invalid/debian/ bookworm main",
			"deb http://archive.invalid/debian/ bookworm-updates main",
			"deb http://security.invalid/debian-security/ bookworm-security main",
		}},
		{name: "other release on the same archives", target: sandbox.Target{Distro: "debian", Release: "trixie"}, want: []string{
			"deb http://archive.invalid/debian/ trixie main",
			"deb http://archive.invalid/debian/ trixie-updates main",
			"deb http://security.invalid/debian-security/ trixie-security main",
		}},
		{name: "sid has no companions", target: sandbox.Target{Distro: "debian", Release: "sid"}, want: []string{
			"deb http://archive.invalid/debian/ sid main",
		}},
		{name: "mirror from the recipe", target: sandbox.Target{Distro: "ubuntu", Release: "noble", Mirror: "http://ubuntu.invalid/ubuntu/"}, want: []string{
			"deb http://ubuntu.invalid/ubuntu/ noble main universe",
		}},
		{name: "no Ubuntu archive here", target: sandbox.Target{Name: "ubuntu-24.04", Distro: "ubuntu", Release: "noble"}, wantErr: "names no Ubuntu archive: set the target's mirror"},
		{name: "bad mirror", target: sandbox.Target{Distro: "debian", Release: "bookworm", Mirror: "http://x/ bookworm main\ndeb http://evil/"}, wantErr: "is not an http(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sandbox.AptSources(tt.target, machine)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Whatever apt prints, the parsed entries are safe to put on an
// mmdebstrap command line as one source line each.
func FuzzParseIndexTargets(f *testing.F) {
	f.Add(machineSources)
	f.Add("http://a/\tb c\tDebian\tdeb\n")
	f.Add("\t\t\t\n")
	f.Fuzz(func(t *testing.T, out string) {
		for _, it := range sandbox.ParseIndexTargets(out) {
			if strings.ContainsAny(it.RepoURI+it.Release, " \t\n\"'") || it.TargetOf != "deb" {
				t.Fatalf("unsafe entry %+v", it)
			}
			lines, err := sandbox.AptSources(sandbox.Target{Distro: "debian", Release: "bookworm"}, []sandbox.IndexTarget{it})
			if err == nil && len(strings.Fields(lines[0])) != 4 {
				t.Fatalf("source line %q is not four words", lines[0])
			}
		}
	})
}
