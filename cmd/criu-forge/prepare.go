package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/series"
)

func newPrepareCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "prepare RECIPE --out DIR",
		Short: "Make the patched source tree from the lock",
		Long: `Builds the patched source tree from the recipe's series.lock alone, with no
GitHub call: the pinned upstream from the first source alternative that
answers, then every locked patch, checked against its hash, applied as one
commit with a Forge-Origin trailer naming where it came from. A patch that
does not apply stops the run with the entry, file and hunk; a patch the base
already contains is reported and skipped (apply.strict makes it an error).
DIR is written only when the whole series applied.`,
		Example: `  criu-forge prepare recipes/criu-pidfd.yaml --out build/criu
  criu-forge prepare --offline recipes/criu-pidfd.yaml --out build/criu`,
		Args: exactArgs(1, "one recipe file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out DIR is required")}
			}
			r, err := loadRecipe(g, args[0])
			if err != nil {
				return err
			}
			p, err := series.Prepare(cmd.Context(), r, out, g.lockOptions())
			if err != nil {
				return err
			}
			for _, o := range p.Outcomes {
				fmt.Fprintf(g.stdout, "  %s: %s\n", o.Status, o.Patch)
			}
			fmt.Fprintf(g.stdout, "prepared %s: %s + %d patch commit(s), head %s\n", p.Dir, p.Base.Describe, p.Applied(), p.Head)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory for the patched tree (replaced only when the series applied)")
	return cmd
}
