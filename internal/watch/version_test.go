package watch

import (
	"regexp"
	"testing"
)

func mustRegexp(s string) *regexp.Regexp { return regexp.MustCompile(s) }

func TestParseTag(t *testing.T) {
	tests := []struct {
		tag     string
		pattern string
		want    string // "" = not a version
		pre     bool
	}{
		{"v4.2.1", "", "4.2.1", false},
		{"4.2", "", "4.2", false},
		{"V4.2.1", "", "4.2.1", false},
		{"v4.2.1-rc1", "", "4.2.1-rc1", true},
		{"v4.2.1rc2", "", "4.2.1-rc2", true},
		{"v4.2-beta.3", "", "4.2-beta3", true},
		{"criu-4.2", "", "", false},
		{"criu-4.2", `^criu-(.+)$`, "4.2", false},
		{"v4.2", `^criu-(.+)$`, "", false},
		{"test", "", "", false},
		{"v4.2.1.1", "", "", false},
		{"v4", "", "", false},
		{"v4.2.1-dirty", "", "", false},
		{"v1234567.1", "", "", false},
		{"", "", "", false},
		{"v4.2.1\n", "", "", false},
	}
	for _, tt := range tests {
		var re *regexp.Regexp
		if tt.pattern != "" {
			re = regexp.MustCompile(tt.pattern)
		}
		v, ok := ParseTag(tt.tag, re)
		got := ""
		if ok {
			got = v.String()
		}
		if got != tt.want || ok && v.Prerelease() != tt.pre {
			t.Errorf("ParseTag(%q, %q) = %q (pre %v), want %q (pre %v)", tt.tag, tt.pattern, got, v.Prerelease(), tt.want, tt.pre)
		}
	}
}

func TestCompare(t *testing.T) {
	order := []string{"4.1", "4.1.1", "4.2-alpha1", "4.2-beta1", "4.2-rc1", "4.2-rc2", "4.2", "4.2.1", "4.10"}
	for i := range order {
		for j := range order {
			a, _ := ParseVersion(order[i])
			b, _ := ParseVersion(order[j])
			if got, want := a.Compare(b), cmpInt(i, j); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := ParseVersion("4.2")
	b, _ := ParseVersion("4.2.0")
	if a.Compare(b) != 0 {
		t.Error("4.2 and 4.2.0 differ")
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in       string
		in_, out []string
		err      bool
	}{
		{"", []string{"1.0", "9.9.9"}, nil, false},
		{">=4.1, <5", []string{"4.1", "4.2.1", "4.99"}, []string{"4.0.9", "5.0", "5.1"}, false},
		{"=4.2", []string{"4.2.0"}, []string{"4.2.1"}, false},
		{"!=4.2.1, >4", []string{"4.2", "4.3"}, []string{"4.2.1", "4.0"}, false},
		{"4.2", nil, nil, true},
		{">=four", nil, nil, true},
		{">=4.1,", nil, nil, true},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseRange(%q): %v", tt.in, err)
			continue
		}
		for _, s := range tt.in_ {
			if v, _ := ParseVersion(s); !r.Contains(v) {
				t.Errorf("%q should hold %s", tt.in, s)
			}
		}
		for _, s := range tt.out {
			if v, _ := ParseVersion(s); r.Contains(v) {
				t.Errorf("%q should not hold %s", tt.in, s)
			}
		}
	}
}

// FuzzParseTag: tag names come from the GitHub API: parsing never panics,
// a version it accepts prints back as one that parses to the same version.
func FuzzParseTag(f *testing.F) {
	for _, s := range []string{"v4.2.1", "v4.2.1-rc1", "criu-4.2", "test", "v4.2.1.1", "4.2", "v99999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		v, ok := ParseTag(tag, nil)
		if !ok {
			return
		}
		back, ok := ParseVersion(v.String())
		if !ok || back.Compare(v) != 0 {
			t.Fatalf("%q -> %s does not parse back (%v)", tag, v, ok)
		}
		for _, n := range v.Nums {
			if n < 0 || n > maxComponent {
				t.Fatalf("%q: component %d out of range", tag, n)
			}
		}
	})
}

// FuzzParseRange: ranges come from flags and config; never a panic.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{">=4.1, <5", "=4.2", "!=4.2.1,>4", ">", ",,", "<=v4.2.1-rc1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		v, _ := ParseVersion("4.2.1")
		r.Contains(v)
	})
}
