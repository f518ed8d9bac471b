package recipe

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

var hexCommit = regexp.MustCompile(`^[0-9a-f]{7,40}$`)

// check applies the rules a schema cannot state, and fills in defaults.
func (v *validator) check(r *Recipe) {
	at := func(parts ...any) []string {
		out := make([]string, len(parts))
		for i, p := range parts {
			out[i] = fmt.Sprint(p)
		}
		return out
	}

	for i, s := range r.Upstream.Sources {
		if g := s.Git; g != nil && g.Commit != "" && hexCommit.MatchString(g.Ref) && len(g.Ref) == 40 && !strings.HasPrefix(g.Ref, g.Commit) {
			v.errorAt(at("upstream", "sources", i, "git", "commit"), fmt.Sprintf("ref %s is itself a commit and differs from commit %s", g.Ref, g.Commit))
		}
	}

	hasPR := false
	for i, e := range r.Series {
		set := 0
		for _, ok := range []bool{e.PR != 0, e.Commit != "", e.Range != "", e.Patch != ""} {
			if ok {
				set++
			}
		}
		switch {
		case set == 0:
			v.errorAt(at("series", i), "a series entry needs one of: pr, commit, range, patch")
			continue
		case set > 1:
			v.errorAt(at("series", i), "a series entry takes only one of: pr, commit, range, patch (make two entries)")
			continue
		}
		if e.Range != "" && (strings.Contains(e.Range, "...") || strings.Count(e.Range, "..") != 1) {
			v.errorAt(at("series", i, "range"), fmt.Sprintf("range %q must be FROM..TO (two dots, once)", e.Range))
		}
		if len(e.Commits) > 0 && e.PR == 0 {
			v.errorAt(at("series", i, "commits"), "commits selects commits of a pull request; it goes with pr")
		}
		if e.PR != 0 {
			hasPR = true
		}
		if e.Patch != "" {
			v.checkPatchFile(r, at("series", i, "patch"), e.Patch)
		}
		if e.Until != "" && CompareVersions(r.Upstream.Version, e.Until) >= 0 {
			v.warnAt(at("series", i, "until"), fmt.Sprintf("upstream %s already contains this change (needed only before %s): the entry is skipped; drop it", r.Upstream.Version, strings.TrimPrefix(e.Until, "v")))
		}
	}
	if hasPR {
		for i, e := range r.Series {
			if e.PR != 0 {
				if _, _, ok := r.GitHubRepo(e); !ok {
					v.errorAt(at("series", i, "pr"), "pull requests need a GitHub repository: set upstream.github (owner/name) or the entry's repo")
				}
			}
		}
	}

	if r.Package.Name == "" {
		r.Package.Name = "criu"
	}
	if r.Package.Mode == "" {
		r.Package.Mode = "replace"
	}
	if r.Package.Split == "" {
		r.Package.Split = "single"
	}
	if r.Package.Revision == 0 {
		r.Package.Revision = 1
	}
	if r.Package.Mode == "distinct" && r.Package.Name == "criu" {
		v.errorAt(at("package", "mode"), "mode distinct needs a package name other than criu (for example criu-pidfd)")
	}
	if r.Package.Mode == "replace" && r.Package.Name != "criu" {
		v.warnAt(at("package", "name"), fmt.Sprintf("mode replace with name %q: the package will not upgrade the distro's criu; use mode distinct or name criu", r.Package.Name))
	}

	seen := map[string]int{}
	for i := range r.Targets {
		t := &r.Targets[i]
		d, ok := distros[t.Distro]
		if !ok {
			continue // the schema already named it
		}
		if _, ok := d.releases[t.Release]; !ok {
			v.errorAt(at("targets", i, "release"), fmt.Sprintf("unknown %s release %q; known: %s", t.Distro, t.Release, knownReleases(t.Distro)))
		}
		switch t.Arch {
		case "":
			t.Arch = "amd64"
		case "x86_64":
			t.Arch = "amd64"
		case "aarch64":
			t.Arch = "arm64"
		}
		if len(t.Formats) == 0 {
			t.Formats = []string{d.family}
		}
		for j, f := range t.Formats {
			if f != d.family {
				v.errorAt(at("targets", i, "formats", j), fmt.Sprintf("%s packages %s, not %s", t.Distro, d.family, f))
			}
		}
		if prev, dup := seen[t.ID()]; dup {
			v.errorAt(at("targets", i), fmt.Sprintf("target %s is listed twice (also targets[%d])", t.ID(), prev))
		}
		seen[t.ID()] = i
		if len(r.Build.Deps[d.family]) == 0 && len(r.Build.Steps) == 0 {
			v.warnAt(at("targets", i), fmt.Sprintf("no build.deps.%s for %s: the builder will have only a minimal system", d.family, t.ID()))
		}
	}
}

// checkPatchFile checks that a local patch names a file inside the patch
// directory that exists.
func (v *validator) checkPatchFile(r *Recipe, path []string, name string) {
	full, err := fsutil.SafeJoin(r.PatchDir(), name)
	if err != nil {
		v.errorAt(path, fmt.Sprintf("patch %q must be a file inside %s: %v", name, r.PatchDir(), err))
		return
	}
	if err := fsutil.InsideRoot(r.PatchDir(), full); err != nil {
		v.errorAt(path, fmt.Sprintf("patch %q: %v", name, err))
		return
	}
	fi, err := os.Stat(full)
	if err != nil {
		v.errorAt(path, fmt.Sprintf("patch file %s not found; local patches live in %s", full, r.PatchDir()))
		return
	}
	if !fi.Mode().IsRegular() {
		v.errorAt(path, fmt.Sprintf("patch %s is not a regular file", full))
	}
}

// CompareVersions compares dotted numeric versions (4.1, v4.2.1): -1, 0, 1.
// A missing part counts as 0, so 4.1 equals 4.1.0.
func CompareVersions(a, b string) int {
	pa := strings.Split(strings.TrimPrefix(a, "v"), ".")
	pb := strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
