package packager

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Runner runs a command (args[0] and its arguments) inside the target's
// builder and returns its standard output. The build stage's sandbox
// provides it; tests run the host's own tools.
type Runner func(ctx context.Context, args ...string) ([]byte, error)

// Needed is one shared library a packaged ELF file asks for.
type Needed struct {
	Soname string // "libc.so.6"
	ELF64  bool   // asked for by a 64-bit ELF (rpm names it "libc.so.6()(64bit)")
}

// Dependency is what a soname maps to in the package metadata.
type Dependency struct {
	Soname string `json:"soname"`
	// Package is the name written into Depends/Requires: a Debian package
	// name, or for rpm the soname capability ("libz.so.1()(64bit)") exactly
	// as rpm's automatic requires write it.
	Package string `json:"package"`
	// MinVersion, when set, makes the relation ">= MinVersion".
	MinVersion string `json:"min_version,omitempty"`
	// ProvidedBy is the builder's package that provides the library.
	ProvidedBy string `json:"provided_by,omitempty"`
}

// Relation renders the dependency in the form nfpm takes for both formats
// ("libc6 (>= 2.36)" style is translated by nfpm for rpm).
func (d Dependency) Relation(format string) string {
	if d.MinVersion == "" {
		return d.Package
	}
	if format == FormatRPM {
		return d.Package + " >= " + d.MinVersion
	}
	return d.Package + " (>= " + d.MinVersion + ")"
}

// LibraryResolver maps sonames to the packages of the target distro that
// provide them, the way dpkg-shlibdeps or rpm's automatic requires would.
type LibraryResolver interface {
	Resolve(ctx context.Context, needs []Needed) (map[string]Dependency, error)
}

// sonameRE is what a soname taken from an (untrusted) ELF file must look
// like before it goes into a command line or package metadata.
var sonameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*\.so(\.[0-9A-Za-z._+-]+)?$|^[A-Za-z0-9_][A-Za-z0-9._+-]*-[0-9][0-9.]*\.so$`)

func checkSoname(s string) error {
	if len(s) > 200 || !sonameRE.MatchString(s) {
		return fmt.Errorf("DT_NEEDED entry %q is not a plausible library name", s)
	}
	return nil
}

// DebianResolver resolves sonames with the builder's dpkg database: the
// package that owns the library file (dpkg-query -S), then its shlibs
// control file (the dependency dpkg-shlibdeps would write, such as
// "libc6 (>= 2.36)"); without a shlibs entry, the installed version as the
// lower bound.
type DebianResolver struct{ Run Runner }

// Resolve implements LibraryResolver.
func (r DebianResolver) Resolve(ctx context.Context, needs []Needed) (map[string]Dependency, error) {
	arch := ""
	if out, err := r.Run(ctx, "dpkg", "--print-architecture"); err == nil {
		arch = strings.TrimSpace(string(out))
	}
	args := []string{"dpkg-query", "-S"}
	for _, n := range needs {
		if err := checkSoname(n.Soname); err != nil {
			return nil, err
		}
		args = append(args, "*/"+n.Soname)
	}
	// One dpkg-query for all sonames (each call reads the whole database);
	// it fails when any is unknown, and the per-soname calls below then
	// name the missing one.
	batch, batchErr := r.Run(ctx, args...)
	deps := map[string]Dependency{}
	for _, n := range needs {
		out := batch
		if batchErr != nil {
			var err error
			if out, err = r.Run(ctx, "dpkg-query", "-S", "*/"+n.Soname); err != nil {
				return nil, fmt.Errorf("find the package of %s in the builder (dpkg-query -S): %w: install the library's package in the builder, or set a Depends override", n.Soname, err)
			}
		}
		owner, err := pickOwner(string(out), n.Soname, arch)
		if err != nil {
			return nil, err
		}
		dep := Dependency{Soname: n.Soname, Package: stripArch(owner), ProvidedBy: owner}
		shlibs, err := r.Run(ctx, "dpkg-query", "--control-show", owner, "shlibs")
		if rel, ok := shlibsRelation(string(shlibs), n.Soname); err == nil && ok {
			dep.Package, dep.MinVersion = rel.Package, rel.MinVersion
		} else {
			ver, err := r.Run(ctx, "dpkg-query", "-W", "-f", "${Version}", owner)
			if err != nil {
				return nil, fmt.Errorf("version of %s in the builder (dpkg-query -W): %w", owner, err)
			}
			dep.MinVersion = strings.TrimSpace(string(ver))
		}
		deps[n.Soname] = dep
	}
	return deps, nil
}

// pickOwner chooses, among the dpkg-query -S answers for */soname, the
// package of the native architecture that ships it in a library directory
// (multiarch directories first), as the dynamic linker would find it.
func pickOwner(out, soname, arch string) (string, error) {
	type cand struct {
		pkg  string
		rank int
	}
	var cands []cand
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "diversion by") || strings.HasPrefix(line, "local diversion") {
			continue
		}
		pkgs, file, ok := strings.Cut(line, ": ")
		if !ok || path.Base(file) != soname {
			continue
		}
		rank := libDirRank(path.Dir(file))
		if rank < 0 {
			continue
		}
		for _, p := range strings.Split(pkgs, ", ") {
			if _, a, ok := strings.Cut(p, ":"); ok && arch != "" && a != arch && a != "all" {
				continue
			}
			cands = append(cands, cand{p, rank})
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("no package in the builder ships %s in a library directory: install it there, or set a Depends override", soname)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].rank < cands[j].rank })
	return cands[0].pkg, nil
}

// libDirRank orders the directories the dynamic linker searches; -1 means
// not a library directory.
func libDirRank(dir string) int {
	dir = strings.TrimPrefix(dir, "/usr")
	switch {
	case strings.HasPrefix(dir, "/lib/") && strings.Contains(dir, "-linux-") && strings.Count(dir, "/") == 2:
		return 0
	case dir == "/lib64":
		return 1
	case dir == "/lib":
		return 2
	}
	return -1
}

func stripArch(pkg string) string { name, _, _ := strings.Cut(pkg, ":"); return name }

// shlibsRelation finds the soname in a shlibs control file and returns its
// dependency (the first alternative of it).
func shlibsRelation(shlibs, soname string) (Dependency, bool) {
	lib, ver := splitSoname(soname)
	for _, line := range strings.Split(shlibs, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasSuffix(f[0], ":") { // "udeb: ..." lines are for the installer
			continue
		}
		if f[0] != lib || f[1] != ver {
			continue
		}
		first, _, _ := strings.Cut(strings.Join(f[2:], " "), "|")
		first, _, _ = strings.Cut(first, ",")
		name, rest, _ := strings.Cut(strings.TrimSpace(first), " ")
		min := ""
		if v, ok := strings.CutPrefix(strings.TrimSpace(rest), "(>="); ok {
			min = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), ")"))
		}
		return Dependency{Soname: soname, Package: name, MinVersion: min}, true
	}
	return Dependency{}, false
}

// splitSoname splits a soname the way shlibs files key it:
// libfoo.so.1.2 -> (libfoo, 1.2); libfoo-1.2.so -> (libfoo, 1.2).
func splitSoname(soname string) (lib, version string) {
	if i := strings.Index(soname, ".so."); i >= 0 {
		return soname[:i], soname[i+4:]
	}
	base := strings.TrimSuffix(soname, ".so")
	if i := strings.LastIndex(base, "-"); i >= 0 {
		return base[:i], base[i+1:]
	}
	return base, ""
}

// RPMResolver resolves sonames to rpm soname capabilities
// ("libz.so.1()(64bit)"), the names rpm's automatic requires use, after
// checking in the builder's rpm database (rpm -q --whatprovides) that a
// package provides each of them.
type RPMResolver struct{ Run Runner }

// Resolve implements LibraryResolver.
func (r RPMResolver) Resolve(ctx context.Context, needs []Needed) (map[string]Dependency, error) {
	deps := map[string]Dependency{}
	for _, n := range needs {
		if err := checkSoname(n.Soname); err != nil {
			return nil, err
		}
		capability := n.Soname + "()"
		if n.ELF64 {
			capability += "(64bit)"
		}
		out, err := r.Run(ctx, "rpm", "-q", "--whatprovides", capability, "--qf", "%{NAME}\n")
		if err != nil {
			return nil, fmt.Errorf("find the package providing %s in the builder (rpm -q --whatprovides): %w: install it in the builder, or set a Depends override", capability, err)
		}
		provider, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if provider == "" || strings.Contains(provider, " ") {
			return nil, fmt.Errorf("no package in the builder provides %s (rpm said %q)", capability, provider)
		}
		deps[n.Soname] = Dependency{Soname: n.Soname, Package: capability, ProvidedBy: provider}
	}
	return deps, nil
}
