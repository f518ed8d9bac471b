// Package verify proves that a criu binary can checkpoint and restore
// processes that hold pidfds, on this host's kernel: `criu check`, then a
// dump/restore round trip of a small C workload per case (a pidfd of a live
// child, of a reaped child, of a process outside the dumped tree).
//
// Entry point: Run(ctx, Options) -> *Report. Helpers: Unpack (a .deb into a
// scratch root, without touching dpkg's database), CRIU.Version/Check,
// BuildWorkload (shared with internal/doctor's tests).
package verify

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// CRIU is a criu binary and the environment it runs with.
type CRIU struct {
	Path string
	// Env is added to the process environment (LD_LIBRARY_PATH for a
	// package unpacked into a scratch root).
	Env []string
	// Root is the scratch root a package was unpacked into, if any.
	Root string
}

// Installed returns the criu found on PATH.
func Installed() (CRIU, error) {
	p, err := exec.LookPath("criu")
	if err != nil {
		return CRIU{}, fmt.Errorf("no criu on PATH: install a criu package (criu-forge build recipes/criu-pidfd.yaml makes one) or give its .deb: %w", err)
	}
	return CRIU{Path: p}, nil
}

func (c CRIU) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Path, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	return cmd
}

var versionLine = regexp.MustCompile(`(?m)^Version:\s*([0-9][0-9A-Za-z.~+-]*)\s*$`)

// Version runs `criu --version` and returns the "Version:" value.
func (c CRIU) Version(ctx context.Context) (string, error) {
	out, err := c.command(ctx, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", c.Path, err, strings.TrimSpace(string(out)))
	}
	return ParseVersion(out)
}

// ParseVersion reads the version out of `criu --version` output.
func ParseVersion(out []byte) (string, error) {
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("criu --version printed no \"Version:\" line: %q", firstLine(out))
	}
	return string(m[1]), nil
}

// CheckResult is the verdict of `criu check`.
type CheckResult struct {
	OK     bool   `json:"ok"`
	Output string `json:"output"`
}

// Summary is the line worth showing: "Looks good." or the first error.
func (r CheckResult) Summary() string {
	lines := strings.Split(strings.TrimSpace(r.Output), "\n")
	if r.OK {
		return lines[len(lines)-1]
	}
	for _, l := range lines {
		if strings.Contains(l, "Error") {
			return strings.TrimSpace(l)
		}
	}
	return lines[len(lines)-1]
}

// Check runs `criu check` (needs root). A criu that fails it cannot dump
// anything on this kernel.
func (c CRIU) Check(ctx context.Context) CheckResult {
	out, err := c.command(ctx, "check").CombinedOutput()
	res := CheckResult{OK: err == nil, Output: strings.TrimSpace(string(out))}
	if err != nil && res.Output == "" {
		res.Output = err.Error()
	}
	return res
}

// AtLeast reports whether version v is >= min, comparing the dotted
// numeric parts ("4.1" < "4.1.1" < "4.2"); a suffix after the numbers
// ("4.2.1+forge1") is ignored.
func AtLeast(v, min string) bool {
	a, b := numbers(v), numbers(min)
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x > y
		}
	}
	return true
}

func numbers(v string) []int {
	var out []int
	for _, part := range strings.Split(v, ".") {
		end := 0
		for end < len(part) && part[end] >= '0' && part[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		n, _ := strconv.Atoi(part[:end])
		out = append(out, n)
		if end < len(part) {
			break
		}
	}
	return out
}

// Unpack extracts .deb packages into root with `dpkg-deb -x` (the host's
// dpkg database is not touched) and returns the criu in them, run with the
// packages' own library folders on LD_LIBRARY_PATH. Their other runtime
// dependencies must be on the host; a missing library is an error naming
// it.
func Unpack(ctx context.Context, root string, debs ...string) (CRIU, error) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return CRIU{}, fmt.Errorf("unpack: dpkg-deb not found (install the Debian package dpkg): %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return CRIU{}, fmt.Errorf("unpack: %w", err)
	}
	for _, deb := range debs {
		if !strings.HasSuffix(deb, ".deb") {
			return CRIU{}, fmt.Errorf("unpack %s: verify unpacks .deb packages; install an .rpm and use --installed", deb)
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			return CRIU{}, fmt.Errorf("unpack %s: dpkg-deb -x: %w: %s", deb, err, strings.TrimSpace(string(out)))
		}
	}
	return InRoot(ctx, root)
}

// InRoot returns the criu of an installed or unpacked root (ROOT/usr/sbin/criu)
// set up to run on the host with the root's libraries.
func InRoot(ctx context.Context, root string) (CRIU, error) {
	bin := filepath.Join(root, "usr", "sbin", "criu")
	if _, err := os.Stat(bin); err != nil {
		return CRIU{}, fmt.Errorf("no usr/sbin/criu in %s: is this a criu package? %w", root, err)
	}
	c := CRIU{Path: bin, Root: root}
	if dirs := libraryDirs(root); len(dirs) > 0 {
		c.Env = []string{"LD_LIBRARY_PATH=" + strings.Join(dirs, ":")}
	}
	if missing := c.missingLibraries(ctx); len(missing) > 0 {
		return CRIU{}, fmt.Errorf("%s needs libraries this host lacks: %s (install the package's dependencies, see dpkg-deb -f PACKAGE Depends)", bin, strings.Join(missing, ", "))
	}
	return c, nil
}

// libraryDirs are the root's folders that hold shared libraries.
func libraryDirs(root string) []string {
	var dirs []string
	for _, pattern := range []string{"usr/lib/*-linux-gnu*", "usr/lib64", "usr/lib", "lib/*-linux-gnu*", "lib64"} {
		matches, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, d := range matches {
			if libs, _ := filepath.Glob(filepath.Join(d, "*.so*")); len(libs) > 0 {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// missingLibraries asks ldd which libraries cannot be found.
func (c CRIU) missingLibraries(ctx context.Context) []string {
	cmd := exec.CommandContext(ctx, "ldd", c.Path)
	cmd.Env = append(os.Environ(), c.Env...)
	out, err := cmd.Output()
	if err != nil {
		return nil // no ldd, or not dynamic: running it will say more
	}
	var missing []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "not found") {
			missing = append(missing, strings.Fields(l)[0])
		}
	}
	return missing
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}
