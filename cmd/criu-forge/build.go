package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/signing"
)

func newBuildCmd(g *globals) *cobra.Command {
	return newBuildLikeCmd(g, false, &cobra.Command{
		Use:   "build RECIPE [--target T ...]",
		Short: "Prepare, build and package the recipe for its targets",
		Long: `Prepares the patched tree from the lock, builds it for each target in a
sandbox (bubblewrap by default; docker or podman with --runner or
CRIU_FORGE_RUNNER), and packages the staged tree as .deb or .rpm with its
manifest and SBOM, all under --out. An intact build for the same inputs is
reused (--rebuild forces one). One failing target does not stop the others;
the exit code is 1 when any failed.`,
		Example: `  criu-forge build recipes/criu-pidfd.yaml --target debian-12
  criu-forge build recipes/criu-pidfd.yaml --runner docker --jobs 2
  criu-forge build recipes/criu-3.19-pidfd.yaml --rpm-sign-key-env RPM_KEY`,
	})
}

func newPackageCmd(g *globals) *cobra.Command {
	return newBuildLikeCmd(g, true, &cobra.Command{
		Use:   "package RECIPE [--target T ...]",
		Short: "Repackage the staged trees of earlier builds, without building",
		Long: `Packages again the staged trees that criu-forge build left under --out for
the same inputs (for example after changing package metadata), without
running a build. A target with no intact build for its inputs fails and
says to run criu-forge build.`,
		Example: `  criu-forge package recipes/criu-pidfd.yaml --target debian-12`,
	})
}

// newBuildLikeCmd fills in the flags and the run of build and package,
// which differ only in whether building is allowed.
func newBuildLikeCmd(g *globals, packageOnly bool, cmd *cobra.Command) *cobra.Command {
	var (
		opts        pipeline.Options
		signKeyFile string
		signKeyEnv  string
		signID      string
	)
	cmd.Args = exactArgs(1, "one recipe file")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r, err := loadRecipe(g, args[0])
		if err != nil {
			return err
		}
		opts.Series = g.lockOptions() // builds work from the lock alone
		opts.Progress = g.stderr
		opts.PackageOnly = packageOnly
		if signKeyFile != "" || signKeyEnv != "" {
			opts.RPMSign = &signing.KeyOptions{Path: signKeyFile, Env: signKeyEnv, PassphraseEnv: "CRIU_FORGE_RPM_PASSPHRASE", KeyID: signID}
		}
		res, err := pipeline.Build(cmd.Context(), r, opts)
		if err != nil {
			return err
		}
		for _, t := range res.Targets {
			if t.Err != nil {
				fmt.Fprintf(g.stdout, "%s: FAILED: %v\n", t.Target.ID(), t.Err)
				continue
			}
			how := "built"
			if t.Build.CacheHit {
				how = "cached"
			}
			fmt.Fprintf(g.stdout, "%s: %s, version %s\n", t.Target.ID(), how, t.Package.Version.For(t.Target.Family()))
			for _, a := range t.Package.Artifacts {
				fmt.Fprintf(g.stdout, "  %s\n", a.Path)
			}
			fmt.Fprintf(g.stdout, "  manifest %s\n", t.Package.Manifest)
		}
		if n := res.Failed(); n > 0 {
			fmt.Fprintf(g.stderr, "%d of %d targets failed\n", n, len(res.Targets))
			return silentError{1}
		}
		return nil
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Targets, "target", nil, "target id to build (repeatable; default: all of the recipe's)")
	f.StringVar(&opts.Runner, "runner", "", "bubblewrap, docker or podman (default: recipe, $CRIU_FORGE_RUNNER, bubblewrap)")
	f.IntVar(&opts.Jobs, "jobs", 1, "targets built at once")
	if !packageOnly {
		f.BoolVar(&opts.Rebuild, "rebuild", false, "build even when an intact output for the same inputs exists")
		f.BoolVar(&opts.Incremental, "incremental", false, "reuse the previous build tree when only the source changed (fast while working on a patch; releases build fresh)")
	}
	f.BoolVar(&opts.Verbose, "verbose", false, "stream the compiler output")
	f.StringVar(&opts.OutDir, "out", "out", "output directory")
	f.StringVar(&signKeyFile, "rpm-sign-key", "", "sign rpms with the OpenPGP private key in this file (passphrase from $CRIU_FORGE_RPM_PASSPHRASE)")
	f.StringVar(&signKeyEnv, "rpm-sign-key-env", "", "sign rpms with the armored private key held in this environment variable")
	f.StringVar(&signID, "rpm-sign-key-id", "", "full fingerprint of the (sub)key to sign with")
	return cmd
}
