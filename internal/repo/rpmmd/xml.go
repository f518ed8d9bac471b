package rpmmd

import (
	"bufio"
	"strconv"
	"unicode/utf8"
)

// xmlWriter writes the few XML shapes rpm-md needs, straight into a
// buffered writer: metadata for thousands of packages is rewritten on
// every publish, so this avoids encoding/xml's reflection. Write errors
// surface from the final Flush.
type xmlWriter struct{ *bufio.Writer }

// text writes s as element content or, with attr, as an attribute value.
// Characters XML cannot carry (invalid UTF-8, most control characters),
// which an untrusted header may hold, become U+FFFD so the file stays
// well-formed for every client.
func (w xmlWriter) text(s string, attr bool) {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		r, size := rune(c), 1
		if c >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		var esc string
		switch {
		case r == '&':
			esc = "&amp;"
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '"':
			if !attr {
				i += size
				continue
			}
			esc = "&quot;"
		case r == '\n' || r == '\t':
			if !attr {
				i += size
				continue
			}
			esc = "&#" + strconv.Itoa(int(r)) + ";"
		case r == '\r':
			esc = "&#13;"
		case r == utf8.RuneError && size == 1, !xmlChar(r):
			esc = "\uFFFD"
		default:
			i += size
			continue
		}
		w.WriteString(s[last:i])
		w.WriteString(esc)
		i += size
		last = i
	}
	w.WriteString(s[last:])
}

// plainASCII marks the bytes text writes as they are in any context.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '&' && c != '<' && c != '>' && c != '"'
	}
	return t
}()

// xmlChar reports whether XML 1.0 allows r (the Char production).
func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// elem writes <name>text</name> with the given indent.
func (w xmlWriter) elem(indent, name, text string) {
	w.WriteString(indent)
	w.WriteByte('<')
	w.WriteString(name)
	w.WriteByte('>')
	w.text(text, false)
	w.WriteString("</")
	w.WriteString(name)
	w.WriteString(">\n")
}

// attr writes ` name="value"`.
func (w xmlWriter) attr(name, value string) {
	w.WriteByte(' ')
	w.WriteString(name)
	w.WriteString(`="`)
	w.text(value, true)
	w.WriteByte('"')
}

func (w xmlWriter) intAttr(name string, v int64) {
	w.WriteByte(' ')
	w.WriteString(name)
	w.WriteString(`="`)
	w.WriteString(strconv.FormatInt(v, 10))
	w.WriteByte('"')
}

func (w xmlWriter) version(indent string, p *Package) {
	w.WriteString(indent)
	w.WriteString("<version")
	w.attr("epoch", p.Epoch)
	w.attr("ver", p.Version)
	w.attr("rel", p.Release)
	w.WriteString("/>\n")
}

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

func writePrimary(w xmlWriter, pkgs []*Package) {
	w.WriteString(xmlHeader)
	w.WriteString(`<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="`)
	w.WriteString(strconv.Itoa(len(pkgs)))
	w.WriteString("\">\n")
	for _, p := range pkgs {
		w.WriteString("<package type=\"rpm\">\n")
		w.elem("  ", "name", p.Name)
		w.elem("  ", "arch", p.Arch)
		w.version("  ", p)
		w.WriteString(`  <checksum type="sha256" pkgid="YES">`)
		w.WriteString(p.Checksum)
		w.WriteString("</checksum>\n")
		w.elem("  ", "summary", p.Summary)
		w.elem("  ", "description", p.Description)
		w.elem("  ", "packager", p.Packager)
		w.elem("  ", "url", p.URL)
		w.WriteString("  <time")
		w.intAttr("file", p.FileTime)
		w.intAttr("build", p.BuildTime)
		w.WriteString("/>\n  <size")
		w.intAttr("package", p.PackageSize)
		w.intAttr("installed", int64(p.InstalledSize))
		w.intAttr("archive", int64(p.ArchiveSize))
		w.WriteString("/>\n  <location")
		w.attr("href", p.Href)
		w.WriteString("/>\n  <format>\n")
		w.elem("    ", "rpm:license", p.License)
		w.elem("    ", "rpm:vendor", p.Vendor)
		w.elem("    ", "rpm:group", p.Group)
		w.elem("    ", "rpm:buildhost", p.BuildHost)
		w.elem("    ", "rpm:sourcerpm", p.SourceRPM)
		w.WriteString("    <rpm:header-range")
		w.intAttr("start", p.HeaderStart)
		w.intAttr("end", p.HeaderEnd)
		w.WriteString("/>\n")
		w.deps("provides", p.Provides)
		w.deps("requires", p.Requires)
		w.deps("conflicts", p.Conflicts)
		w.deps("obsoletes", p.Obsoletes)
		w.deps("suggests", p.Suggests)
		w.deps("enhances", p.Enhances)
		w.deps("recommends", p.Recommends)
		w.deps("supplements", p.Supplements)
		for _, f := range p.Files {
			if isPrimaryFile(f.Path) {
				w.file("    ", f)
			}
		}
		w.WriteString("  </format>\n</package>\n")
	}
	w.WriteString("</metadata>\n")
}

func (w xmlWriter) deps(kind string, deps []Dep) {
	if len(deps) == 0 {
		return
	}
	w.WriteString("    <rpm:" + kind + ">\n")
	for _, d := range deps {
		w.WriteString("      <rpm:entry")
		w.attr("name", d.Name)
		if d.Flags != "" {
			w.attr("flags", d.Flags)
			if d.Epoch != "" {
				w.attr("epoch", d.Epoch)
			}
			if d.Version != "" {
				w.attr("ver", d.Version)
			}
			if d.Release != "" {
				w.attr("rel", d.Release)
			}
		}
		if d.Pre {
			w.attr("pre", "1")
		}
		w.WriteString("/>\n")
	}
	w.WriteString("    </rpm:" + kind + ">\n")
}

func (w xmlWriter) file(indent string, f File) {
	w.WriteString(indent)
	w.WriteString("<file")
	if f.Type != "" {
		w.attr("type", f.Type)
	}
	w.WriteByte('>')
	w.text(f.Path, false)
	w.WriteString("</file>\n")
}

func (w xmlWriter) packageStart(p *Package) {
	w.WriteString("<package")
	w.attr("pkgid", p.Checksum)
	w.attr("name", p.Name)
	w.attr("arch", p.Arch)
	w.WriteString(">\n")
	w.version("  ", p)
}

func writeFilelists(w xmlWriter, pkgs []*Package) {
	w.WriteString(xmlHeader)
	w.WriteString(`<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="`)
	w.WriteString(strconv.Itoa(len(pkgs)))
	w.WriteString("\">\n")
	for _, p := range pkgs {
		w.packageStart(p)
		for _, f := range p.Files {
			w.file("  ", f)
		}
		w.WriteString("</package>\n")
	}
	w.WriteString("</filelists>\n")
}

func writeOther(w xmlWriter, pkgs []*Package) {
	w.WriteString(xmlHeader)
	w.WriteString(`<otherdata xmlns="http://linux.duke.edu/metadata/other" packages="`)
	w.WriteString(strconv.Itoa(len(pkgs)))
	w.WriteString("\">\n")
	for _, p := range pkgs {
		w.packageStart(p)
		for _, c := range p.Changelogs {
			w.WriteString("  <changelog")
			w.attr("author", c.Author)
			w.intAttr("date", c.Date)
			w.WriteByte('>')
			w.text(c.Text, false)
			w.WriteString("</changelog>\n")
		}
		w.WriteString("</package>\n")
	}
	w.WriteString("</otherdata>\n")
}

// repomdRecord describes one metadata file in repomd.xml.
type repomdRecord struct {
	kind         string // primary, filelists, other
	href         string
	checksum     string // of the compressed file
	openChecksum string
	size         int64
	openSize     int64
}

func writeRepomd(w xmlWriter, revision string, timestamp int64, records []repomdRecord) {
	w.WriteString(xmlHeader)
	w.WriteString(`<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">` + "\n")
	w.elem("  ", "revision", revision)
	for _, r := range records {
		w.WriteString(`  <data type="` + r.kind + "\">\n")
		w.WriteString(`    <checksum type="sha256">` + r.checksum + "</checksum>\n")
		w.WriteString(`    <open-checksum type="sha256">` + r.openChecksum + "</open-checksum>\n")
		w.WriteString("    <location")
		w.attr("href", r.href)
		w.WriteString("/>\n")
		w.elem("    ", "timestamp", strconv.FormatInt(timestamp, 10))
		w.elem("    ", "size", strconv.FormatInt(r.size, 10))
		w.elem("    ", "open-size", strconv.FormatInt(r.openSize, 10))
		w.WriteString("  </data>\n")
	}
	w.WriteString("</repomd>\n")
}
