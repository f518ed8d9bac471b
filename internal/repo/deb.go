package repo

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"pault.ag/go/debian/deb"
	"pault.ag/go/debian/version"
)

// maxControlSize bounds the control file we accept, so a forged .deb cannot
// make us decompress without end.
const (
	maxControlSize    = 1 << 20
	maxControlTarSize = 64 << 20
	maxMembers        = 8
)

// controlCompressions are the control.tar compressions dpkg (and Ubuntu's
// zstd) write.
var controlCompressions = map[string]bool{"": true, ".gz": true, ".xz": true, ".zst": true}

// field is one control field with its value exactly as written (continuation
// lines keep their leading space), so Packages repeats it verbatim the way
// apt-ftparchive and dpkg-scanpackages do.
type field struct {
	Name  string `json:"n"`
	Value string `json:"v"`
}

// paragraph is a control paragraph in file order.
type paragraph []field

func (p paragraph) get(name string) string {
	for _, f := range p {
		if strings.EqualFold(f.Name, name) {
			return strings.TrimSpace(f.Value)
		}
	}
	return ""
}

var fieldName = regexp.MustCompile(`^[!-9;-~][!-9;-~]*$`) // Debian policy 5.1: printable, no colon, not starting with #

// parseControl reads one deb822 paragraph strictly: a field per line, values
// continued by lines starting with a space or a tab, no blank line inside,
// no duplicate field.
func parseControl(data []byte) (paragraph, error) {
	text := strings.TrimRight(string(data), "\n")
	text = strings.TrimLeft(text, "\n")
	if text == "" {
		return nil, errors.New("empty control file")
	}
	var p paragraph
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if strings.HasSuffix(line, "\r") {
			return nil, fmt.Errorf("control line %d: carriage return", i+1)
		}
		if line == "" || strings.TrimSpace(line) == "" {
			return nil, fmt.Errorf("control line %d: blank line inside the paragraph", i+1)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(p) == 0 {
				return nil, fmt.Errorf("control line %d: continuation line before any field", i+1)
			}
			p[len(p)-1].Value += "\n" + line
			continue
		}
		if line[0] == '#' {
			return nil, fmt.Errorf("control line %d: comment in a binary package's control file", i+1)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !fieldName.MatchString(name) {
			return nil, fmt.Errorf("control line %d: %q is not a field", i+1, truncate(line))
		}
		key := strings.ToLower(name)
		if seen[key] {
			return nil, fmt.Errorf("control line %d: field %s given twice", i+1, name)
		}
		seen[key] = true
		p = append(p, field{Name: name, Value: strings.TrimSpace(value)})
	}
	return p, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

var (
	packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`) // Debian policy 5.6.1
	archName    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// debInfo is what the repository keeps of one .deb.
type debInfo struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	Source  string `json:"source"` // source package name (for the pool path)
	Size    int64  `json:"size"`
	MD5     string `json:"md5"`
	SHA256  string `json:"sha256"`
	// Control is the control paragraph as Packages repeats it (one
	// string: the state of a thousand packages loads fast); Filename, Size
	// and the hashes go in at DescriptionAt.
	Control       string `json:"control"`
	DescriptionAt int    `json:"description_at"`
}

// validate checks the fields the repository relies on: names that become
// pool paths, a version dpkg can compare.
func (d *debInfo) validate(p paragraph) error {
	if !packageName.MatchString(d.Package) {
		return fmt.Errorf("Package %q is not a valid Debian package name", d.Package)
	}
	if !packageName.MatchString(d.Source) {
		return fmt.Errorf("Source %q is not a valid Debian source package name", d.Source)
	}
	if d.Version == "" {
		return errors.New("no Version field")
	}
	if _, err := version.Parse(d.Version); err != nil || strings.ContainsAny(d.Version, "/ \t") {
		return fmt.Errorf("Version %q is not a Debian version", d.Version)
	}
	if !archName.MatchString(d.Arch) {
		return fmt.Errorf("Architecture %q is not a Debian architecture", d.Arch)
	}
	if s := p.get("Installed-Size"); s != "" {
		if _, err := strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("Installed-Size %q is not a number", s)
		}
	}
	if p.get("Description") == "" {
		return errors.New("no Description field")
	}
	for _, f := range p {
		switch strings.ToLower(f.Name) {
		case "filename", "size", "md5sum", "sha1", "sha256", "sha512":
			// The repository computes these; a package must not bring its own.
			return fmt.Errorf("control file sets %s, which only a repository index may", f.Name)
		}
	}
	return nil
}

// newDebInfo builds the record from a parsed control paragraph.
func newDebInfo(p paragraph) (*debInfo, error) {
	d := &debInfo{
		Package: p.get("Package"),
		Version: p.get("Version"),
		Arch:    p.get("Architecture"),
	}
	// "Source: name (version)" when the binary version differs.
	d.Source, _, _ = strings.Cut(p.get("Source"), " ")
	if d.Source == "" {
		d.Source = d.Package
	}
	if err := d.validate(p); err != nil {
		return nil, err
	}
	var b strings.Builder
	d.DescriptionAt = -1
	for _, f := range p {
		if d.DescriptionAt < 0 && strings.EqualFold(f.Name, "Description") {
			d.DescriptionAt = b.Len()
		}
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	d.Control = b.String()
	if d.DescriptionAt < 0 {
		d.DescriptionAt = b.Len()
	}
	return d, nil
}

// poolPath is where the package lives, relative to the repository root:
// pool/main/<prefix>/<source>/<package>_<version without epoch>_<arch>.deb.
// Names and versions were validated, so the path stays inside pool/.
func (d *debInfo) poolPath() string {
	prefix := d.Source[:1]
	if strings.HasPrefix(d.Source, "lib") && len(d.Source) > 3 {
		prefix = d.Source[:4]
	}
	v := d.Version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return path.Join("pool", "main", prefix, d.Source, d.Package+"_"+v+"_"+d.Arch+".deb")
}

// readDebControl returns the control paragraph of a .deb (format 2.0; the
// control member compressed with gzip, xz, zstd or not at all).
func readDebControl(r io.ReaderAt) (paragraph, error) {
	ar, err := deb.LoadAr(r)
	if err != nil {
		return nil, fmt.Errorf("not a Debian package (ar archive): %w", err)
	}
	first, err := ar.Next()
	if err != nil {
		return nil, fmt.Errorf("not a Debian package: %w", err)
	}
	if first.Name != "debian-binary" {
		return nil, fmt.Errorf("not a Debian package: first member is %q, not debian-binary", truncate(first.Name))
	}
	head := make([]byte, 4)
	if n, _ := first.Data.ReadAt(head, 0); n < 4 || !bytes.HasPrefix(head, []byte("2.")) {
		return nil, errors.New("not a Debian binary package of format 2.x")
	}
	if first.Size < 0 {
		return nil, errors.New("not a Debian package: negative ar member size")
	}
	// dpkg puts control.tar second; a few members more are tolerated.
	for range maxMembers {
		m, err := ar.Next()
		if err != nil {
			return nil, errors.New("Debian package has no control.tar member")
		}
		if m.Size < 0 {
			// The ar reader would step backwards and loop for ever.
			return nil, errors.New("not a Debian package: negative ar member size")
		}
		if m.Name != "control.tar" && !strings.HasPrefix(m.Name, "control.tar.") {
			continue
		}
		ext := strings.TrimPrefix(m.Name, "control.tar")
		if !controlCompressions[ext] {
			return nil, fmt.Errorf("unsupported compression of %s", truncate(m.Name))
		}
		rc, err := deb.DecompressorFor(ext)(m.Data)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", m.Name, err)
		}
		defer rc.Close()
		// Bound what we decompress: a small forged member can expand without end.
		tr := tar.NewReader(io.LimitReader(rc, maxControlTarSize))
		for {
			h, err := tr.Next()
			if err != nil {
				return nil, fmt.Errorf("read %s: no control file: %v", m.Name, err)
			}
			if path.Clean(h.Name) != "control" {
				continue
			}
			data, err := io.ReadAll(io.LimitReader(tr, maxControlSize+1))
			if err != nil {
				return nil, fmt.Errorf("read control file: %w", err)
			}
			if len(data) > maxControlSize {
				return nil, fmt.Errorf("control file larger than %d bytes", maxControlSize)
			}
			return parseControl(data)
		}
	}
	return nil, errors.New("Debian package has no control.tar member among its first members")
}

// readDeb hashes a .deb file and reads its control data.
func readDeb(file string) (*debInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	md, sh := md5.New(), sha256.New()
	size, err := io.Copy(io.MultiWriter(md, sh), f)
	if err != nil {
		return nil, err
	}
	p, err := readDebControl(f)
	if err != nil {
		return nil, err
	}
	d, err := newDebInfo(p)
	if err != nil {
		return nil, fmt.Errorf("control file: %w", err)
	}
	d.Size = size
	d.MD5 = hex.EncodeToString(md.Sum(nil))
	d.SHA256 = hex.EncodeToString(sh.Sum(nil))
	return d, nil
}
