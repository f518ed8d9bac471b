package sandbox

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// IndexTarget is one line of `apt-get indextargets`: where the machine's
// apt configuration fetches a package index from.
type IndexTarget struct {
	RepoURI  string // archive root, e.g. the Debian archive's /debian/
	Release  string // suite as written in the sources: bookworm, bookworm-security
	Origin   string // Origin field of the Release file: Debian, Ubuntu
	TargetOf string // deb or deb-src
}

// indexTargetsFormat asks apt for exactly the fields ParseIndexTargets reads.
const indexTargetsFormat = "$(REPO_URI)\t$(RELEASE)\t$(ORIGIN)\t$(TARGET_OF)"

// MachineIndexTargets reads the machine's apt configuration as apt itself
// sees it (sources.list and sources.list.d, both formats).
func MachineIndexTargets(ctx context.Context) ([]IndexTarget, error) {
	out, err := aptIndexTargets(ctx)
	if err != nil {
		return nil, err
	}
	return ParseIndexTargets(string(out)), nil
}

func aptIndexTargets(ctx context.Context) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "apt-get", "indextargets", "--format", indexTargetsFormat).Output()
	if err != nil {
		return nil, fmt.Errorf("read the machine's apt sources (apt-get indextargets): %w", err)
	}
	return out, nil
}

// ParseIndexTargets parses the output of `apt-get indextargets --format`
// with indexTargetsFormat; malformed lines are skipped.
func ParseIndexTargets(out string) []IndexTarget {
	var targets []IndexTarget
	seen := map[IndexTarget]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 4 {
			continue
		}
		t := IndexTarget{RepoURI: strings.TrimSpace(f[0]), Release: strings.TrimSpace(f[1]), Origin: strings.TrimSpace(f[2]), TargetOf: strings.TrimSpace(f[3])}
		if !validURI(t.RepoURI) || !validWord(t.Release) || t.TargetOf != "deb" || seen[t] {
			continue
		}
		seen[t] = true
		targets = append(targets, t)
	}
	return targets
}

// suiteSuffixes are the companion suites taken over from the machine's
// configuration; backports and proposed are left out on purpose.
var suiteSuffixes = []string{"", "-updates", "-security"}

// components per distribution: Ubuntu keeps several build dependencies
// (libnet1-dev, libbsd-dev) in universe.
func components(distro string) string {
	if distro == "ubuntu" {
		return "main universe"
	}
	return "main"
}

// AptSources returns the one-line apt sources mmdebstrap gets for a
// Debian-family target. A mirror in the target wins; otherwise the archives
// of the target's distribution found in the machine's apt configuration are
// reused with the target's release (and its -updates and -security
// companions when the machine has those).
func AptSources(t Target, machine []IndexTarget) ([]string, error) {
	comps := components(t.Distro)
	if t.Mirror != "" {
		if !validURI(t.Mirror) {
			return nil, fmt.Errorf("target %s: mirror %q is not an http(s), file or copy URI", t.name(), t.Mirror)
		}
		return []string{fmt.Sprintf("deb %s %s %s", t.Mirror, t.Release, comps)}, nil
	}
	origin := map[string]string{"debian": "Debian", "ubuntu": "Ubuntu"}[t.Distro]
	var lines []string
	seen := map[string]bool{}
	base := false
	for _, suffix := range suiteSuffixes {
		if suffix != "" && (t.Release == "sid" || t.Release == "unstable") {
			continue
		}
		for _, it := range machine {
			if it.Origin != origin || !hasSuite(it.Release, suffix) {
				continue
			}
			line := fmt.Sprintf("deb %s %s%s %s", it.RepoURI, t.Release, suffix, comps)
			if !seen[line] {
				seen[line] = true
				lines = append(lines, line)
				base = base || suffix == ""
			}
		}
	}
	if !base {
		return nil, fmt.Errorf("target %s: the machine's apt configuration (apt-get indextargets) names no %s archive: set the target's mirror in the recipe", t.name(), originOr(origin, t.Distro))
	}
	return lines, nil
}

// hasSuite reports whether release is a base suite (suffix "") or the
// suffix companion of one.
func hasSuite(release, suffix string) bool {
	if suffix == "" {
		for _, s := range suiteSuffixes[1:] {
			if strings.HasSuffix(release, s) {
				return false
			}
		}
		return !strings.Contains(release, "-")
	}
	return strings.HasSuffix(release, suffix) && len(release) > len(suffix)
}

func originOr(origin, distro string) string {
	if origin == "" {
		return distro
	}
	return origin
}

// validURI accepts an archive URI that stays one word on an apt source
// line: printable ASCII without spaces or quotes.
func validURI(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("\"'`\\", r) {
			return false
		}
	}
	for _, p := range []string{"http://", "https://", "file:/", "copy:/"} {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return true
		}
	}
	return false
}

// validWord accepts suite and package names: no spaces or shell/apt syntax.
func validWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(".+-_:~", r):
		default:
			return false
		}
	}
	return true
}

// aptConfigPaths are what apt-get indextargets' answer depends on: the
// sources, the configuration, and the downloaded lists (the Origin field
// comes from their Release files).
var aptConfigPaths = []string{"/etc/apt/sources.list", "/etc/apt/sources.list.d", "/etc/apt/apt.conf.d", "/etc/apt/apt.conf", "/var/lib/apt/lists"}

// cachedIndexTargets is MachineIndexTargets remembered in cacheDir while
// the apt configuration is unchanged: apt-get takes about half a second of
// CPU, too much for a no-op rebuild.
func cachedIndexTargets(ctx context.Context, cacheDir string) ([]IndexTarget, error) {
	path := filepath.Join(builderDir(cacheDir), ".apt-indextargets")
	stamp := aptConfigStamp()
	if data, err := os.ReadFile(path); err == nil {
		if head, body, ok := strings.Cut(string(data), "\n"); ok && head == stamp {
			return ParseIndexTargets(body), nil
		}
	}
	out, err := aptIndexTargets(ctx)
	if err != nil {
		return nil, err
	}
	_ = fsutil.WriteFileAtomic(path, append([]byte(stamp+"\n"), out...), 0o644)
	return ParseIndexTargets(string(out)), nil
}

// aptConfigStamp fingerprints the names, sizes and times of aptConfigPaths
// and their entries.
func aptConfigStamp() string {
	h := sha256.New()
	fmt.Fprintln(h, os.Getenv("APT_CONFIG"))
	for _, p := range aptConfigPaths {
		stamp := func(path string) {
			if fi, err := os.Stat(path); err == nil {
				fmt.Fprintln(h, path, fi.Size(), fi.ModTime().UnixNano())
			}
		}
		stamp(p)
		if entries, err := os.ReadDir(p); err == nil && p != "/var/lib/apt/lists" {
			for _, e := range entries {
				stamp(filepath.Join(p, e.Name()))
			}
		}
	}
	return "v1 " + hex.EncodeToString(h.Sum(nil))
}
