package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
)

func newLintCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "lint RECIPE...",
		Short: "Check recipes without the network",
		Long: `Checks each recipe against the recipe schema and the rules a schema cannot
state (known distro releases, one kind per series entry, local patch files
inside the patch directory), and says whether its series.lock is current.
Every problem names file:line:column and what is expected.`,
		Example: "  criu-forge lint recipes/*.yaml",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("expects one or more recipe files")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, path := range args {
				r, warns, err := recipe.Load(path)
				for _, w := range warns {
					fmt.Fprintf(g.stderr, "warning: %s\n", w)
				}
				if err != nil {
					fmt.Fprintln(g.stderr, err)
					failed++
					continue
				}
				fmt.Fprintf(g.stdout, "ok: %s: %s, %d series entries, %d targets; %s\n", path, r.Name, len(r.Series), len(r.Targets), lockStatus(r))
			}
			if failed > 0 {
				fmt.Fprintf(g.stderr, "%d of %d recipes have errors\n", failed, len(args))
				return silentError{1}
			}
			return nil
		},
	}
}

// lockStatus says whether a recipe's lock is there and current.
func lockStatus(r *recipe.Recipe) string {
	l, err := series.ReadLock(r.LockPath())
	switch {
	case errors.Is(err, series.ErrNoLock):
		return "no lock yet (run criu-forge sync)"
	case err != nil:
		return "lock unreadable: " + err.Error()
	case l.CheckCurrent(r, r.LockPath()) != nil:
		return "lock out of date (run criu-forge sync)"
	}
	return fmt.Sprintf("lock current (revision %d)", l.Revision)
}
