package watch

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a release version read from a tag name: two or three numbers
// and, for a pre-release, its kind and number (v4.2.1-rc1).
type Version struct {
	Nums   [3]int
	Parts  int    // how many numbers the tag had: 2 or 3
	Pre    string // "", alpha, beta, pre or rc
	PreNum int
}

// maxComponent bounds each number so that parsing never overflows and a
// tag such as v99999999999 cannot pass as the newest release.
const maxComponent = 999999

// versionPattern is a release as projects tag it: an optional "v", two or
// three numbers, an optional pre-release suffix. Anything else (criu-4.2,
// v4.2.1.1, test, nightly-2026) is not a release unless a tag pattern
// says how to read it: messy tags must not pass as versions.
var versionPattern = regexp.MustCompile(`^[vV]?(\d{1,6})\.(\d{1,6})(?:\.(\d{1,6}))?(?:[-.~_]?(alpha|beta|pre|rc)[.-]?(\d{1,6})?)?$`)

// preRank orders pre-release kinds; a release (Pre "") outranks them all.
var preRank = map[string]int{"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "": 5}

// ParseVersion reads a version such as 4.2.1, v4.2 or 4.2.1-rc1.
func ParseVersion(s string) (Version, bool) {
	m := versionPattern.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return Version{}, false
	}
	var v Version
	v.Parts = 2
	for i, g := range m[1:4] {
		if g == "" {
			continue
		}
		n, err := strconv.Atoi(g)
		if err != nil || n > maxComponent {
			return Version{}, false
		}
		v.Nums[i] = n
		if i == 2 {
			v.Parts = 3
		}
	}
	v.Pre = m[4]
	if m[5] != "" {
		n, err := strconv.Atoi(m[5])
		if err != nil || n > maxComponent {
			return Version{}, false
		}
		v.PreNum = n
	}
	return v, true
}

// Prerelease reports a pre-release version.
func (v Version) Prerelease() bool { return v.Pre != "" }

// String gives the version without "v": 4.2.1, 4.2, 4.2.1-rc1.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d", v.Nums[0], v.Nums[1])
	if v.Parts == 3 {
		s += fmt.Sprintf(".%d", v.Nums[2])
	}
	if v.Pre != "" {
		s += "-" + v.Pre + strconv.Itoa(v.PreNum)
	}
	return s
}

// Compare orders versions: -1, 0 or 1. 4.2 equals 4.2.0; 4.2.1-rc1 comes
// before 4.2.1.
func (v Version) Compare(o Version) int {
	for i := range v.Nums {
		if v.Nums[i] != o.Nums[i] {
			return cmpInt(v.Nums[i], o.Nums[i])
		}
	}
	if c := cmpInt(preRank[v.Pre], preRank[o.Pre]); c != 0 {
		return c
	}
	return cmpInt(v.PreNum, o.PreNum)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ParseTag reads the version of a tag. With a pattern, the tag must match
// it and the version is its first capture group (or the whole tag when it
// has none): `^criu-(.+)$` reads criu-4.2 as 4.2.
func ParseTag(tag string, pattern *regexp.Regexp) (Version, bool) {
	s := tag
	if pattern != nil {
		m := pattern.FindStringSubmatch(tag)
		if m == nil {
			return Version{}, false
		}
		if len(m) > 1 {
			s = m[1]
		}
	}
	return ParseVersion(s)
}

// Range is a set of versions such as ">=4.1, <5": every constraint must
// hold. The zero Range holds every version.
type Range struct {
	constraints []constraint
	text        string
}

type constraint struct {
	op string
	v  Version
}

// ParseRange reads comma-separated constraints, each an operator (>=, >,
// <=, <, =, ==, !=) and a version.
func ParseRange(s string) (Range, error) {
	r := Range{text: strings.TrimSpace(s)}
	if r.text == "" {
		return r, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		op := ""
		for _, o := range []string{">=", "<=", "==", "!=", ">", "<", "="} {
			if strings.HasPrefix(part, o) {
				op = o
				break
			}
		}
		if op == "" {
			return Range{}, fmt.Errorf("version range %q: %q lacks an operator (>=, >, <=, <, =, !=); write e.g. \">=4.1, <5\"", s, part)
		}
		text := strings.TrimSpace(strings.TrimPrefix(part, op))
		v, ok := ParseVersion(text)
		if !ok && !strings.Contains(text, ".") {
			v, ok = ParseVersion(text + ".0") // "<5" means "<5.0"
		}
		if !ok {
			return Range{}, fmt.Errorf("version range %q: %q is not a version such as 4.2 or 4.2.1", s, text)
		}
		if op == "==" {
			op = "="
		}
		r.constraints = append(r.constraints, constraint{op, v})
	}
	return r, nil
}

// Contains reports whether v satisfies every constraint.
func (r Range) Contains(v Version) bool {
	for _, c := range r.constraints {
		cmp := v.Compare(c.v)
		ok := map[string]bool{">=": cmp >= 0, ">": cmp > 0, "<=": cmp <= 0, "<": cmp < 0, "=": cmp == 0, "!=": cmp != 0}[c.op]
		if !ok {
			return false
		}
	}
	return true
}

// String is the range as written.
func (r Range) String() string { return r.text }
