package rpmmd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// xmlNode is a generic parsed XML element, for comparing metadata written
// by two tools field by field rather than byte by byte.
type xmlNode struct {
	Name     string
	Attrs    map[string]string
	Text     string
	Children []*xmlNode
}

func parseXML(t *testing.T, r io.Reader) *xmlNode {
	t.Helper()
	dec := xml.NewDecoder(r)
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parse XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{Name: qname(tok.Name), Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				n.Attrs[qname(a.Name)] = a.Value
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			}
		}
	}
	return root
}

func qname(n xml.Name) string {
	switch n.Space {
	case "http://linux.duke.edu/metadata/rpm":
		return "rpm:" + n.Local
	}
	return n.Local
}

// flatten lists every value below n as "path[attrs]=text" lines, in
// document order; whitespace-only text (indentation) is dropped.
func flatten(n *xmlNode, prefix string, out *[]string) {
	p := prefix + "/" + n.Name
	keys := make([]string, 0, len(n.Attrs))
	for k := range n.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var attrs []string
	for _, k := range keys {
		attrs = append(attrs, k+"="+n.Attrs[k])
	}
	line := p
	if len(attrs) > 0 {
		line += "[" + strings.Join(attrs, " ") + "]"
	}
	if text := n.Text; strings.TrimSpace(text) != "" || len(n.Children) == 0 {
		if len(n.Children) > 0 {
			text = strings.TrimSpace(text)
		}
		line += "=" + fmt.Sprintf("%q", text)
	}
	*out = append(*out, line)
	for _, c := range n.Children {
		flatten(c, p, out)
	}
}

// packagesByID maps each <package> of a primary, filelists or other
// document to its flattened lines, keyed by pkgid.
func packagesByID(t *testing.T, doc *xmlNode) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range doc.Children {
		id := p.Attrs["pkgid"]
		for _, c := range p.Children {
			if c.Name == "checksum" {
				id = strings.TrimSpace(c.Text)
			}
		}
		var lines []string
		flatten(p, "", &lines)
		out[id] = lines
	}
	return out
}

// repoFiles reads repomd.xml under root and returns the parsed primary,
// filelists and other documents and the repomd document itself.
func repoFiles(t *testing.T, root string) (map[string]*xmlNode, *xmlNode) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "repodata", "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	repomd := parseXML(t, f)
	docs := map[string]*xmlNode{}
	for _, d := range repomd.Children {
		if d.Name != "data" {
			continue
		}
		var href string
		for _, c := range d.Children {
			if c.Name == "location" {
				href = c.Attrs["href"]
			}
		}
		kind := d.Attrs["type"]
		if kind != "primary" && kind != "filelists" && kind != "other" {
			continue
		}
		gz, err := os.Open(filepath.Join(root, filepath.FromSlash(href)))
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(gz)
		if err != nil {
			t.Fatalf("%s: %v", href, err)
		}
		docs[kind] = parseXML(t, zr)
		gz.Close()
	}
	return docs, repomd
}

// metadataDiff compares the metadata under two repository roots package
// by package and returns one line per difference ("kind pkgid: -ref +ours").
// Lines matching allowed are the documented differences.
func metadataDiff(t *testing.T, refRoot, ourRoot string, allowed *regexp.Regexp) []string {
	t.Helper()
	ref, _ := repoFiles(t, refRoot)
	ours, _ := repoFiles(t, ourRoot)
	var diffs []string
	for _, kind := range []string{"primary", "filelists", "other"} {
		if ref[kind] == nil || ours[kind] == nil {
			diffs = append(diffs, fmt.Sprintf("%s: missing (reference %v, ours %v)", kind, ref[kind] != nil, ours[kind] != nil))
			continue
		}
		if a, b := ref[kind].Attrs["packages"], ours[kind].Attrs["packages"]; a != b {
			diffs = append(diffs, fmt.Sprintf("%s: packages=%s, ours %s", kind, a, b))
		}
		refPkgs, ourPkgs := packagesByID(t, ref[kind]), packagesByID(t, ours[kind])
		ids := map[string]bool{}
		for id := range refPkgs {
			ids[id] = true
		}
		for id := range ourPkgs {
			ids[id] = true
		}
		for _, id := range slices.Sorted(mapKeys(ids)) {
			a, b := refPkgs[id], ourPkgs[id]
			for _, l := range lineDiff(a, b) {
				if allowed != nil && allowed.MatchString(l) {
					continue
				}
				diffs = append(diffs, fmt.Sprintf("%s %.12s: %s", kind, id, l))
			}
		}
	}
	return diffs
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// lineDiff returns "-line" for lines only in a and "+line" for lines only
// in b, by a longest-common-subsequence walk so order changes show too.
func lineDiff(a, b []string) []string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, "+"+b[j])
			j++
		default:
			out = append(out, "-"+a[i])
			i++
		}
	}
	return out
}

func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriter(w) }

// checkWellFormed fails t unless data is a sequence of well-formed XML
// documents.
func checkWellFormed(t *testing.T, data []byte) {
	t.Helper()
	for _, doc := range bytes.SplitAfter(data, []byte("</metadata>\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		dec := xml.NewDecoder(bytes.NewReader(doc))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("not well-formed XML: %v\n%s", err, doc)
			}
		}
	}
}
