package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/packager"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/repo"
	"github.com/criu-forge/criu-forge/internal/signing"
)

func newPublishCmd(g *globals) *cobra.Command {
	var (
		dir, outDir string
		key         signing.KeyOptions
		keep        int
		origin      string
	)
	cmd := &cobra.Command{
		Use:   "publish --repo DIR (RECIPE | PACKAGE...)",
		Short: "Add packages to signed apt and yum repositories",
		Long: `Adds packages to the apt repository (pool/ and dists/<suite>/, clear-signed
InRelease and Release.gpg) and the yum repositories (one per distro release,
repodata/ with repomd.xml.asc) in DIR, which any static web server can serve
(criu-forge serve). Given a recipe, it publishes the newest packages that
criu-forge build left in --out for each of its targets.

Publishing is atomic (a reader sees the old state or the new, never a mix),
serialized by a lock (two publishers lose no package), incremental (only new
packages are read), and refuses bad input without changing anything. The
signing key comes from a file (--key) or an environment variable
(--key-env); its passphrase from the variable named by --passphrase-env. It
is never printed.`,
		Example: `  criu-forge publish --repo /srv/repo --key-env REPO_KEY recipes/criu-pidfd.yaml
  criu-forge publish --repo /srv/repo --key signing.asc --keep 3 out/*.deb`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("expects a recipe or package files")}
			}
			if dir == "" {
				return usageError{errors.New("--repo DIR is required")}
			}
			if key.Path == "" && key.Env == "" {
				return usageError{errors.New("a signing key is required: --key FILE or --key-env VARIABLE")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			inputs, err := publishInputs(g, args, outDir)
			if err != nil {
				return err
			}
			signer, err := signing.Load(key)
			if err != nil {
				return err
			}
			rep, err := repo.Publish(cmd.Context(), repo.PublishOptions{Dir: dir, Packages: inputs, Signer: signer, Keep: keep, Origin: origin, Log: g.stderr})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "published %s (generation %d): %d added, %d unchanged, %d removed; suites: %s\n",
				dir, rep.Generation, len(rep.Added), len(rep.Unchanged), len(rep.Removed), strings.Join(rep.Suites, ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "repo", "", "repository directory")
	f.StringVar(&outDir, "out", "out", "where criu-forge build left the packages (with a recipe)")
	f.StringVar(&key.Path, "key", "", "OpenPGP private key file")
	f.StringVar(&key.Env, "key-env", "", "environment variable holding the armored private key")
	f.StringVar(&key.PassphraseEnv, "passphrase-env", "CRIU_FORGE_KEY_PASSPHRASE", "environment variable holding the key's passphrase")
	f.StringVar(&key.KeyID, "key-id", "", "full fingerprint of the (sub)key to sign with")
	f.IntVar(&keep, "keep", 0, "versions of each package to keep per suite (0: all)")
	f.StringVar(&origin, "origin", "", "Origin and Label of the repository (default criu-forge)")
	return cmd
}

// publishInputs turns the arguments into packages: a recipe stands for the
// newest packages built for each of its targets.
func publishInputs(g *globals, args []string, outDir string) ([]repo.Input, error) {
	if len(args) == 1 && (strings.HasSuffix(args[0], ".yaml") || strings.HasSuffix(args[0], ".yml")) {
		r, err := loadRecipe(g, args[0])
		if err != nil {
			return nil, err
		}
		return builtPackages(r, outDir)
	}
	var inputs []repo.Input
	for _, a := range args {
		inputs = append(inputs, repo.Input{Path: a})
	}
	return inputs, nil
}

func builtPackages(r *recipe.Recipe, outDir string) ([]repo.Input, error) {
	built, err := packager.ListVersions(outDir)
	if err != nil {
		return nil, err
	}
	var inputs []repo.Input
	for _, t := range r.Targets {
		for _, b := range built { // newest first per target
			if b.Name == r.Package.Name && b.Target.Distro == t.Distro && b.Target.Release == t.Release && b.Target.Arch == t.Arch {
				for _, a := range b.Artifacts {
					inputs = append(inputs, repo.Input{Path: a.Path})
				}
				break
			}
		}
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("no packages of %s in %s: run criu-forge build %s first", r.Name, filepath.Clean(outDir), r.Path)
	}
	return inputs, nil
}

func newServeCmd(g *globals) *cobra.Command {
	var dir, addr string
	cmd := &cobra.Command{
		Use:   "serve --repo DIR [--addr HOST:PORT]",
		Short: "Serve a published repository over HTTP",
		Long: `Serves the repository directory read-only over HTTP, for quick use and
tests; production repositories are better served by any static web server.`,
		Example: `  criu-forge serve --repo /srv/repo --addr 127.0.0.1:8080
  # then on a client:
  #   curl -o /etc/apt/keyrings/criu-forge.gpg http://HOST:8080/criu-forge-archive-keyring.gpg
  #   echo "deb [signed-by=/etc/apt/keyrings/criu-forge.gpg] http://HOST:8080 bookworm main" > /etc/apt/sources.list.d/criu-forge.list`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usageError{errors.New("--repo DIR is required")}
			}
			return repo.Serve(cmd.Context(), dir, addr, g.stderr)
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	return cmd
}
