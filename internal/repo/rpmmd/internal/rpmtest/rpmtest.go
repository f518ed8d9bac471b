// Package rpmtest builds small, real .rpm files with nfpm (the packager
// criu-forge itself uses) for the rpmmd tests and benchmarks.
package rpmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// Spec describes a package to build. Files maps destination paths to
// content; Dirs, Ghosts and Symlinks (destination -> target) add entries of
// those kinds.
type Spec struct {
	Name, Version, Release, Epoch string
	Arch                          string // nfpm/Go name, e.g. amd64; default amd64
	Files                         map[string]string
	Config                        map[string]string
	Dirs, Ghosts                  []string
	Symlinks                      map[string]string
	Requires, Provides, Conflicts []string
	Obsoletes                     []string // nfpm "replaces"
	Recommends, Suggests          []string
	Changelog                     []Change
	Summary, Description          string
	PostInstall                   string // script body; makes rpm add /bin/sh requires
	SignKeyFile                   string // OpenPGP secret key to sign the package with (see SigningKey)
	Time                          time.Time
}

// Change is one changelog entry.
type Change struct {
	Version, Packager string
	Date              time.Time
	Notes             []string
}

// FileName is the conventional name of the package's file.
func (s Spec) FileName() string {
	arch := map[string]string{"": "x86_64", "amd64": "x86_64", "arm64": "aarch64", "all": "noarch"}[s.Arch]
	if arch == "" {
		arch = s.Arch
	}
	rel := s.Release
	if rel == "" {
		rel = "1"
	}
	return fmt.Sprintf("%s-%s-%s.%s.rpm", s.Name, s.Version, rel, arch)
}

// Build writes the package into dir and returns its path. Sources and the
// changelog are staged in a temporary folder below dir's parent that is
// removed afterwards.
func Build(dir string, s Spec) (string, error) {
	work, err := os.MkdirTemp("", "rpmtest-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	mtime := s.Time
	if mtime.IsZero() {
		mtime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	var contents files.Contents
	n := 0
	stage := func(content string) (string, error) {
		n++
		p := filepath.Join(work, fmt.Sprintf("src%d", n))
		return p, os.WriteFile(p, []byte(content), 0o644)
	}
	for dst, content := range s.Files {
		src, err := stage(content)
		if err != nil {
			return "", err
		}
		mode := os.FileMode(0o644)
		if strings.Contains(dst, "bin/") {
			mode = 0o755
		}
		contents = append(contents, &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode, MTime: mtime}})
	}
	for dst, content := range s.Config {
		src, err := stage(content)
		if err != nil {
			return "", err
		}
		contents = append(contents, &files.Content{Source: src, Destination: dst, Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: mtime}})
	}
	for _, d := range s.Dirs {
		contents = append(contents, &files.Content{Destination: d, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755, MTime: mtime}})
	}
	for _, g := range s.Ghosts {
		contents = append(contents, &files.Content{Destination: g, Type: files.TypeRPMGhost, FileInfo: &files.ContentFileInfo{Mode: 0o644, MTime: mtime}})
	}
	for dst, target := range s.Symlinks {
		contents = append(contents, &files.Content{Source: target, Destination: dst, Type: files.TypeSymlink, FileInfo: &files.ContentFileInfo{MTime: mtime}})
	}
	info := &nfpm.Info{
		Name:          s.Name,
		Arch:          or(s.Arch, "amd64"),
		Platform:      "linux",
		Epoch:         s.Epoch,
		Version:       s.Version,
		VersionSchema: "none",
		Release:       or(s.Release, "1"),
		Maintainer:    "criu-forge tests <tests@example.org>",
		Description:   or(s.Description, "Test package "+s.Name+"\nwith a second line & <markup>."),
		Vendor:        "criu-forge",
		Homepage:      "https://example.org/" + s.Name,
		License:       "GPL-2.0-only",
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			Depends:    s.Requires,
			Provides:   s.Provides,
			Conflicts:  s.Conflicts,
			Replaces:   s.Obsoletes,
			Recommends: s.Recommends,
			Suggests:   s.Suggests,
			Contents:   contents,
			RPM: nfpm.RPM{
				Summary:   or(s.Summary, "Test package "+s.Name),
				Group:     "Applications/System",
				BuildHost: "build.example.org",
			},
		},
	}
	if s.SignKeyFile != "" {
		info.RPM.Signature.KeyFile = s.SignKeyFile
	}
	if s.PostInstall != "" {
		p := filepath.Join(work, "postinst.sh")
		if err := os.WriteFile(p, []byte(s.PostInstall), 0o755); err != nil {
			return "", err
		}
		info.Scripts.PostInstall = p
	}
	if len(s.Changelog) > 0 {
		p := filepath.Join(work, "changelog.yaml")
		if err := os.WriteFile(p, []byte(changelogYAML(s.Changelog)), 0o644); err != nil {
			return "", err
		}
		info.Changelog = p
	}
	info = nfpm.WithDefaults(info)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, s.FileName())
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	if err := rpm.DefaultRPM.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return "", fmt.Errorf("nfpm %s: %w", s.Name, err)
	}
	return out, f.Close()
}

func changelogYAML(changes []Change) string {
	var b strings.Builder
	for _, c := range changes {
		fmt.Fprintf(&b, "- semver: %q\n  date: %q\n  packager: %q\n  changes:\n", c.Version, c.Date.UTC().Format(time.RFC3339), c.Packager)
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "    - note: %q\n", n)
		}
	}
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// CorpusSpec is the i-th package of a benchmark corpus: small, with a few
// files, dependencies and a changelog, like a typical split package.
func CorpusSpec(i int) Spec {
	name := fmt.Sprintf("bench-pkg-%04d", i)
	return Spec{
		Name: name, Version: fmt.Sprintf("1.0.%d", i), Release: "1",
		Files: map[string]string{
			"/usr/bin/" + name:                     "#!/bin/sh\necho " + name + "\n",
			"/usr/share/doc/" + name + "/README":   "about " + name + "\n",
			"/usr/lib64/" + name + "/data.txt":     strings.Repeat("data ", 20),
			"/usr/share/man/man1/" + name + ".1":   ".TH " + name + "\n",
			"/usr/share/" + name + "/defaults.cfg": "x=1\n",
		},
		Config:    map[string]string{"/etc/" + name + ".conf": "# " + name + "\n"},
		Dirs:      []string{"/var/lib/" + name},
		Requires:  []string{"bash", "libc.so.6()(64bit)", fmt.Sprintf("bench-pkg-%04d >= 1.0", i/2)},
		Provides:  []string{name + "-virtual = 1.0"},
		Changelog: []Change{{Version: "1.0-1", Packager: "Bench <bench@example.org>", Date: time.Date(2025, 1, 1+i%28, 0, 0, 0, 0, time.UTC), Notes: []string{"first release"}}},
	}
}

// Corpus builds packages first..first+n-1 of the benchmark corpus into dir,
// reusing those already there, and returns their paths. All get one fixed
// mtime so metadata made from them is reproducible.
func Corpus(dir string, first, n, workers int) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	paths := make([]string, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				s := CorpusSpec(first + i)
				p := filepath.Join(dir, s.FileName())
				if _, err := os.Stat(p); err != nil {
					tmp := filepath.Join(dir, ".build-"+s.Name)
					built, err := Build(tmp, s)
					if err == nil {
						err = os.Rename(built, p)
					}
					os.RemoveAll(tmp)
					if err != nil {
						errs[i] = err
						continue
					}
				}
				paths[i], errs[i] = p, os.Chtimes(p, mtime, mtime)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return paths, errors.Join(errs...)
}
