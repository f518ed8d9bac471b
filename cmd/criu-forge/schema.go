package main

import (
	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/recipes"
)

func newSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "schema",
		Short:   "Print the recipe JSON Schema (for editors)",
		Example: "  criu-forge schema > .vscode/criu-forge.schema.json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := g.stdout.Write(recipes.Schema)
			return err
		},
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print criu-forge's version, commit and build date",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := g.stdout.Write([]byte("criu-forge " + toolVersion() + " (commit " + commit + ", built " + date + ")\n"))
			return err
		},
	}
}
