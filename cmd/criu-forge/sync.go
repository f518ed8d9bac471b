package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
)

func newSyncCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "sync RECIPE",
		Short: "Resolve the upstream and patch series and write the lock",
		Long: `Resolves the recipe's upstream ref to a commit (and Debian or tarball
sources to their sha256), each pull request through the GitHub API to its
commits and head, each commit and range through git, and each local patch,
and writes patches/<recipe>/series.lock with a normalized-patch hash for
every patch. Reports pull requests whose head moved since the last lock.

The GitHub token comes from GITHUB_TOKEN (60 requests/hour without one,
5,000 with one); it is never printed.`,
		Example: `  GITHUB_TOKEN=... criu-forge sync recipes/criu-pidfd-next.yaml
  criu-forge sync --github-api https://ghe.example/api/v3/ recipes/ours.yaml`,
		Args: exactArgs(1, "one recipe file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := loadRecipe(g, args[0])
			if err != nil {
				return err
			}
			opts, err := g.seriesOptions()
			if err != nil {
				return err
			}
			res, err := series.Sync(cmd.Context(), r, opts)
			if err != nil {
				return err
			}
			for _, le := range res.Lock.Entries {
				state := ""
				if le.State != "" {
					state = " [" + le.State + "]"
				}
				if le.Skipped != "" {
					fmt.Fprintf(g.stdout, "  %s: skipped (%s)\n", le.Entry, le.Skipped)
					continue
				}
				fmt.Fprintf(g.stdout, "  %s%s: %d patch(es)\n", le.Entry, state, len(le.Patches))
			}
			for _, d := range res.Drift {
				fmt.Fprintf(g.stdout, "drift: %s head moved %s -> %s\n", d.Entry, d.Old, d.New)
			}
			for _, n := range res.Notes {
				fmt.Fprintf(g.stderr, "note: %s\n", n)
			}
			verb := "unchanged"
			if res.Changed {
				verb = "written"
			}
			fmt.Fprintf(g.stdout, "lock %s: %s (revision %d)\n", verb, r.LockPath(), res.Lock.Revision)
			return nil
		},
	}
}

func loadRecipe(g *globals, path string) (*recipe.Recipe, error) {
	r, warns, err := recipe.Load(path)
	for _, w := range warns {
		fmt.Fprintf(g.stderr, "warning: %s\n", w)
	}
	return r, err
}

// lockOptions are the options of the source and series stages for verbs
// that work from the lock alone (prepare, build): no GitHub client.
func (g *globals) lockOptions() series.Options {
	return series.Options{CacheDir: g.cacheDir, Offline: g.offline, Log: g.stderr}
}

// seriesOptions adds the GitHub client for verbs that ask GitHub (sync,
// watch, publish --github-release); it exists only when the network may be
// used.
func (g *globals) seriesOptions() (series.Options, error) {
	opts := g.lockOptions()
	if g.offline {
		return opts, nil
	}
	gh, err := ghapi.New(ghapi.Options{
		BaseURL:          g.githubAPI,
		Token:            os.Getenv("GITHUB_TOKEN"),
		StateDir:         filepath.Join(g.cacheDir, "github"),
		MaxRateLimitWait: 2 * time.Minute,
	})
	if err != nil {
		return opts, err
	}
	opts.GitHub = gh
	return opts, nil
}
