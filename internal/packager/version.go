package packager

import (
	"fmt"
	"regexp"
	"strings"
)

// Target is the distro release and architecture a staged tree was built for.
type Target struct {
	Distro  string // debian, ubuntu, rhel, rocky, almalinux, fedora
	Release string // "12", "24.04", "9", "41"
	Arch    string // Debian spelling: amd64, arm64, ppc64el, s390x
}

func (t Target) String() string { return t.Distro + "-" + t.Release + "-" + t.Arch }

// Family is the package format a distro uses natively: "deb" or "rpm".
func (t Target) Family() (string, error) {
	switch t.Distro {
	case "debian", "ubuntu":
		return FormatDeb, nil
	case "rhel", "rocky", "almalinux", "fedora":
		return FormatRPM, nil
	}
	return "", fmt.Errorf("target %s: unknown distro %q (known: debian, ubuntu, rhel, rocky, almalinux, fedora)", t, t.Distro)
}

// Package formats.
const (
	FormatDeb = "deb"
	FormatRPM = "rpm"
)

// Version is one package version in both spellings the formats need.
type Version struct {
	Upstream string // "4.2.1"
	Deb      string // full Debian version: "4.2.1+forge3-1~deb12"
	RPM      string // rpm Version tag: "4.2.1+forge3"
	Release  string // rpm Release tag: "1.el9"
}

// For returns the version string a format writes into its metadata
// (Debian's Version field; rpm's Version-Release).
func (v Version) For(format string) string {
	if format == FormatRPM {
		return v.RPM + "-" + v.Release
	}
	return v.Deb
}

var upstreamVersionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.~]*$`)

// MakeVersion computes the package versions of a build.
//
// The scheme, for upstream version U, series revision S (>= 1, rises with
// every change of the patch series or recipe) and build revision B (>= 1):
//
//	deb:  U+forgeS-B~<tag>        4.2.1+forge3-1~deb12, 4.2.1+forge3-1~ubuntu24.04
//	rpm:  Version U+forgeS        4.2.1+forge3
//	      Release B.<dist>        1.el9, 1.el9.rocky, 1.el9.alma, 1.fc41
//
// Why: the "+forgeS" suffix sits in the upstream part of the version, so the
// package sorts above every distro package of the same upstream version
// whatever its revision or release (4.2.1-1, 4.2.1-3+b1, 4.2.1-2.el9) and
// below the next upstream version (4.2.2-1). S is compared before B, so a
// new series always wins over a rebuild of the old one. The rpm Release
// holds only the build revision and the dist tag, kept apart from the
// version. The Debian revision "B~<tag>" keeps the version non-native (a
// native one would make lintian want changelog.gz instead of
// changelog.Debian.gz) and sorts 12 below 13, so a distro upgrade does not
// downgrade. A release starting "0." (Fedora's pre-release habit) would sort
// below the distro's own "1.el9", so it is not used. The per-distro tag
// keeps file names of different targets apart (Rocky and Alma mark their
// own rebuilds ".rocky" and ".alma" the same way).
//
// An upstream "-" (4.2-rc1) becomes "~", so release candidates sort before
// the release in both formats.
func MakeVersion(upstream string, series, build int, t Target) (Version, error) {
	up := strings.ReplaceAll(strings.TrimPrefix(upstream, "v"), "-", "~")
	if !upstreamVersionRE.MatchString(up) {
		return Version{}, fmt.Errorf("upstream version %q: want digits, letters, dots (for example 4.2.1)", upstream)
	}
	if series < 1 {
		return Version{}, fmt.Errorf("series revision %d: must be 1 or more (the lock file keeps it)", series)
	}
	if build < 1 {
		return Version{}, fmt.Errorf("build revision %d: must be 1 or more", build)
	}
	tag, err := distTag(t)
	if err != nil {
		return Version{}, err
	}
	rpmTag := tag
	if t.Distro == "debian" || t.Distro == "ubuntu" {
		rpmTag = debTag(t)
	}
	base := fmt.Sprintf("%s+forge%d", up, series)
	return Version{
		Upstream: up,
		Deb:      fmt.Sprintf("%s-%d~%s", base, build, debTag(t)),
		RPM:      base,
		Release:  fmt.Sprintf("%d.%s", build, rpmTag),
	}, nil
}

var releaseRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// distTag is the rpm dist tag of a target (el9, el9.rocky, fc41).
func distTag(t Target) (string, error) {
	if !releaseRE.MatchString(t.Release) {
		return "", fmt.Errorf("target %s: release %q is not a number like 12, 24.04 or 9", t, t.Release)
	}
	major := strings.SplitN(t.Release, ".", 2)[0]
	switch t.Distro {
	case "rhel":
		return "el" + major, nil
	case "rocky":
		return "el" + major + ".rocky", nil
	case "almalinux":
		return "el" + major + ".alma", nil
	case "fedora":
		return "fc" + major, nil
	case "debian", "ubuntu":
		return debTag(t), nil
	}
	_, err := t.Family()
	return "", err
}

// debTag names the target in a Debian version: deb12, ubuntu24.04, el9...
func debTag(t Target) string {
	switch t.Distro {
	case "debian":
		return "deb" + strings.SplitN(t.Release, ".", 2)[0]
	case "rhel", "rocky", "almalinux", "fedora":
		tag, _ := distTag(t)
		return strings.ReplaceAll(tag, ".", "")
	}
	return t.Distro + t.Release
}
