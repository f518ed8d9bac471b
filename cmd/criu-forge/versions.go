package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/packager"
	"github.com/criu-forge/criu-forge/internal/sandbox"
)

func newVersionsCmd(g *globals) *cobra.Command {
	var outDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "versions [RECIPE]",
		Short: "Show what was built, per target: version, upstream, patches, when",
		Example: `  criu-forge versions
  criu-forge versions recipes/criu-pidfd.yaml --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("expects at most one recipe")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			built, err := packager.ListVersions(outDir)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				r, err := loadRecipe(g, args[0])
				if err != nil {
					return err
				}
				var mine []packager.Built
				for _, b := range built {
					if b.Name == r.Package.Name {
						mine = append(mine, b)
					}
				}
				built = mine
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if built == nil {
					built = []packager.Built{}
				}
				return enc.Encode(built)
			}
			if len(built) == 0 {
				fmt.Fprintf(g.stdout, "nothing built in %s yet\n", outDir)
				return nil
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TARGET\tPACKAGE\tVERSION\tUPSTREAM\tPATCHES\tPACKAGED")
			for _, b := range built {
				v := b.Version.Deb
				if v == "" {
					v = b.Version.RPM + "-" + b.Version.Release
				}
				commit := b.Upstream.Commit
				if len(commit) > 12 {
					commit = commit[:12]
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s (%s)\t%d\t%s\n", b.Target, b.Name, v, b.Upstream.Version, commit, b.Patches, b.PackagedAt.Local().Format(time.DateTime))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "out", "output directory of criu-forge build")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func newBuildersCmd(g *globals) *cobra.Command {
	var prune bool
	var unusedFor time.Duration
	cmd := &cobra.Command{
		Use:   "builders [--prune [--unused-for DURATION]]",
		Short: "List or prune the cached builder root filesystems",
		Example: `  criu-forge builders
  criu-forge builders --prune --unused-for 720h`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if prune {
				removed, err := sandbox.Prune(g.cacheDir, time.Now().Add(-unusedFor))
				for _, b := range removed {
					fmt.Fprintf(g.stdout, "removed %s (%s, %d MB)\n", b.Key, b.Target.Name, b.Size>>20)
				}
				return err
			}
			list, err := sandbox.Builders(g.cacheDir)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY\tTARGET\tPACKAGES\tSIZE\tCREATED\tLAST USED")
			for _, b := range list {
				fmt.Fprintf(w, "%.16s\t%s\t%d\t%d MB\t%s\t%s\n", b.Key, b.Target.Name, len(b.Packages), b.Size>>20, b.Created.Local().Format(time.DateTime), b.LastUsed.Local().Format(time.DateTime))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "remove builders not used recently")
	cmd.Flags().DurationVar(&unusedFor, "unused-for", 30*24*time.Hour, "with --prune: remove builders unused for this long")
	return cmd
}
