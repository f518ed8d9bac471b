// Command criu-forge builds CRIU packages that can do what the distro's
// cannot (checkpoint pidfds, for a start): upstream source at a pinned
// commit, a pinned patch series from pull requests, a build per distro in a
// container, .deb/.rpm packages, signed apt/yum repositories.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// Set at release time (-ldflags -X).
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// globals are the flags every verb shares.
type globals struct {
	cacheDir  string
	offline   bool
	githubAPI string
	stdout    io.Writer
	stderr    io.Writer
}

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and reports its error once, naming the verb.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && !errors.As(err, new(silentError)) {
		name := "criu-forge"
		if cmd != nil && cmd != root {
			name += " " + cmd.Name()
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	if err != nil && (cmd == nil || cmd == root) {
		return 2 // no verb ran: an unknown verb or a bad global flag
	}
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	var ec exitCoder
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return ec.ExitCode()
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// exitCoder lets a verb choose its exit code (watch: "action needed").
type exitCoder interface{ ExitCode() int }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "criu-forge",
		Short: "Build, package and publish a CRIU that can checkpoint what your distro's cannot",
		Long: `criu-forge fetches CRIU at a pinned commit, applies a pinned patch series
taken from upstream pull requests and local patches, builds it in a container
for each target distro, packages .deb and .rpm files that say exactly what
they hold, and publishes them to signed apt and yum repositories.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       toolVersion(),
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(fmt.Sprintf("criu-forge {{.Version}} (commit %s, built %s)\n", commit, date))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.cacheDir, "cache-dir", defaultCacheDir(), "cache of git mirrors, tarballs, builders and builds")
	pf.BoolVar(&g.offline, "offline", false, "use only the cache; fail saying what is missing")
	pf.StringVar(&g.githubAPI, "github-api", os.Getenv("GITHUB_API_URL"), "GitHub API URL (GitHub Enterprise: https://HOST/api/v3/); default: GitHub.com")

	root.AddCommand(
		newLintCmd(g),
		newSyncCmd(g),
		newPrepareCmd(g),
		newBuildCmd(g),
		newPackageCmd(g),
		newPublishCmd(g),
		newServeCmd(g),
		newVersionsCmd(g),
		newBuildersCmd(g),
		newSchemaCmd(g),
		newVersionCmd(g),
		newVerifyCmd(g), newDoctorCmd(g),
		newGendocsCmd(g),
		newPlanCmd(g),
		newWatchCmd(g),
	)
	return root
}

// silentError is an error already reported to the user.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }
func (e silentError) ExitCode() int { return e.code }

func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "criu-forge")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "criu-forge")
	}
	return filepath.Join(os.TempDir(), "criu-forge-cache")
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("expects %s (see criu-forge %s --help)", what, cmd.Name())}
		}
		return nil
	}
}

// toolVersion is the release version, or for `go install ...@vX.Y.Z` (no
// -ldflags) the module version Go recorded; "dev" for a work-tree build.
// `version` prints it and plan's input keys carry it: another criu-forge
// may build differently.
func toolVersion() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}
