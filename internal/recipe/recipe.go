// Package recipe loads and validates criu-forge recipes: YAML files that say
// which upstream CRIU to fetch, which patch series to apply, how to build it
// and for which distros to package it.
//
// Validation has two layers. The JSON Schema shipped in recipes/schema.json
// (the one editors use) checks shape; Go checks what a schema cannot say
// (exactly one kind per series entry, known distro releases, local patch
// files that exist and stay inside the patch directory). Every error names
// file:line:column and what is expected.
package recipe

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Recipe is one recipe file.
type Recipe struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description" json:"description,omitempty"`
	PatchesDir  string   `yaml:"patches-dir" json:"patchesDir,omitempty"`
	Runner      string   `yaml:"runner" json:"runner,omitempty"`
	Upstream    Upstream `yaml:"upstream" json:"upstream"`
	Series      []Entry  `yaml:"series" json:"series"`
	Apply       Apply    `yaml:"apply" json:"apply"`
	Build       Build    `yaml:"build" json:"build"`
	Package     Package  `yaml:"package" json:"package"`
	Targets     []Target `yaml:"targets" json:"targets"`

	// Path is the file the recipe was read from.
	Path string `yaml:"-" json:"-"`
}

// Upstream names the release the series applies to.
type Upstream struct {
	Version string   `yaml:"version" json:"version"`
	GitHub  string   `yaml:"github" json:"github,omitempty"`
	Sources []Source `yaml:"sources" json:"sources"`
}

// Source is one way to obtain the upstream release; exactly one field is set.
type Source struct {
	Git          *GitSource     `yaml:"git" json:"git,omitempty"`
	Tarball      *TarballSource `yaml:"tarball" json:"tarball,omitempty"`
	DebianSource *DebianSource  `yaml:"debian-source" json:"debianSource,omitempty"`
}

// Kind names the kind of source: git, tarball or debian-source.
func (s Source) Kind() string {
	switch {
	case s.Git != nil:
		return "git"
	case s.Tarball != nil:
		return "tarball"
	case s.DebianSource != nil:
		return "debian-source"
	}
	return ""
}

// GitSource is a git repository at a ref, optionally pinned to a commit.
type GitSource struct {
	URL    string `yaml:"url" json:"url"`
	Ref    string `yaml:"ref" json:"ref"`
	Commit string `yaml:"commit" json:"commit,omitempty"`
}

// TarballSource is a release tarball with its checksum.
type TarballSource struct {
	URL    string `yaml:"url" json:"url"`
	SHA256 string `yaml:"sha256" json:"sha256"`
}

// DebianSource is the upstream tarball as a Debian source package carries it.
type DebianSource struct {
	Package string `yaml:"package" json:"package"`
	Version string `yaml:"version" json:"version"`
	Suite   string `yaml:"suite" json:"suite"`
	Mirror  string `yaml:"mirror" json:"mirror,omitempty"`
	Keyring string `yaml:"keyring" json:"keyring,omitempty"`
}

// Entry is one element of the patch series; exactly one of PR, Commit,
// Range and Patch is set.
type Entry struct {
	PR      int      `yaml:"pr" json:"pr,omitempty"`
	Commits []string `yaml:"commits" json:"commits,omitempty"`
	Commit  string   `yaml:"commit" json:"commit,omitempty"`
	Range   string   `yaml:"range" json:"range,omitempty"`
	Patch   string   `yaml:"patch" json:"patch,omitempty"`
	Repo    string   `yaml:"repo" json:"repo,omitempty"`
	Until   string   `yaml:"until" json:"until,omitempty"`
	Note    string   `yaml:"note" json:"note,omitempty"`
}

// Kind names the kind of entry: pr, commit, range or patch.
func (e Entry) Kind() string {
	switch {
	case e.PR != 0:
		return "pr"
	case e.Commit != "":
		return "commit"
	case e.Range != "":
		return "range"
	case e.Patch != "":
		return "patch"
	}
	return ""
}

// String names the entry the way messages and changelogs show it.
func (e Entry) String() string {
	switch e.Kind() {
	case "pr":
		if e.Repo != "" {
			return fmt.Sprintf("PR %s#%d", e.Repo, e.PR)
		}
		return fmt.Sprintf("PR #%d", e.PR)
	case "commit":
		return "commit " + e.Commit
	case "range":
		return "range " + e.Range
	case "patch":
		return "patch " + e.Patch
	}
	return "empty entry"
}

// Apply says how strictly the series applies.
type Apply struct {
	Fuzz   int  `yaml:"fuzz" json:"fuzz,omitempty"`
	Strict bool `yaml:"strict" json:"strict,omitempty"`
}

// Build is the build section.
type Build struct {
	Deps     map[string][]string `yaml:"deps" json:"deps,omitempty"`
	MakeVars map[string]string   `yaml:"make-vars" json:"makeVars,omitempty"`
	Steps    []string            `yaml:"steps" json:"steps,omitempty"`
}

// Package is the package metadata.
type Package struct {
	Name        string              `yaml:"name" json:"name"`
	Mode        string              `yaml:"mode" json:"mode"`
	Split       string              `yaml:"split" json:"split"`
	Revision    int                 `yaml:"revision" json:"revision"`
	Maintainer  string              `yaml:"maintainer" json:"maintainer,omitempty"`
	Homepage    string              `yaml:"homepage" json:"homepage,omitempty"`
	License     string              `yaml:"license" json:"license,omitempty"`
	Vendor      string              `yaml:"vendor" json:"vendor,omitempty"`
	Summary     string              `yaml:"summary" json:"summary,omitempty"`
	Description string              `yaml:"description" json:"description,omitempty"`
	Depends     map[string][]string `yaml:"depends" json:"depends,omitempty"`
}

// Target is one distro release and architecture to build for.
type Target struct {
	Distro  string   `yaml:"distro" json:"distro"`
	Release string   `yaml:"release" json:"release"`
	Arch    string   `yaml:"arch" json:"arch"`
	Formats []string `yaml:"formats" json:"formats"`
	Mirror  string   `yaml:"mirror" json:"mirror,omitempty"`
	Image   string   `yaml:"image" json:"image,omitempty"`
}

// ID names the target on the command line and in output folders:
// debian-12, or debian-12-arm64 for an architecture other than amd64.
func (t Target) ID() string {
	id := t.Distro + "-" + t.Release
	if t.Arch != "" && t.Arch != "amd64" {
		id += "-" + t.Arch
	}
	return id
}

// Family is the package family of the target's distro: deb or rpm.
func (t Target) Family() string { return distros[t.Distro].family }

// Codename is the release's codename (bookworm, noble), or "" for the RPM
// family, whose releases have none.
func (t Target) Codename() string { return distros[t.Distro].releases[t.Release] }

// Matches reports whether a --target argument names this target: its ID,
// or distro-release-arch spelled out.
func (t Target) Matches(arg string) bool {
	return arg == t.ID() || arg == t.Distro+"-"+t.Release+"-"+t.Arch
}

// Dir is the folder of the recipe file.
func (r *Recipe) Dir() string { return filepath.Dir(r.Path) }

// PatchDir is where the recipe's local patches and lock live.
func (r *Recipe) PatchDir() string {
	if r.PatchesDir != "" {
		return filepath.Join(r.Dir(), r.PatchesDir)
	}
	return filepath.Join(r.Dir(), "..", "patches", r.Name)
}

// LockPath is the series lock of the recipe.
func (r *Recipe) LockPath() string { return filepath.Join(r.PatchDir(), "series.lock") }

// GitHubRepo returns owner and name for pull requests of entry e: the
// entry's repo, else upstream.github, else the first github.com git URL.
func (r *Recipe) GitHubRepo(e Entry) (owner, name string, ok bool) {
	repo := e.Repo
	if repo == "" {
		repo = r.Upstream.GitHub
	}
	if repo == "" {
		for _, s := range r.Upstream.Sources {
			if s.Git != nil {
				if o, n, found := githubFromURL(s.Git.URL); found {
					return o, n, true
				}
			}
		}
		return "", "", false
	}
	owner, name, ok = strings.Cut(repo, "/")
	return owner, name, ok
}

func githubFromURL(url string) (owner, name string, ok bool) {
	for _, prefix := range []string{"https://github.com/", "http://github.com/", "git@github.com:", "ssh://git@github.com/"} {
		if rest, found := strings.CutPrefix(url, prefix); found {
			owner, name, ok = strings.Cut(strings.TrimSuffix(strings.TrimSuffix(rest, "/"), ".git"), "/")
			return owner, name, ok && owner != "" && name != "" && !strings.Contains(name, "/")
		}
	}
	return "", "", false
}

// SelectTargets returns the targets named by args (all when args is empty),
// or an error naming an argument that matches none and listing the others.
func (r *Recipe) SelectTargets(args []string) ([]Target, error) {
	if len(args) == 0 {
		return r.Targets, nil
	}
	var out []Target
	for _, a := range args {
		found := false
		for _, t := range r.Targets {
			if t.Matches(a) {
				out = append(out, t)
				found = true
			}
		}
		if !found {
			var ids []string
			for _, t := range r.Targets {
				ids = append(ids, t.ID())
			}
			return nil, fmt.Errorf("recipe %s has no target %q; its targets: %s", r.Name, a, strings.Join(ids, ", "))
		}
	}
	return out, nil
}

type distro struct {
	family   string
	releases map[string]string // release -> codename ("" when the distro has none)
}

// distros lists what criu-forge knows how to build for. A release missing
// here is an error in lint, with the known releases listed.
var distros = map[string]distro{
	"debian":    {"deb", map[string]string{"11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky", "sid": "sid"}},
	"ubuntu":    {"deb", map[string]string{"20.04": "focal", "22.04": "jammy", "24.04": "noble", "25.04": "plucky", "25.10": "questing"}},
	"rocky":     {"rpm", map[string]string{"8": "", "9": "", "10": ""}},
	"rhel":      {"rpm", map[string]string{"8": "", "9": "", "10": ""}},
	"almalinux": {"rpm", map[string]string{"8": "", "9": "", "10": ""}},
	"fedora":    {"rpm", map[string]string{"40": "", "41": "", "42": "", "43": ""}},
}

func knownReleases(d string) string {
	var rs []string
	for r := range distros[d].releases {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	return strings.Join(rs, ", ")
}
