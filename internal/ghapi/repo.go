package ghapi

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// GitHub's own limits: owners are alphanumerics and hyphens (Enterprise
// managed users add "_shortcode"), repositories add "." and "_". Checking
// them matters beyond tidiness: go-github puts owner and name into the
// request path unescaped, so "../" must never get through.
var (
	ownerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// ValidRepo reports whether owner and name are well-formed GitHub names.
func ValidRepo(owner, name string) error {
	if !ownerPattern.MatchString(owner) {
		return fmt.Errorf("invalid repository owner %q: use letters, digits, '-' or '_'", owner)
	}
	if !namePattern.MatchString(name) || name == "." || name == ".." || strings.HasSuffix(name, ".git") {
		return fmt.Errorf("invalid repository name %q: use letters, digits, '.', '-' or '_'", name)
	}
	return nil
}

// ParseRepo reads a repository reference as users write it: "owner/name",
// https://github.com/owner/name(.git), github.com/owner/name,
// git@github.com:owner/name.git,
// ssh://git@host[:port]/owner/name.git, git://host/owner/name; any host
// is accepted, so GitHub Enterprise addresses work the same way.
func ParseRepo(s string) (owner, name string, err error) {
	path, err := repoPath(strings.TrimSpace(s))
	if err != nil {
		return "", "", fmt.Errorf("repository %q: %w", s, err)
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	parts := strings.Split(path, "/")
	if len(parts) == 3 && !strings.Contains(s, "://") && strings.Contains(parts[0], ".") {
		// github.com/owner/name, as Go import paths write it: owners
		// never contain a dot, hosts do.
		parts = parts[1:]
	}
	if len(parts) != 2 {
		return "", "", fmt.Errorf("repository %q: want owner/name, as in checkpoint-restore/criu or a clone URL", s)
	}
	if err := ValidRepo(parts[0], parts[1]); err != nil {
		return "", "", fmt.Errorf("repository %q: %w", s, err)
	}
	return parts[0], parts[1], nil
}

// repoPath returns the owner/name part of a reference.
func repoPath(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("not a URL: %w", err)
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git", "git+ssh":
		default:
			return "", fmt.Errorf("unsupported URL scheme %q", u.Scheme)
		}
		if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("want a repository URL such as https://HOST/owner/name")
		}
		return u.Path, nil
	}
	// scp-like syntax: [user@]host:owner/name(.git)
	if host, path, ok := strings.Cut(s, ":"); ok {
		if strings.ContainsAny(host, "/") || host == "" || strings.HasPrefix(path, "/") {
			return "", fmt.Errorf("want user@host:owner/name")
		}
		return path, nil
	}
	return s, nil
}
