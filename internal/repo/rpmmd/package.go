// Package rpmmd writes rpm-md repository metadata (repodata/: primary,
// filelists, other and repomd.xml) the way createrepo_c does, from a strict
// reader of .rpm headers, and keeps a state file of the packages it has read
// so that adding one package to a large repository re-reads nothing else.
//
// The entry point is Open; a publisher does:
//
//	repo, err := rpmmd.Open(root) // root: Packages/ and repodata/ (may be a link to the live generation)
//	pkg, err := rpmmd.ReadPackage(filepath.Join(root, "Packages", name))
//	err = repo.Add(pkg, "Packages/"+name) // href relative to root
//	err = repo.Write(outDir, sign)        // outDir/repodata/: root itself, or the next generation
//
// The state (repodata/rpmmd-state.jsonl) lives beside the metadata it
// describes, so the two always agree. Open trusts a recorded package while
// its file keeps its size and mtime, so keep package files in place or hard
// link them (a copy with a new mtime is read again). Output depends only on
// the packages: no wall-clock time (see Repo.Timestamp). The package does
// no locking: callers serialize writers to one repository.
package rpmmd

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Package is one .rpm as the metadata describes it. It is also the record
// kept in the state file, so its JSON form is part of the state format.
type Package struct {
	Name    string `json:"name"`
	Arch    string `json:"arch"`
	Epoch   string `json:"epoch"`
	Version string `json:"version"`
	Release string `json:"release"`

	Checksum    string `json:"sha256"` // of the whole file; the pkgid
	Href        string `json:"href"`   // location, relative to the repository root
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
	Packager    string `json:"packager,omitempty"`
	URL         string `json:"url,omitempty"`
	License     string `json:"license,omitempty"`
	Vendor      string `json:"vendor,omitempty"`
	Group       string `json:"group,omitempty"`
	BuildHost   string `json:"buildhost,omitempty"`
	SourceRPM   string `json:"sourcerpm,omitempty"`

	FileTime      int64  `json:"file_time"` // mtime of the .rpm, as createrepo_c records it
	BuildTime     int64  `json:"build_time"`
	PackageSize   int64  `json:"package_size"`
	InstalledSize uint64 `json:"installed_size"`
	ArchiveSize   uint64 `json:"archive_size"`
	HeaderStart   int64  `json:"header_start"`
	HeaderEnd     int64  `json:"header_end"`

	Provides    []Dep `json:"provides,omitempty"`
	Requires    []Dep `json:"requires,omitempty"`
	Conflicts   []Dep `json:"conflicts,omitempty"`
	Obsoletes   []Dep `json:"obsoletes,omitempty"`
	Suggests    []Dep `json:"suggests,omitempty"`
	Enhances    []Dep `json:"enhances,omitempty"`
	Recommends  []Dep `json:"recommends,omitempty"`
	Supplements []Dep `json:"supplements,omitempty"`

	Files      []File      `json:"files,omitempty"`
	Changelogs []Changelog `json:"changelogs,omitempty"` // oldest first, at most ChangelogLimit
}

// Dep is one dependency entry. Flags is "", "LT", "GT", "EQ", "LE" or "GE".
type Dep struct {
	Name    string `json:"n"`
	Flags   string `json:"f,omitempty"`
	Epoch   string `json:"e,omitempty"`
	Version string `json:"v,omitempty"`
	Release string `json:"r,omitempty"`
	Pre     bool   `json:"pre,omitempty"`
}

// File is one path the package owns. Type is "", "dir" or "ghost".
type File struct {
	Path string `json:"p"`
	Type string `json:"t,omitempty"`
}

// Changelog is one changelog entry.
type Changelog struct {
	Author string `json:"author"`
	Date   int64  `json:"date"`
	Text   string `json:"text"`
}

// NEVRA returns name-epoch:version-release.arch, the package's identity.
func (p *Package) NEVRA() string {
	return fmt.Sprintf("%s-%s:%s-%s.%s", p.Name, p.Epoch, p.Version, p.Release, p.Arch)
}

// ChangelogLimit is how many of the newest changelog entries go into
// other.xml: createrepo_c's default.
const ChangelogLimit = 10

// Header tags used (rpmtag.h).
const (
	sigTagPayloadSize     = 1007
	sigTagLongArchiveSize = 271

	tagName           = 1000
	tagVersion        = 1001
	tagRelease        = 1002
	tagEpoch          = 1003
	tagSummary        = 1004
	tagDescription    = 1005
	tagBuildTime      = 1006
	tagBuildHost      = 1007
	tagSize           = 1009
	tagVendor         = 1011
	tagLicense        = 1014
	tagPackager       = 1015
	tagGroup          = 1016
	tagURL            = 1020
	tagArch           = 1022
	tagOldFilenames   = 1027
	tagFileModes      = 1030
	tagFileFlags      = 1037
	tagSourceRPM      = 1044
	tagArchiveSize    = 1046
	tagProvideName    = 1047
	tagRequireFlags   = 1048
	tagRequireName    = 1049
	tagRequireVersion = 1050
	tagConflictFlags  = 1053
	tagConflictName   = 1054
	tagConflictVer    = 1055
	tagChangelogTime  = 1080
	tagChangelogName  = 1081
	tagChangelogText  = 1082
	tagObsoleteName   = 1090
	tagSourcePackage  = 1106
	tagProvideFlags   = 1112
	tagProvideVersion = 1113
	tagObsoleteFlags  = 1114
	tagObsoleteVer    = 1115
	tagDirIndexes     = 1116
	tagBaseNames      = 1117
	tagDirNames       = 1118
	tagLongSize       = 5009
	tagLongArchive    = 5012
	tagRecommendName  = 5046
	tagRecommendVer   = 5047
	tagRecommendFlags = 5048
	tagSuggestName    = 5049
	tagSuggestVer     = 5050
	tagSuggestFlags   = 5051
	tagSupplementName = 5052
	tagSupplementVer  = 5053
	tagSupplementFlgs = 5054
	tagEnhanceName    = 5055
	tagEnhanceVer     = 5056
	tagEnhanceFlags   = 5057
)

// Dependency and file flag bits (rpmds.h, rpmfiles.h).
const (
	senseLess       = 1 << 1
	senseGreater    = 1 << 2
	senseEqual      = 1 << 3
	sensePrereq     = 1 << 6
	senseScriptPre  = 1 << 9
	senseScriptPost = 1 << 10
	fileGhost       = 1 << 6
	modeTypeMask    = 0o170000
	modeDir         = 0o040000
)

// ReadPackage reads the .rpm at path: its headers (strictly: the file is
// untrusted) and the sha256 of the whole file. Href is left empty; Repo.Add
// sets it.
func ReadPackage(path string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read package %s: not a regular file", path)
	}
	p, err := parsePackage(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("read package %s: %w (is it a complete .rpm file?)", path, err)
	}
	p.FileTime = fi.ModTime().Unix()
	return p, nil
}

// parsePackage parses an rpm of the given size from r and hashes all of it.
func parsePackage(r io.Reader, size int64) (*Package, error) {
	sum := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(r, sum), 64<<10)
	var lead [leadSize]byte
	if _, err := io.ReadFull(br, lead[:]); err != nil {
		return nil, fmt.Errorf("lead: %w: %w", errNotRPM, unexpectedEOF(err))
	}
	if binary.BigEndian.Uint32(lead[0:4]) != leadMagic {
		return nil, errNotRPM
	}
	sig, sigLen, err := readHeader(br, size-leadSize, true)
	if err != nil {
		return nil, fmt.Errorf("signature %w", err)
	}
	start := int64(leadSize) + sigLen
	main, mainLen, err := readHeader(br, size-start, false)
	if err != nil {
		return nil, fmt.Errorf("main %w", err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	p, err := packageFromHeaders(sig, main)
	if err != nil {
		return nil, err
	}
	p.Checksum = hex.EncodeToString(sum.Sum(nil))
	p.PackageSize = size
	p.HeaderStart = start
	p.HeaderEnd = start + mainLen
	return p, nil
}

// tagReader collects the first error of a run of header look-ups, so the
// mapping below reads as a list of fields.
type tagReader struct {
	h   *header
	err error
}

func (t *tagReader) str(tag uint32) string {
	s, err := t.h.string(tag)
	t.fail(err)
	return s
}

func (t *tagReader) strs(tag uint32) []string {
	s, err := t.h.strings(tag)
	t.fail(err)
	return s
}

func (t *tagReader) ints(tag uint32) []uint64 {
	v, err := t.h.ints(tag)
	t.fail(err)
	return v
}

func (t *tagReader) num(tag uint32) (uint64, bool) {
	v, ok, err := t.h.int(tag)
	t.fail(err)
	return v, ok
}

// firstNum returns the first of tags present in h, or 0.
func (t *tagReader) firstNum(tags ...uint32) uint64 {
	for _, tag := range tags {
		if v, ok := t.num(tag); ok {
			return v
		}
	}
	return 0
}

func (t *tagReader) fail(err error) {
	if t.err == nil && err != nil {
		t.err = err
	}
}

func packageFromHeaders(sigHdr, h *header) (*Package, error) {
	t := &tagReader{h: h}
	p := &Package{
		Name:        t.str(tagName),
		Arch:        t.str(tagArch),
		Version:     t.str(tagVersion),
		Release:     t.str(tagRelease),
		Summary:     t.str(tagSummary),
		Description: t.str(tagDescription),
		Packager:    t.str(tagPackager),
		URL:         t.str(tagURL),
		License:     t.str(tagLicense),
		Vendor:      t.str(tagVendor),
		Group:       t.str(tagGroup),
		BuildHost:   t.str(tagBuildHost),
		SourceRPM:   t.str(tagSourceRPM),
	}
	epoch, _ := t.num(tagEpoch)
	p.Epoch = strconv.FormatUint(epoch, 10)
	bt, _ := t.num(tagBuildTime)
	p.BuildTime = int64(bt)
	p.InstalledSize = t.firstNum(tagLongSize, tagSize)
	if _, src := h.entries[tagSourcePackage]; src {
		p.Arch = "src"
	}
	// rpm moves the payload size into the signature header; older
	// packages keep it in the main header.
	p.ArchiveSize = t.firstNum(tagLongArchive, tagArchiveSize)
	if p.ArchiveSize == 0 {
		st := &tagReader{h: sigHdr}
		p.ArchiveSize = st.firstNum(sigTagLongArchiveSize, sigTagPayloadSize)
		t.fail(st.err)
	}
	if t.err != nil {
		return nil, t.err
	}
	for what, v := range map[string]string{"name": p.Name, "version": p.Version, "release": p.Release, "arch": p.Arch} {
		if v == "" {
			return nil, fmt.Errorf("main header has no package %s", what)
		}
	}
	var err error
	if p.Files, err = readFiles(t); err != nil {
		return nil, err
	}
	if err = readDeps(t, p); err != nil {
		return nil, err
	}
	if p.Changelogs, err = readChangelogs(t); err != nil {
		return nil, err
	}
	return p, nil
}

func readFiles(t *tagReader) ([]File, error) {
	var paths []string
	if base := t.strs(tagBaseNames); base != nil {
		dirs, idx := t.strs(tagDirNames), t.ints(tagDirIndexes)
		if len(idx) != len(base) {
			return nil, fmt.Errorf("header has %d file names but %d directory indexes", len(base), len(idx))
		}
		for i, b := range base {
			if idx[i] >= uint64(len(dirs)) {
				return nil, fmt.Errorf("file %q: directory index %d out of range", b, idx[i])
			}
			paths = append(paths, dirs[idx[i]]+b)
		}
	} else {
		paths = t.strs(tagOldFilenames)
	}
	modes, flags := t.ints(tagFileModes), t.ints(tagFileFlags)
	if t.err != nil {
		return nil, t.err
	}
	if len(paths) == 0 {
		return nil, nil
	}
	if len(modes) != len(paths) || len(flags) != len(paths) {
		return nil, fmt.Errorf("header has %d files but %d modes and %d flags", len(paths), len(modes), len(flags))
	}
	files := make([]File, len(paths))
	for i, path := range paths {
		files[i].Path = path
		switch {
		case modes[i]&modeTypeMask == modeDir:
			files[i].Type = "dir"
		case flags[i]&fileGhost != 0:
			files[i].Type = "ghost"
		}
	}
	return files, nil
}

// depKinds lists the dependency tags in the order createrepo_c reads them.
var depKinds = []struct {
	name, flags, version uint32
	field                func(*Package) *[]Dep
}{
	{tagProvideName, tagProvideFlags, tagProvideVersion, func(p *Package) *[]Dep { return &p.Provides }},
	{tagConflictName, tagConflictFlags, tagConflictVer, func(p *Package) *[]Dep { return &p.Conflicts }},
	{tagObsoleteName, tagObsoleteFlags, tagObsoleteVer, func(p *Package) *[]Dep { return &p.Obsoletes }},
	{tagRequireName, tagRequireFlags, tagRequireVersion, func(p *Package) *[]Dep { return &p.Requires }},
	{tagSuggestName, tagSuggestFlags, tagSuggestVer, func(p *Package) *[]Dep { return &p.Suggests }},
	{tagEnhanceName, tagEnhanceFlags, tagEnhanceVer, func(p *Package) *[]Dep { return &p.Enhances }},
	{tagRecommendName, tagRecommendFlags, tagRecommendVer, func(p *Package) *[]Dep { return &p.Recommends }},
	{tagSupplementName, tagSupplementFlgs, tagSupplementVer, func(p *Package) *[]Dep { return &p.Supplements }},
}

// readDeps fills the dependency lists with createrepo_c's filtering of
// requires: no rpmlib() requires, none for the package's own primary
// files, none identical to one of its provides, no repeated entry, and of
// the libc.so.6 requires only the highest. A dependency whose version has
// a non-numeric epoch is dropped, as createrepo_c drops it.
func readDeps(t *tagReader, p *Package) error {
	ownFiles := make(map[string]bool, len(p.Files))
	for _, f := range p.Files {
		ownFiles[f.Path] = true
	}
	type nameFlagsVersion struct{ name, flags, version string }
	provided := map[nameFlagsVersion]bool{}
	for _, kind := range depKinds {
		names, flags, vers := t.strs(kind.name), t.ints(kind.flags), t.strs(kind.version)
		if t.err != nil {
			return t.err
		}
		if len(names) == 0 {
			continue
		}
		if len(flags) != len(names) || len(vers) != len(names) {
			return fmt.Errorf("tag %d: %d names but %d flags and %d versions", kind.name, len(names), len(flags), len(vers))
		}
		isRequires := kind.name == tagRequireName
		type seenReq struct {
			flags, version string
			pre            bool
		}
		seen := map[string]seenReq{}
		var libc *Dep
		deps := make([]Dep, 0, len(names))
		for i, name := range names {
			d := Dep{Name: name, Flags: flagString(flags[i])}
			nfv := nameFlagsVersion{name, d.Flags, vers[i]}
			if isRequires {
				if strings.HasPrefix(name, "rpmlib(") ||
					(ownFiles[name] && isPrimaryFile(name)) || provided[nfv] {
					continue
				}
				d.Pre = flags[i]&(sensePrereq|senseScriptPre|senseScriptPost) != 0
				if prev, ok := seen[name]; ok && prev == (seenReq{d.Flags, vers[i], d.Pre}) {
					continue
				}
			}
			var ok bool
			if d.Epoch, d.Version, d.Release, ok = splitEVR(vers[i]); !ok {
				continue
			}
			switch {
			case kind.name == tagProvideName:
				provided[nfv] = true
			case isRequires && strings.HasPrefix(name, "libc.so.6"):
				if libc == nil || compareLibcDep(libc.Name, name) == 2 {
					libc = &d
				}
				continue
			case isRequires:
				seen[name] = seenReq{d.Flags, vers[i], d.Pre}
			}
			deps = append(deps, d)
		}
		if libc != nil {
			deps = append(deps, *libc)
		}
		*kind.field(p) = deps
	}
	return nil
}

func flagString(f uint64) string {
	switch f & 0xf {
	case senseLess:
		return "LT"
	case senseGreater:
		return "GT"
	case senseEqual:
		return "EQ"
	case senseLess | senseEqual:
		return "LE"
	case senseGreater | senseEqual:
		return "GE"
	}
	return ""
}

// splitEVR splits "[epoch:]version[-release]"; a version without an epoch
// gets epoch "0", as createrepo_c writes it. ok is false for an epoch that
// is not a number.
func splitEVR(s string) (epoch, version, release string, ok bool) {
	if s == "" {
		return "", "", "", true
	}
	epoch = "0"
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if epoch = s[:i]; epoch == "" || !isDigits(epoch) {
			return "", "", "", false
		}
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		return epoch, s[:i], s[i+1:], true
	}
	return epoch, s, "", true
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// compareLibcDep orders libc.so.6 requires by the version in their first
// parentheses, as createrepo_c does: 2 means b is higher.
func compareLibcDep(a, b string) int {
	va, vb := libcVersion(a), libcVersion(b)
	switch {
	case va == vb:
		return 0
	case va == "":
		return 2
	case vb == "":
		return 1
	}
	if vercmp(va, vb) < 0 {
		return 2
	}
	return 1
}

// libcVersion returns the text from the first digit after "(" up to ")".
func libcVersion(s string) string {
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return ""
	}
	end := strings.IndexByte(s[open:], ')')
	if end < 0 {
		return ""
	}
	inner := s[open+1 : open+end]
	if i := strings.IndexAny(inner, "0123456789"); i >= 0 {
		return inner[i:]
	}
	return ""
}

// isPrimaryFile reports whether a path goes into primary.xml (the rest is
// only in filelists.xml): the rule every rpm-md tool shares.
func isPrimaryFile(path string) bool {
	return strings.HasPrefix(path, "/etc/") || strings.Contains(path, "bin/") || path == "/usr/lib/sendmail"
}

// readChangelogs keeps the newest ChangelogLimit entries, oldest first,
// moving entries with equal times one second apart the way createrepo_c
// does so that every entry keeps a distinct date.
func readChangelogs(t *tagReader) ([]Changelog, error) {
	times, names, texts := t.ints(tagChangelogTime), t.strs(tagChangelogName), t.strs(tagChangelogText)
	if t.err != nil {
		return nil, t.err
	}
	n := min(len(times), len(names), len(texts), ChangelogLimit)
	out := make([]Changelog, 0, n) // built newest first, reversed below
	var last int64
	for i := 0; i < n; i++ {
		c := Changelog{Author: strings.TrimRight(names[i], " "), Date: int64(times[i]), Text: texts[i]}
		if c.Date == last {
			for j, tm := len(out)-1, c.Date; j >= 0 && out[j].Date == tm; j, tm = j-1, tm+1 {
				out[j].Date++
			}
		} else {
			last = c.Date
		}
		out = append(out, c)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
