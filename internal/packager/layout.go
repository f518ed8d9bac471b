package packager

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// A role is the part of CRIU a file belongs to; the split decides which
// package carries each role.
type role string

const (
	roleMain      role = "main"      // criu, criu-ns, scripts, plugins, man pages
	roleLib       role = "lib"       // libcriu.so.N*
	roleDev       role = "dev"       // headers, libcriu.so, criu.pc
	roleCompelLib role = "compellib" // libcompel.so.N*
	roleCompelDev role = "compeldev" // compel tool, its headers and plugins
	rolePython    role = "python"    // pycriu
	roleCrit      role = "crit"      // crit
	roleNS        role = "ns"        // criu-ns
	rolePlugin    role = "plugin"    // amdgpu/cuda plugins
)

// stagedFile is one entry of the staged install tree.
type stagedFile struct {
	Rel    string      // path below the stage, slash-separated, no leading slash
	Mode   fs.FileMode // permission bits, plus ModeDir / ModeSymlink
	Target string      // symlink target
	Size   int64
	Role   role
	Src    string // where the content is when not in the stage (a compressed man page)
}

func (f stagedFile) Dest() string { return "/" + f.Rel }

var (
	libcriuVersioned   = regexp.MustCompile(`(^|/)libcriu\.so\.[0-9]`)
	libcompelVersioned = regexp.MustCompile(`(^|/)libcompel\.so\.[0-9]`)
	pythonDir          = regexp.MustCompile(`(^|/)(python3(\.[0-9]+)?|site-packages|dist-packages)/`)
	unsafeName         = regexp.MustCompile(`[\x00-\x1f\x7f]`)
)

// classify assigns a staged path to its role, following how Debian 13 and
// Fedora split CRIU (../shared/CRIU-FACTS.md).
func classify(rel string) role {
	base := path.Base(rel)
	switch {
	case libcriuVersioned.MatchString(rel):
		return roleLib
	case libcompelVersioned.MatchString(rel):
		return roleCompelLib
	case strings.HasPrefix(rel, "usr/include/compel"), base == "compel", base == "libcompel.so", base == "libcompel.a",
		base == "compel.pc", strings.HasPrefix(base, "compel.1"), strings.Contains(rel, "/compel/"):
		return roleCompelDev
	case strings.HasPrefix(rel, "usr/include/"), base == "libcriu.so", base == "libcriu.a", strings.HasSuffix(rel, "/pkgconfig/criu.pc"):
		return roleDev
	case pythonDir.MatchString(rel):
		return rolePython
	case base == "crit", strings.HasPrefix(base, "crit.1"):
		return roleCrit
	case base == "criu-ns", strings.HasPrefix(base, "criu-ns.1"):
		return roleNS
	case strings.HasSuffix(base, "_plugin.so"), strings.Contains(base, "-plugin.1"):
		return rolePlugin
	}
	return roleMain
}

// walkStage lists the staged tree: regular files, symlinks and directories,
// sorted. Anything else (devices, sockets, names with control characters)
// is refused: the tree comes out of a build and is not trusted.
func walkStage(stage string) ([]stagedFile, error) {
	var out []stagedFile
	err := filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read staged tree: %w", err)
		}
		if p == stage {
			return nil
		}
		rel, err := filepath.Rel(stage, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if unsafeName.MatchString(rel) {
			return fmt.Errorf("staged tree %s: file name %q has control characters: dpkg and rpm cannot carry it", stage, rel)
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("read staged tree: %w", err)
		}
		f := stagedFile{Rel: rel, Mode: info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), Role: classify(rel)}
		switch t := info.Mode().Type(); {
		case t == fs.ModeDir:
			f.Mode |= fs.ModeDir
		case t == fs.ModeSymlink:
			f.Mode |= fs.ModeSymlink
			if f.Target, err = os.Readlink(p); err != nil {
				return fmt.Errorf("read staged tree: %w", err)
			}
		case t.IsRegular():
			f.Size = info.Size()
		default:
			return fmt.Errorf("staged tree %s: %s is a %s, not a file, directory or symlink", stage, rel, t.String())
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

// ownedDir reports whether a directory belongs to CRIU (usr/include/criu,
// usr/libexec/criu, a pycriu directory) rather than to the system
// (usr/sbin), so the package owns it; system directories stay implicit.
func ownedDir(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if strings.Contains(part, "criu") || part == "compel" {
			return true
		}
	}
	return false
}

// familyBases names, per family, the package the distro ships each role in.
// Debian 13 and later split criu, libcriu2, libcriu-dev, python3-pycriu,
// libcompel1, libcompel-dev; Fedora criu, criu-libs, criu-devel, crit,
// python3-criu, criu-ns, criu-amdgpu-plugin.
func familyBase(format string, r role, libSonames map[role]string) string {
	if format == FormatRPM {
		switch r {
		case roleLib, roleCompelLib:
			return "criu-libs"
		case roleDev, roleCompelDev:
			return "criu-devel"
		case rolePython:
			return "python3-criu"
		case roleCrit:
			return "crit"
		case roleNS:
			return "criu-ns"
		case rolePlugin:
			return "criu-amdgpu-plugin"
		}
		return "criu"
	}
	switch r {
	case roleLib, roleCompelLib:
		return debLibPackage(libSonames[r])
	case roleDev:
		return "libcriu-dev"
	case roleCompelDev:
		return "libcompel-dev"
	case rolePython, roleCrit:
		return "python3-pycriu"
	}
	return "criu"
}

// debLibPackage is Debian's library package name for a soname:
// libcriu.so.2 -> libcriu2, libfoo1.so.3 -> libfoo1-3.
func debLibPackage(soname string) string {
	lib, ver := splitSoname(soname)
	if lib == "" || ver == "" {
		return strings.ToLower(lib)
	}
	if c := lib[len(lib)-1]; c >= '0' && c <= '9' {
		return strings.ToLower(lib + "-" + ver)
	}
	return strings.ToLower(lib + ver)
}

// libSonamesOf finds the soname of the shipped libcriu and libcompel (from
// the first versioned file name: libcriu.so.2.0 -> libcriu.so.2).
func libSonamesOf(files []stagedFile) map[role]string {
	out := map[role]string{roleLib: "libcriu.so.2", roleCompelLib: "libcompel.so.1"}
	seen := map[role]bool{}
	for _, f := range files {
		if (f.Role != roleLib && f.Role != roleCompelLib) || seen[f.Role] {
			continue
		}
		base := path.Base(f.Rel)
		i := strings.Index(base, ".so.")
		major, _, _ := strings.Cut(base[i+4:], ".")
		out[f.Role] = base[:i+4] + major
		seen[f.Role] = true
	}
	return out
}
