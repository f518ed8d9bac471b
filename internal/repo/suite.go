package repo

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// TargetSuites maps the distro tag that criu-forge puts in a .deb version
// (4.2.1+forge3~deb12u1: the tag is "deb12") to the apt suite the package is
// published in. The packager writes the tag; Publish reads it back when an
// Input names no suite.
var TargetSuites = map[string]string{
	"deb11":   "bullseye",
	"deb12":   "bookworm",
	"deb13":   "trixie",
	"deb14":   "forky",
	"ubu2004": "focal",
	"ubu2204": "jammy",
	"ubu2404": "noble",
	"ubu2504": "plucky",
}

// distroTag finds the last "~deb12", "+deb12u1", "~ubu2404..." tag of a
// version (the last one, because an upstream version could carry a tag-like
// word earlier).
var distroTag = regexp.MustCompile(`[~+.](deb\d+|ubu\d{4})(?:u\d+|\.\d+)*`)

// SuiteForVersion returns the suite a Debian version's distro tag names.
func SuiteForVersion(v string) (string, error) {
	m := distroTag.FindAllStringSubmatch(v, -1)
	if len(m) == 0 {
		return "", fmt.Errorf("version %s has no distro tag (~deb12, ~ubu2404, ...): name the suite explicitly", v)
	}
	tag := m[len(m)-1][1]
	suite, ok := TargetSuites[tag]
	if !ok {
		return "", fmt.Errorf("version %s: unknown distro tag %s (known: %s): name the suite explicitly", v, tag, strings.Join(knownTags(), ", "))
	}
	return suite, nil
}

func knownTags() []string {
	var tags []string
	for t := range TargetSuites {
		tags = append(tags, t)
	}
	sort.Strings(tags)
	return tags
}

var suiteName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
