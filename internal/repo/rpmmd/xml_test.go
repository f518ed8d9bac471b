package rpmmd

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf8"
)

// sanitize is what text promises to keep: s with every byte or rune XML
// cannot carry replaced by U+FFFD.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || !xmlChar(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// FuzzXMLText checks that any string from a package header survives as
// element text and as an attribute value: well-formed, and read back as
// written (less the characters XML cannot carry).
func FuzzXMLText(f *testing.F) {
	for _, s := range []string{"plain", "a & b < c > d \" e ' f", "line\nbreak\r\nand\ttab", "\x00\x01\x7f", "\xff\xfe invalid", "\uFFFE\uFFFF", "\U0001F600 ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		w := xmlWriter{bw}
		w.WriteString("<e")
		w.attr("a", s)
		w.WriteString(">")
		w.text(s, false)
		w.WriteString("</e>")
		bw.Flush()
		var got struct {
			A    string `xml:"a,attr"`
			Text string `xml:",chardata"`
		}
		if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%q written as %q: %v", s, buf.String(), err)
		}
		want := sanitize(s)
		if got.A != want || got.Text != want {
			t.Fatalf("%q written as %q read back as attribute %q and text %q, want %q", s, buf.String(), got.A, got.Text, want)
		}
	})
}
