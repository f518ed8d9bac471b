package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/ghrelease"
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
		ghTag       string
		ghRepo      string
	)
	cmd := &cobra.Command{
		Use:   "publish (--repo DIR | --github-release TAG) (RECIPE | PACKAGE...)",
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
is never printed.

--github-release TAG also uploads the packages, their manifests and a
SHA256SUMS to that release of --github-repo (created when missing; the
token comes from GITHUB_TOKEN). Running it again uploads nothing twice, and
a file of the same name with other content is refused, not replaced.`,
		Example: `  criu-forge publish --repo /srv/repo --key-env REPO_KEY recipes/criu-pidfd.yaml
  criu-forge publish --repo /srv/repo --key signing.asc --keep 3 out/*.deb
  criu-forge publish --github-release criu-4.2.1-forge3 --github-repo platform/criu recipes/criu-pidfd.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("expects a recipe or package files")}
			}
			if dir == "" && ghTag == "" {
				return usageError{errors.New("say where to publish: --repo DIR, --github-release TAG, or both")}
			}
			if dir != "" && key.Path == "" && key.Env == "" {
				return usageError{errors.New("a signing key is required: --key FILE or --key-env VARIABLE")}
			}
			if ghTag != "" && ghRepo == "" {
				return usageError{errors.New("--github-release needs --github-repo OWNER/NAME")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			inputs, manifests, err := publishInputs(g, args, outDir)
			if err != nil {
				return err
			}
			if dir != "" {
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
			}
			if ghTag != "" {
				return publishGitHubRelease(cmd.Context(), g, ghRepo, ghTag, inputs, manifests)
			}
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
	f.IntVar(&keep, "keep", 0, "versions of each package to keep per apt suite or yum release (0: all)")
	f.StringVar(&origin, "origin", "", "Origin and Label of the repository (default criu-forge)")
	f.StringVar(&ghTag, "github-release", "", "also upload to this release (tag) of --github-repo")
	f.StringVar(&ghRepo, "github-repo", "", "OWNER/NAME of the team's GitHub repository for --github-release")
	return cmd
}

// publishInputs turns the arguments into packages: a recipe stands for the
// newest packages built for each of its targets, whose manifests it also
// returns.
func publishInputs(g *globals, args []string, outDir string) ([]repo.Input, []string, error) {
	if len(args) == 1 && (strings.HasSuffix(args[0], ".yaml") || strings.HasSuffix(args[0], ".yml")) {
		r, err := loadRecipe(g, args[0])
		if err != nil {
			return nil, nil, err
		}
		return builtPackages(r, outDir)
	}
	var inputs []repo.Input
	for _, a := range args {
		inputs = append(inputs, repo.Input{Path: a})
	}
	return inputs, nil, nil
}

func builtPackages(r *recipe.Recipe, outDir string) ([]repo.Input, []string, error) {
	built, err := packager.ListVersions(outDir)
	if err != nil {
		return nil, nil, err
	}
	var inputs []repo.Input
	var manifests []string
	for _, t := range r.Targets {
		for _, b := range built { // newest first per target
			if b.Name == r.Package.Name && b.Target.Distro == t.Distro && b.Target.Release == t.Release && b.Target.Arch == t.Arch {
				for _, a := range b.Artifacts {
					inputs = append(inputs, repo.Input{Path: a.Path})
				}
				manifests = append(manifests, b.Manifest)
				break
			}
		}
	}
	if len(inputs) == 0 {
		return nil, nil, fmt.Errorf("no packages of %s in %s: run criu-forge build %s first", r.Name, filepath.Clean(outDir), r.Path)
	}
	return inputs, manifests, nil
}

// publishGitHubRelease uploads packages and manifests to a release.
func publishGitHubRelease(ctx context.Context, g *globals, ownerName, tag string, inputs []repo.Input, manifests []string) error {
	if g.offline {
		return errors.New("--github-release needs the network; drop --offline")
	}
	owner, name, err := ghapi.ParseRepo(ownerName)
	if err != nil {
		return usageError{fmt.Errorf("--github-repo: %w", err)}
	}
	opts, err := g.seriesOptions()
	if err != nil {
		return err
	}
	files := append([]string(nil), manifests...)
	for _, in := range inputs {
		files = append(files, in.Path)
	}
	rep, err := ghrelease.Upload(ctx, ghrelease.Options{Client: opts.GitHub, Owner: owner, Repo: name, Tag: tag, Files: files, Log: g.stderr})
	if err != nil {
		return err
	}
	verb := "updated"
	if rep.Created {
		verb = "created"
	}
	fmt.Fprintf(g.stdout, "github release %s %s: %d uploaded, %d already there %s\n", tag, verb, len(rep.Uploaded), len(rep.Skipped), rep.URL)
	return nil
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
