// Package packager turns a target's staged install tree (the output of
// `make install DESTDIR=<stage> PREFIX=/usr ...` in its builder) into .deb
// and .rpm packages with nfpm, and records what went into them.
//
// One entry point, Package: it walks the tree, splits it into one package
// or the distro's split, reads every ELF file's DT_NEEDED to compute
// runtime dependencies through a LibraryResolver that asks the builder's
// package database, versions the packages (MakeVersion), generates
// changelogs from the patch series, writes a manifest (shipped in the
// packages and, with checksums, next to them) and an SPDX SBOM, and signs
// rpms when asked. The same Spec gives byte-identical files. ListVersions
// reads back what an output directory holds.
package packager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
	debversion "pault.ag/go/debian/version"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/signing"
)

// Modes of meeting the distro's own criu.
const (
	// ModeReplace ships under the distro's package names with a higher
	// version, so an upgrade replaces the distro's criu.
	ModeReplace = "replace"
	// ModeDistinct ships under another name (criu-pidfd) that provides,
	// replaces and conflicts with the distro's criu.
	ModeDistinct = "distinct"
)

// Splits.
const (
	// SplitSingle puts everything in one package (Debian 12, upstream's PPA).
	SplitSingle = "single"
	// SplitDistro splits the way the target family does (Debian 13:
	// criu, libcriu2, libcriu-dev, python3-pycriu, libcompel1,
	// libcompel-dev; Fedora: criu, criu-libs, criu-devel, crit,
	// python3-criu, criu-ns, criu-amdgpu-plugin).
	SplitDistro = "distro"
)

// Spec is everything one packaging run needs.
type Spec struct {
	StageDir string
	Target   Target
	// Formats to write; empty means the target family's own format. An rpm
	// can be made from a Debian target's tree (used to test rpm tooling).
	Formats []string
	// Name of the main package: "criu" in replace mode, another name
	// ("criu-pidfd") in distinct mode. Split packages derive their names
	// from the distro's (libcriu2, or libcriu2-pidfd in distinct mode).
	Name           string
	Mode           string // ModeReplace or ModeDistinct
	Split          string // SplitSingle or SplitDistro
	SeriesRevision int    // >= 1; rises with every change of the series or recipe
	BuildRevision  int    // >= 1; 0 means 1

	Maintainer  string // "Name <email>"
	Homepage    string
	License     string // SPDX expression, e.g. "GPL-2.0-only AND LGPL-2.1-only"
	Summary     string // one line
	Description string // paragraphs
	Vendor      string

	// Depends adds runtime relations per package name (Debian syntax
	// "pkg (>= 1.0)" for deb, "pkg >= 1.0" for rpm). A relation on a
	// package the ELF scan also found replaces the scanned one.
	Depends map[string][]string
	// Resolve maps the sonames the ELF files need to packages inside the
	// target's builder (DebianResolver, RPMResolver). Nil means no
	// automatic dependencies: only Depends.
	Resolve LibraryResolver

	Upstream        Upstream
	Patches         []Patch
	BuilderID       string
	BuildKey        string
	SourceDateEpoch int64 // mtime of every file and the packages' build time

	// RPMSign, when set, signs every rpm (key file or environment variable,
	// passphrase from an environment variable, key by full fingerprint or
	// long id, subkeys included).
	RPMSign *signing.KeyOptions

	OutDir string
}

// Result is what Package wrote.
type Result struct {
	Artifacts []Artifact
	Manifest  string // path of the manifest in OutDir
	SBOM      string // path of the SPDX SBOM in OutDir
	Version   Version
}

// plannedPackage is one package of one format, before it is written.
type plannedPackage struct {
	Name, Format, Section string
	Roles                 []role
	Files                 []stagedFile
	Doc                   PackageDoc
	ArchIndependent       bool              // no ELF file and nothing in an arch-specific directory
	scripts               map[string]script // from the scan, for rewritten "#!" lines
}

// arch is the package's architecture in Debian spelling ("all" for
// arch-independent packages; fileName and nfpm map it for rpm).
func (p *plannedPackage) arch(target string) string {
	if p.ArchIndependent {
		return "all"
	}
	return target
}

// Package writes the packages of spec into spec.OutDir, with a manifest
// (<name>_<target>_<version>.manifest.json) and an SPDX SBOM
// (.spdx.json) beside them. Files are written aside and renamed into
// place under a lock on OutDir, so a crash or a concurrent run never leaves
// a half-written package.
func Package(ctx context.Context, spec Spec) (*Result, error) {
	formats, err := spec.validate()
	if err != nil {
		return nil, err
	}
	ver, err := MakeVersion(spec.Upstream.Version, spec.SeriesRevision, spec.BuildRevision, spec.Target)
	if err != nil {
		return nil, err
	}
	staged, err := walkStage(spec.StageDir)
	if err != nil {
		return nil, err
	}
	if !hasFiles(staged) {
		return nil, fmt.Errorf("staged tree %s has no files: did make install run with DESTDIR=%s?", spec.StageDir, spec.StageDir)
	}
	scan, err := scanELF(spec.StageDir, staged)
	if err != nil {
		return nil, err
	}
	manDir, err := os.MkdirTemp("", "criu-forge-man-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(manDir)
	if staged, err = compressManPages(spec.StageDir, manDir, staged); err != nil {
		return nil, err
	}
	libs := map[string]Dependency{}
	if spec.Resolve != nil && len(scan.external) > 0 {
		if libs, err = spec.Resolve.Resolve(ctx, scan.external); err != nil {
			return nil, fmt.Errorf("runtime dependencies of %s: %w", spec.Target, err)
		}
	}

	var plans []*plannedPackage
	for _, format := range formats {
		planned, err := spec.plan(format, ver, staged, scan, libs)
		if err != nil {
			return nil, err
		}
		plans = append(plans, planned...)
	}
	man := Manifest{
		Schema: ManifestSchema, Name: spec.Name, Target: spec.Target, Mode: spec.Mode, Split: spec.Split,
		Version: ver, Upstream: spec.Upstream, Patches: spec.Patches, BuilderID: spec.BuilderID,
		BuildKey: spec.BuildKey, SourceDateEpoch: spec.SourceDateEpoch,
	}
	for _, p := range plans {
		man.Packages = append(man.Packages, p.Doc)
	}
	for _, n := range scan.external {
		if d, ok := libs[n.Soname]; ok {
			man.Libraries = append(man.Libraries, d)
		}
	}
	shipped, err := man.marshal()
	if err != nil {
		return nil, err
	}

	var signer *signing.Signer
	if spec.RPMSign != nil && contains(formats, FormatRPM) {
		if signer, err = signing.Load(*spec.RPMSign); err != nil {
			return nil, fmt.Errorf("rpm signing: %w", err)
		}
	}

	if err := os.MkdirAll(spec.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	lock, err := fsutil.Acquire(ctx, filepath.Join(spec.OutDir, ".criu-forge-package.lock"))
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	work, err := os.MkdirTemp(spec.OutDir, ".package-")
	if err != nil {
		return nil, fmt.Errorf("create work directory in %s: %w", spec.OutDir, err)
	}
	defer os.RemoveAll(work)

	res := &Result{Version: ver}
	for _, p := range plans {
		a, err := spec.write(p, ver, shipped, work, signer)
		if err != nil {
			return nil, err
		}
		res.Artifacts = append(res.Artifacts, a)
	}
	for _, a := range res.Artifacts {
		if err := os.Rename(filepath.Join(work, a.File), a.Path); err != nil {
			return nil, fmt.Errorf("move %s into %s: %w", a.File, spec.OutDir, err)
		}
	}
	if err := fsutil.SyncDir(spec.OutDir); err != nil {
		return nil, err
	}
	man.Artifacts = res.Artifacts
	man.PackagedAt = time.Now().UTC().Format(time.RFC3339)
	sbom, err := makeSBOM(man, spec.License, spec.Vendor)
	if err != nil {
		return nil, err
	}
	external, err := man.marshal()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(spec.OutDir, manifestBase(man))
	res.SBOM = base + ".spdx.json"
	res.Manifest = base + ManifestSuffix
	if err := fsutil.WriteFileAtomic(res.SBOM, sbom, 0o644); err != nil {
		return nil, err
	}
	// The manifest goes last: its presence says the build's files are all there.
	if err := fsutil.WriteFileAtomic(res.Manifest, external, 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Spec) validate() ([]string, error) {
	family, err := s.Target.Family()
	if err != nil {
		return nil, err
	}
	if s.StageDir == "" || s.OutDir == "" {
		return nil, errors.New("package: StageDir and OutDir must be set")
	}
	if fi, err := os.Stat(s.StageDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("staged tree %s: not a directory (run the build first): %v", s.StageDir, err)
	}
	if _, ok := debArch[s.Target.Arch]; !ok {
		return nil, fmt.Errorf("target %s: unknown architecture %q (known: amd64, arm64, ppc64el, s390x, armhf, i386)", s.Target, s.Target.Arch)
	}
	if !packageNameRE.MatchString(s.Name) {
		return nil, fmt.Errorf("package name %q: use lower-case letters, digits, '+', '-', '.'", s.Name)
	}
	switch s.Mode {
	case ModeReplace:
		if s.Name != "criu" {
			return nil, fmt.Errorf("mode replace ships under the distro's name criu, not %q: use mode distinct for another name", s.Name)
		}
	case ModeDistinct:
		if s.Name == "criu" {
			return nil, errors.New("mode distinct needs a name other than criu (for example criu-pidfd)")
		}
	default:
		return nil, fmt.Errorf("mode %q: want %q or %q", s.Mode, ModeReplace, ModeDistinct)
	}
	if s.Split != SplitSingle && s.Split != SplitDistro {
		return nil, fmt.Errorf("split %q: want %q or %q", s.Split, SplitSingle, SplitDistro)
	}
	if s.BuildRevision == 0 {
		s.BuildRevision = 1
	}
	if s.SourceDateEpoch <= 0 {
		return nil, errors.New("package: SourceDateEpoch must be set (the upstream commit time), or packages are not reproducible")
	}
	if s.Maintainer == "" || !strings.Contains(s.Maintainer, "<") {
		return nil, fmt.Errorf("maintainer %q: want \"Name <email>\"", s.Maintainer)
	}
	formats := s.Formats
	if len(formats) == 0 {
		formats = []string{family}
	}
	for _, f := range formats {
		if f != FormatDeb && f != FormatRPM {
			return nil, fmt.Errorf("format %q: want deb or rpm", f)
		}
	}
	sorted := append([]string(nil), formats...)
	sort.Strings(sorted)
	return sorted, nil
}

var packageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

var debArch = map[string]string{"all": "noarch", "amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le", "s390x": "s390x", "armhf": "armv7hl", "i386": "i686"}

// fileName is the conventional file name of a package: dpkg-name's
// name_version_arch.deb, rpm's name-version-release.arch.rpm.
func fileName(format, name string, v Version, arch string) string {
	if format == FormatRPM {
		return fmt.Sprintf("%s-%s-%s.%s.rpm", name, v.RPM, v.Release, debArch[arch])
	}
	return fmt.Sprintf("%s_%s_%s.deb", name, v.Deb, arch)
}

// archIndependent reports a package that can be Architecture: all /
// noarch: no ELF file, nothing in a library directory (a -dev package's
// libcriu.so symlink and criu.pc live in the arch-specific one).
func archIndependent(fs []stagedFile, scan elfScan) bool {
	for _, f := range fs {
		if _, elf := scan.needs[f.Rel]; elf || strings.HasPrefix(f.Rel, "usr/lib/") || strings.HasPrefix(f.Rel, "usr/lib64/") ||
			strings.HasPrefix(f.Rel, "lib") {
			return false
		}
	}
	return hasFiles(fs)
}

func hasFiles(staged []stagedFile) bool {
	for _, f := range staged {
		if !f.Mode.IsDir() {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// plan groups the staged files into the packages of one format and
// computes their relations.
func (s *Spec) plan(format string, v Version, staged []stagedFile, scan elfScan, libs map[string]Dependency) ([]*plannedPackage, error) {
	sonames := libSonamesOf(staged)
	flavor := strings.TrimPrefix(s.Name, "criu-")
	nameOf := func(r role) (name, base string) {
		base = familyBase(format, r, sonames)
		if s.Split == SplitSingle || base == "criu" {
			return s.Name, base
		}
		if s.Mode == ModeDistinct {
			return base + "-" + flavor, base
		}
		return base, base
	}
	byName := map[string]*plannedPackage{}
	var order []string
	pkgOf := map[string]string{} // staged path -> package name
	for _, f := range staged {
		if f.Mode.IsDir() && !ownedDir(f.Rel) && !emptyDir(staged, f) {
			continue
		}
		name, _ := nameOf(f.Role)
		p := byName[name]
		if p == nil {
			p = &plannedPackage{Name: name, Format: format}
			byName[name] = p
			order = append(order, name)
		}
		if !containsRole(p.Roles, f.Role) {
			p.Roles = append(p.Roles, f.Role)
		}
		p.Files = append(p.Files, f)
		pkgOf[f.Rel] = name
	}
	// Directories owned only by the package that ships files in them.
	sort.Strings(order)
	full := v.For(format)
	rel := func(name, op, ver string) string {
		if ver == "" {
			return name
		}
		if format == FormatRPM {
			return fmt.Sprintf("%s %s %s", name, map[string]string{"<<": "<", "=": "="}[op], ver)
		}
		return fmt.Sprintf("%s (%s %s)", name, op, ver)
	}
	var out []*plannedPackage
	for _, name := range order {
		p := byName[name]
		p.Section = section(format, p.Roles)
		p.scripts = scan.scripts
		p.ArchIndependent = archIndependent(p.Files, scan)
		doc := PackageDoc{Name: name, Format: format, Version: full, Arch: p.arch(s.Target.Arch)}
		if format == FormatRPM {
			doc.Arch = debArch[doc.Arch]
		}
		// Meet the distro's packages this one carries the files of.
		bases := map[string]bool{}
		for _, r := range p.Roles {
			_, b := nameOf(r)
			bases[b] = true
		}
		for _, b := range sortedKeys(bases) {
			switch {
			case s.Mode == ModeDistinct:
				doc.Provides = append(doc.Provides, rel(b, "=", full))
				doc.Conflicts = append(doc.Conflicts, b)
				doc.Replaces = append(doc.Replaces, b)
			case b != name:
				// Files move from the distro's b into this package: dpkg
				// wants Replaces + Breaks (Debian policy 7.6), rpm Obsoletes
				// (nfpm writes Replaces as Obsoletes).
				doc.Provides = append(doc.Provides, rel(b, "=", full))
				doc.Replaces = append(doc.Replaces, rel(b, "<<", full))
				if format == FormatDeb {
					doc.Breaks = append(doc.Breaks, rel(b, "<<", full))
				}
			}
		}
		if s.Mode == ModeReplace && format == FormatDeb && name != s.Name {
			// Debian 12's criu carried every file in one package: a split
			// package taking some of them over must say so, or dpkg refuses
			// to overwrite them.
			doc.Replaces = append(doc.Replaces, rel(s.Name, "<<", full))
			doc.Breaks = append(doc.Breaks, rel(s.Name, "<<", full))
		}
		if format == FormatRPM {
			pc, err := pkgConfigProvides(s.StageDir, p.Files)
			if err != nil {
				return nil, err
			}
			doc.Provides = append(doc.Provides, pc...)
		}
		doc.Depends = s.depends(p, format, full, scan, libs, pkgOf, byName, rel)
		doc.Files = countFiles(p.Files)
		p.Doc = doc
		out = append(out, p)
	}
	return out, nil
}

// depends computes a package's runtime relations: resolved libraries its
// ELF files need, sibling packages of the same build that ship a needed
// library (or, for -dev packages, the library they link to), then the
// spec's own relations, which win over scanned ones of the same package.
func (s *Spec) depends(p *plannedPackage, format, full string, scan elfScan, libs map[string]Dependency,
	pkgOf map[string]string, byName map[string]*plannedPackage, rel func(string, string, string) string) []string {
	deps := map[string]string{} // package -> relation
	strongest := map[string]Dependency{}
	for _, f := range p.Files {
		for _, so := range scan.needs[f.Rel] {
			if owner, ok := scan.shipped[so]; ok {
				if sib := pkgOf[owner]; sib != p.Name && sib != "" {
					deps[sib] = rel(sib, "=", full)
				}
				continue
			}
			if d, ok := libs[so]; ok {
				// Two sonames of one package (libc.so.6, libm.so.6): keep
				// the higher lower bound.
				if prev, seen := strongest[d.Package]; !seen || newerMin(d.MinVersion, prev.MinVersion) {
					strongest[d.Package] = d
					deps[d.Package] = d.Relation(format)
				}
			}
		}
	}
	for _, f := range p.Files {
		if sc, ok := scan.scripts[f.Rel]; ok {
			if name, relation := interpreterDependency(format, sc.Interpreter); name != "" {
				deps[name] = relation
			}
		}
	}
	for _, r := range p.Roles {
		want := map[role]role{roleDev: roleLib, roleCompelDev: roleCompelLib, roleCrit: rolePython}[r]
		for name, sib := range byName {
			if name != p.Name && containsRole(sib.Roles, want) {
				deps[name] = rel(name, "=", full)
			}
		}
	}
	for _, extra := range s.Depends[p.Name] {
		name, _, _ := strings.Cut(strings.TrimSpace(extra), " ")
		deps[strings.TrimSuffix(name, ",")] = strings.TrimSpace(extra)
	}
	out := make([]string, 0, len(deps))
	for _, k := range sortedKeys(deps) {
		out = append(out, deps[k])
	}
	return out
}

// rpmGroup is the (legacy, but still checked by rpmlint) rpm Group tag.
// rpmlint treats "Unspecified" as missing.
func rpmGroup(roles []role) string {
	switch {
	case containsRole(roles, roleMain):
		return "System Environment/Base"
	case containsRole(roles, roleDev), containsRole(roles, roleCompelDev):
		return "Development/Libraries"
	case containsRole(roles, roleLib), containsRole(roles, roleCompelLib):
		return "System Environment/Libraries"
	}
	return "Development/Tools"
}

// newerMin reports whether lower bound a is above b (Debian ordering; rpm
// bounds, when a resolver sets any, compare close enough for this).
func newerMin(a, b string) bool {
	va, errA := debversion.Parse(a)
	vb, errB := debversion.Parse(b)
	if errA != nil || errB != nil {
		return a > b
	}
	return debversion.Compare(va, vb) > 0
}

func section(format string, roles []role) string {
	if format == FormatRPM {
		return ""
	}
	switch {
	case containsRole(roles, roleMain):
		return "admin"
	case containsRole(roles, roleDev), containsRole(roles, roleCompelDev):
		return "libdevel"
	case containsRole(roles, roleLib), containsRole(roles, roleCompelLib):
		return "libs"
	}
	return "python"
}

func containsRole(list []role, r role) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

func emptyDir(staged []stagedFile, d stagedFile) bool {
	prefix := d.Rel + "/"
	i := sort.Search(len(staged), func(i int) bool { return staged[i].Rel > d.Rel })
	return i == len(staged) || !strings.HasPrefix(staged[i].Rel, prefix)
}

func countFiles(fs []stagedFile) int {
	n := 0
	for _, f := range fs {
		if !f.Mode.IsDir() {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// elfScan is what the ELF files of the staged tree need and provide.
type elfScan struct {
	scripts  map[string]script   // staged path -> executable script
	needs    map[string][]string // staged path -> DT_NEEDED sonames
	shipped  map[string]string   // soname -> staged path that provides it
	external []Needed            // sonames not shipped, sorted
}

func scanELF(stage string, staged []stagedFile) (elfScan, error) {
	scan := elfScan{needs: map[string][]string{}, shipped: map[string]string{}, scripts: map[string]script{}}
	is64 := map[string]bool{}
	for _, f := range staged {
		if f.Mode.IsDir() {
			continue
		}
		base := path.Base(f.Rel)
		if strings.Contains(base, ".so") {
			// A library file or its symlink satisfies its own name.
			if _, dup := scan.shipped[base]; !dup {
				scan.shipped[base] = f.Rel
			}
		}
		if f.Mode&os.ModeSymlink != 0 {
			continue
		}
		full := filepath.Join(stage, filepath.FromSlash(f.Rel))
		ok, err := isELF(full)
		if err != nil {
			return scan, fmt.Errorf("read staged file: %w", err)
		}
		if !ok {
			if f.Mode&0o111 != 0 {
				sc, isScript, err := readScript(full)
				if err != nil {
					return scan, fmt.Errorf("read staged file: %w", err)
				}
				if isScript {
					scan.scripts[f.Rel] = sc
				}
			}
			continue
		}
		info, err := readELFFile(full)
		if err != nil {
			return scan, err
		}
		if info.Soname != "" {
			scan.shipped[info.Soname] = f.Rel
		}
		for _, so := range info.Needed {
			if err := checkSoname(so); err != nil {
				return scan, fmt.Errorf("%s: %w", f.Rel, err)
			}
			is64[so] = is64[so] || info.Class == elf.ELFCLASS64
		}
		scan.needs[f.Rel] = info.Needed
	}
	for _, so := range sortedKeys(is64) {
		if _, ok := scan.shipped[so]; !ok {
			scan.external = append(scan.external, Needed{Soname: so, ELF64: is64[so]})
		}
	}
	return scan, nil
}

// write builds one package with nfpm and renames it into OutDir.
func (s *Spec) write(p *plannedPackage, v Version, manifest []byte, work string, signer *signing.Signer) (Artifact, error) {
	mtime := time.Unix(s.SourceDateEpoch, 0).UTC()
	dir := filepath.Join(work, p.Format+"-"+p.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Artifact{}, err
	}
	info := &nfpm.Info{
		Name: p.Name, Arch: p.arch(s.Target.Arch), Platform: "linux", Version: p.versionField(v), Release: p.releaseField(v),
		VersionSchema: "none", Section: p.Section, Priority: "optional", Maintainer: s.Maintainer,
		Description: s.description(p), Vendor: s.Vendor, Homepage: s.Homepage, License: s.License, MTime: mtime,
	}
	info.Depends, info.Provides, info.Conflicts, info.Replaces = p.Doc.Depends, p.Doc.Provides, p.Doc.Conflicts, p.Doc.Replaces
	info.Deb.Breaks = p.Doc.Breaks
	for _, f := range p.Files {
		c := content(s.StageDir, f, p.Format, mtime)
		if sc, ok := p.scripts[f.Rel]; ok && sc.Rewritten != nil {
			c.Source = filepath.Join(dir, "scripts", filepath.FromSlash(f.Rel))
			if err := os.MkdirAll(filepath.Dir(c.Source), 0o755); err != nil {
				return Artifact{}, err
			}
			if err := os.WriteFile(c.Source, sc.Rewritten, 0o755); err != nil {
				return Artifact{}, err
			}
			c.FileInfo.Size = int64(len(sc.Rewritten))
		}
		info.Contents = append(info.Contents, c)
	}
	docDir := "/usr/share/doc/" + p.Name
	extra := map[string][]byte{"criu-forge.json": manifest}
	if p.Format == FormatDeb {
		extra["copyright"] = []byte(s.copyright())
	}
	for _, name := range sortedKeys(extra) {
		src := filepath.Join(dir, name)
		if err := os.WriteFile(src, extra[name], 0o644); err != nil {
			return Artifact{}, err
		}
		c := &files.Content{Source: src, Destination: docDir + "/" + name, Type: files.TypeFile,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644, MTime: mtime}}
		if p.Format == FormatRPM {
			c.Type = files.TypeRPMDoc
		}
		info.Contents = append(info.Contents, c)
	}
	if p.Format == FormatRPM {
		info.Contents = append(info.Contents, &files.Content{Destination: docDir, Type: files.TypeDir,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o755, MTime: mtime}})
	}
	clog, err := writeChangelog(dir, s, p, v)
	if err != nil {
		return Artifact{}, err
	}
	info.Changelog = clog
	var packager nfpm.Packager
	switch p.Format {
	case FormatDeb:
		packager = deb.Default
		info.Deb.Compression = "xz"
		if shipsSharedLibrary(p.Files) {
			info.Deb.Triggers.ActivateNoAwait = []string{"ldconfig"}
		}
	case FormatRPM:
		packager = rpm.DefaultRPM
		if shipsSharedLibrary(p.Files) {
			// EL and Fedora run ldconfig from glibc's file triggers too; the
			// explicit call is what rpmlint and older releases expect.
			ldconfig := filepath.Join(dir, "ldconfig.sh")
			if err := os.WriteFile(ldconfig, []byte("#!/bin/sh\n/sbin/ldconfig\n"), 0o755); err != nil {
				return Artifact{}, err
			}
			info.Scripts.PostInstall, info.Scripts.PostRemove = ldconfig, ldconfig
		}

		info.RPM.Compression = "xz"
		info.RPM.Summary = s.packageSummary(p)
		info.RPM.Group = rpmGroup(p.Roles)
		info.RPM.BuildHost = "criu-forge" // the host name would make builds differ
		info.RPM.Packager = s.Maintainer
		if signer != nil {
			info.RPM.Signature.SignFn = func(data io.Reader) ([]byte, error) {
				raw, err := io.ReadAll(data)
				if err != nil {
					return nil, err
				}
				var sig bytes.Buffer
				err = signer.DetachSign(&sig, raw, false)
				return sig.Bytes(), err
			}
		}
	}
	var buf bytes.Buffer
	if err := packager.Package(nfpm.WithDefaults(info), &buf); err != nil {
		return Artifact{}, fmt.Errorf("build %s package %s: %w", p.Format, p.Name, err)
	}
	data := buf.Bytes()
	if shlibs := p.shlibs(s.StageDir, v); p.Format == FormatDeb && shlibs != "" {
		if data, err = addDebControlFiles(data, map[string][]byte{"shlibs": []byte(shlibs)}, mtime); err != nil {
			return Artifact{}, fmt.Errorf("build deb package %s: %w", p.Name, err)
		}
	}
	name := fileName(p.Format, p.Name, v, p.arch(s.Target.Arch))
	dest := filepath.Join(s.OutDir, name)
	// Written into the work directory; Package moves the whole set into
	// OutDir once every package of the build is made.
	if err := fsutil.WriteFileAtomic(filepath.Join(work, name), data, 0o644); err != nil {
		return Artifact{}, err
	}
	sum := sha256.Sum256(data)
	return Artifact{Path: dest, File: name, Name: p.Name, Version: p.Doc.Version, Arch: p.Doc.Arch, Format: p.Format,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}, nil
}

// shlibs is the Debian shlibs control file of a package: one line per
// public shared library it ships ("libcriu 2 libcriu2 (>= 4.2.1)"), so
// that packages built against it get a dependency on it.
func (p *plannedPackage) shlibs(stage string, v Version) string {
	var b strings.Builder
	for _, f := range p.Files {
		if f.Mode&os.ModeType != 0 || !isSharedLibraryName(f.Rel) || libDirRank("/"+path.Dir(f.Rel)) < 0 {
			continue
		}
		info, err := readELFFile(filepath.Join(stage, filepath.FromSlash(f.Rel)))
		if err != nil || info.Soname == "" {
			continue
		}
		lib, ver := splitSoname(info.Soname)
		fmt.Fprintf(&b, "%s %s %s (>= %s)\n", lib, ver, p.Name, v.Upstream)
	}
	return b.String()
}

func (p *plannedPackage) versionField(v Version) string {
	if p.Format == FormatRPM {
		return v.RPM
	}
	return v.Deb
}

func (p *plannedPackage) releaseField(v Version) string {
	if p.Format == FormatRPM {
		return v.Release
	}
	return ""
}

func content(stage string, f stagedFile, format string, mtime time.Time) *files.Content {
	fi := &files.ContentFileInfo{Owner: "root", Group: "root", Mode: f.Mode &^ os.ModeSymlink, MTime: mtime}
	switch {
	case f.Mode.IsDir():
		fi.Mode = f.Mode.Perm()
		return &files.Content{Destination: f.Dest(), Type: files.TypeDir, FileInfo: fi}
	case f.Mode&os.ModeSymlink != 0:
		fi.Mode = 0o777
		return &files.Content{Source: f.Target, Destination: f.Dest(), Type: files.TypeSymlink, FileInfo: fi}
	}
	if format == FormatDeb && isSharedLibraryName(f.Rel) || strings.HasSuffix(f.Rel, ".a") {
		fi.Mode &^= 0o111 // as dh_fixperms does; rpm's convention keeps shared libraries 0755
	}
	fi.Size = f.Size
	src := f.Src
	if src == "" {
		src = filepath.Join(stage, filepath.FromSlash(f.Rel))
	}
	c := &files.Content{Source: src, Destination: f.Dest(), Type: files.TypeFile, FileInfo: fi}
	if format == FormatRPM && (strings.HasPrefix(f.Rel, "usr/share/doc/") || strings.HasPrefix(f.Rel, "usr/share/man/")) {
		c.Type = files.TypeRPMDoc
	}
	return c
}

func isSharedLibraryName(rel string) bool {
	base := path.Base(rel)
	return strings.HasSuffix(base, ".so") || strings.Contains(base, ".so.")
}

// pkgConfigProvides are the "pkgconfig(criu) = 4.2.1" capabilities rpm's
// automatic provides would derive from the package's .pc files.
func pkgConfigProvides(stage string, fs []stagedFile) ([]string, error) {
	var out []string
	for _, f := range fs {
		if !strings.HasSuffix(f.Rel, ".pc") || !strings.Contains(f.Rel, "/pkgconfig/") || f.Mode&os.ModeType != 0 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(stage, filepath.FromSlash(f.Rel)))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Rel, err)
		}
		name := strings.TrimSuffix(path.Base(f.Rel), ".pc")
		provide := "pkgconfig(" + name + ")"
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Version:"); ok && pcVersionRE.MatchString(strings.TrimSpace(v)) {
				provide += " = " + strings.TrimSpace(v)
			}
		}
		if pcNameRE.MatchString(name) {
			out = append(out, provide)
		}
	}
	return out, nil
}

var (
	pcNameRE    = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
	pcVersionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~_]*$`)
)

func shipsSharedLibrary(fs []stagedFile) bool {
	for _, f := range fs {
		if strings.Contains(path.Base(f.Rel), ".so.") && libDirRank("/"+path.Dir(f.Rel)) >= 0 {
			return true
		}
	}
	return false
}

func (s *Spec) summary() string {
	if s.Summary != "" {
		return s.Summary
	}
	return "Checkpoint and restore in userspace (with criu-forge patches)"
}

// packageSummary is the one-line summary of a package of the build.
func (s *Spec) packageSummary(p *plannedPackage) string {
	switch {
	case p.Name == s.Name:
		return s.summary()
	case containsRole(p.Roles, roleDev), containsRole(p.Roles, roleCompelDev):
		return s.summary() + " - development files"
	case containsRole(p.Roles, rolePython), containsRole(p.Roles, roleCrit):
		return s.summary() + " - Python tools"
	case containsRole(p.Roles, roleLib), containsRole(p.Roles, roleCompelLib):
		return s.summary() + " - libraries"
	case containsRole(p.Roles, roleNS):
		return s.summary() + " - run in new namespaces"
	}
	return s.summary() + " - plugins"
}

// description is nfpm's Description: for deb the summary line and the
// body; for rpm (whose summary is a separate tag) the body alone.
func (s *Spec) description(p *plannedPackage) string {
	// A YAML block ends with a newline; a blank line would be an empty
	// paragraph in the Debian description.
	body := strings.TrimSpace(s.Description)
	if body == "" {
		body = "CRIU freezes a running application and checkpoints it to disk,\nto restore it later from that point."
	}
	body += fmt.Sprintf("\n\nBuilt by criu-forge from CRIU %s and %d patches;\n/usr/share/doc/%s/criu-forge.json lists them.",
		s.Upstream.Version, len(s.Patches), p.Name)
	if p.Format == FormatRPM {
		return body
	}
	return s.packageSummary(p) + "\n" + body
}

// copyright is the Debian copyright file (machine-readable format), with
// the SPDX license names translated to Debian's short names.
func (s *Spec) copyright() string {
	license := s.License
	if license == "" {
		license = "GPL-2.0-only"
	}
	license = spdxToDebian.Replace(license)
	var b strings.Builder
	b.WriteString("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
	b.WriteString("Upstream-Name: criu\n")
	if s.Upstream.URL != "" {
		b.WriteString("Source: " + s.Upstream.URL + "\n")
	}
	fmt.Fprintf(&b, "\nFiles: *\nCopyright: 2011-%d CRIU contributors\nLicense: %s\n", time.Unix(s.SourceDateEpoch, 0).UTC().Year(), license)
	for _, l := range []string{"GPL-2+", "GPL-2", "LGPL-2.1+", "LGPL-2.1"} {
		if containsWord(license, l) {
			fmt.Fprintf(&b, "\nLicense: %s\n On Debian systems, the complete text of the license is in\n /usr/share/common-licenses/%s.\n", l, strings.TrimSuffix(l, "+"))
		}
	}
	return b.String()
}

var spdxToDebian = strings.NewReplacer("GPL-2.0-only", "GPL-2", "GPL-2.0-or-later", "GPL-2+", "LGPL-2.1-only", "LGPL-2.1",
	"LGPL-2.1-or-later", "LGPL-2.1+", "MIT", "Expat", " AND ", " and ", " OR ", " or ")

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(s)) {
		if f == w {
			return true
		}
	}
	return false
}
