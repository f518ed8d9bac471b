package debsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"slices"
	"strings"

	"pault.ag/go/debian/control"
)

// archive is one archive base URI taken from the machine's apt
// configuration, with what apt says it serves from there.
type archive struct {
	URI      string   // base URI ending in "/", e.g. http://host/debian/
	Releases []string // the Release names apt uses from it (bookworm, bookworm-security)
}

// security reports whether every release apt takes from this archive is a
// security suite: such an archive does not carry sid or a plain codename.
func (a archive) security() bool {
	if len(a.Releases) == 0 {
		return false
	}
	for _, r := range a.Releases {
		if !isSecuritySuite(r) {
			return false
		}
	}
	return true
}

func isSecuritySuite(s string) bool {
	return strings.HasSuffix(s, "-security") || strings.HasSuffix(s, "/updates")
}

// parseIndexTargets reads `apt-get indextargets` output (deb822 records, one
// per index apt knows) and returns the archive base URIs in the order apt
// lists them, each once. Only http and https archives are kept: those are
// the ones this package can fetch from.
func parseIndexTargets(r io.Reader) ([]archive, error) {
	pr, err := control.NewParagraphReader(r, nil)
	if err != nil {
		return nil, fmt.Errorf("read apt-get indextargets output: %w", err)
	}
	var out []archive
	index := map[string]int{}
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read apt-get indextargets output: %w", err)
		}
		uri := archiveURI(p)
		if uri == "" {
			continue
		}
		i, seen := index[uri]
		if !seen {
			i = len(out)
			index[uri] = i
			out = append(out, archive{URI: uri})
		}
		if rel := strings.TrimSpace(p.Values["Release"]); rel != "" && !slices.Contains(out[i].Releases, rel) {
			out[i].Releases = append(out[i].Releases, rel)
		}
	}
}

// archiveURI returns a record's archive base: Repo-URI when apt gives it,
// otherwise Base-URI with its "dists/<release>/" tail cut off.
func archiveURI(p *control.Paragraph) string {
	uri := strings.TrimSpace(p.Values["Repo-URI"])
	if uri == "" {
		base := strings.TrimSpace(p.Values["Base-URI"])
		i := strings.LastIndex(base, "/dists/")
		if i < 0 {
			return ""
		}
		uri = base[:i+1]
	}
	if !isHTTPURL(uri) {
		return ""
	}
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	return uri
}

// candidates orders the archives to try for suite: a security archive is
// tried only for a security suite, and first for one.
func candidates(archives []archive, suite string) []string {
	var plain, security []string
	for _, a := range archives {
		if a.security() {
			security = append(security, a.URI)
		} else {
			plain = append(plain, a.URI)
		}
	}
	if isSecuritySuite(suite) {
		return append(security, plain...)
	}
	return plain
}

// aptCommand runs an apt tool and returns its standard output; a variable
// so that tests can stand in for the machine's apt.
var aptCommand = func(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// aptMirrors returns the archive base URIs of the machine's apt
// configuration worth trying for suite.
func aptMirrors(ctx context.Context, suite string) ([]string, error) {
	out, err := aptCommand(ctx, "apt-get", "indextargets")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoMirror, err)
	}
	archives, err := parseIndexTargets(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoMirror, err)
	}
	uris := candidates(archives, suite)
	if len(uris) == 0 {
		return nil, fmt.Errorf("%w: apt-get indextargets lists no http(s) archive that could carry %s", ErrNoMirror, suite)
	}
	return uris, nil
}

// aptChecksValidUntil reports whether the machine's apt refuses a Release
// file past its Valid-Until (Acquire::Check-Valid-Until, default true).
func aptChecksValidUntil(ctx context.Context) bool {
	out, err := aptCommand(ctx, "apt-config", "shell", "V", "Acquire::Check-Valid-Until/b")
	if err != nil {
		return true
	}
	return !strings.Contains(string(out), "V='false'")
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
}
