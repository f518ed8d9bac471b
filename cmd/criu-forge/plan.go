package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/plan"
)

func newPlanCmd(g *globals) *cobra.Command {
	var opts plan.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan RECIPE [--target T ...] [--json]",
		Short: "Show the target matrix and each target's keys, without building (for CI)",
		Long: `Lists what criu-forge build would build: one entry per target with its
input key (a hash of everything that decides the output but the builder's
installed package versions: the same on every machine, a CI cache key) and,
where the source is prepared under --out and the builder is cached here,
the exact build key; otherwise null, with the reason. --json prints the
plan with a "matrix" that GitHub Actions' strategy.matrix takes as is.
It reads the committed lock and the local caches only: no network.`,
		Example: `  criu-forge plan recipes/criu-pidfd.yaml
  criu-forge plan recipes/criu-pidfd.yaml --json | jq -c .matrix`,
		Args: exactArgs(1, "one recipe file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := loadRecipe(g, args[0])
			if err != nil {
				return err
			}
			opts.CacheDir, opts.ToolVersion = g.cacheDir, toolVersion()
			p, err := plan.Make(r, opts)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TARGET\tFAMILY\tRUNNER\tINPUT KEY\tBUILD KEY\tOUTPUT")
			for _, t := range p.Targets {
				key := "-"
				if t.BuildKey != nil {
					key = *t.BuildKey
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%.19s\t%s\t%s\n", t.ID, t.Family, t.Runner, t.InputKey, key, t.Output)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.OutDir, "out", "out", "the build's output folder (its source/ and <target>/build.json are compared)")
	f.StringVar(&opts.Runner, "runner", "", "bubblewrap, docker or podman (default: the recipe's, $CRIU_FORGE_RUNNER, the first available)")
	f.StringSliceVar(&opts.Targets, "target", nil, "plan only these targets (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}
