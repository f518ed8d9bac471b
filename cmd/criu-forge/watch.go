package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/signing"
	"github.com/criu-forge/criu-forge/internal/watch"
)

// watchFlags are the flags of `watch`.
type watchFlags struct {
	json, write, apply, notifyAlways bool
	prereleases                      bool
	versionRange, tagPattern         string
	webhook, exec                    string
	interval                         time.Duration
	stateDir                         string
	build                            pipeline.Options
	repoDir                          string
	key                              signing.KeyOptions
	keep                             int
}

func newWatchCmd(g *globals) *cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use:   "watch RECIPE...",
		Short: "Watch upstream releases and the series' pull requests; plan, write, act",
		Long: `Checks each recipe's upstream releases and tags (stable only unless
--pre-releases; --range and --tag-pattern narrow them; tags that are not
versions never count) and every pull request of its series: open, closed or
merged, head moved since the lock. On a new release it tries the locked
series on it, by content: which entries still apply, which conflict (file
and hunk), which the release already contains and can be dropped. It prints
the plan, or with --json the same for scripts:

  planVersion (1), checkedAt, actionNeeded, github {requests, notModified},
  recipes[]: recipe, path, currentVersion, lockRevision, error,
    newReleases[] {tag, version, commit, prerelease, publishedAt, kind
      (release|tag), url}, newest first,
    pullRequests[] {entry, repo, number, title, url, state
      (open|closed|merged), lockedState, mergedAt, lockedHead, head,
      headMoved, containedIn (oldest release tag holding it, or "base")},
    rebase {from, to (a release), clean, entries[] {entry, result
      (applies|contained|conflict|skipped), patches, containedPatches,
      conflict {patch, index, file, hunk, line, reason}}},
    actions[] {kind (sync|rebase|drop|conflict|resync|rebuild), entry,
      from, to, old, new, reason}, notes[].
  Fields may be added; planVersion rises if one changes meaning.

  --write    carries the recipe to the plan: upstream.version and the git
             ref (and commit pin) to the new release, contained entries
             removed, the lock re-synced; comments and layout are kept.
             A conflict is left to a person, and so are Debian and
             tarball alternatives (their versions cannot be guessed):
             until they name the new release, --write refuses.
  --apply    --write, then build every target and, with --repo and a key,
             publish; one failing recipe or target does not stop the others.
  --webhook  posts the plan JSON (also $CRIU_FORGE_WATCH_WEBHOOK);
  --exec     runs a shell command with the plan JSON on stdin; both fire
             when there is something to say, once per distinct plan
             (--notify-always: every time).
  --interval runs as a daemon: checks every interval (±10% jitter) until
             SIGTERM; one watch per --state-dir.

GitHub answers are cached with their ETags (<cache-dir>/github): a run with
nothing new costs only 304 answers, which GitHub does not count against the
rate limit. The token comes from GITHUB_TOKEN and is never printed.

Exit codes: 0 nothing to do; 3 action needed (with --write: the recipe was
changed, review and commit it); 1 error (a recipe could not be checked, a
write, build, publish or notification failed); 2 usage. With --apply, 0
means every action was carried out.`,
		Example: `  criu-forge watch recipes/criu-pidfd.yaml recipes/criu-pidfd-next.yaml
  criu-forge watch --json recipes/criu-pidfd.yaml | jq '.recipes[].actions'
  criu-forge watch --write recipes/criu-pidfd.yaml && git diff
  criu-forge watch --apply --repo /srv/criu-repo --key-env CRIU_FORGE_KEY recipes/*.yaml
  criu-forge watch --interval 6h --webhook https://chat.example/hooks/... recipes/*.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("expects one or more recipe files (see criu-forge watch --help)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd.Context(), g, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.json, "json", false, "print the plan as JSON")
	fl.BoolVar(&f.write, "write", false, "edit the recipes and re-sync their locks as the plan proposes")
	fl.BoolVar(&f.apply, "apply", false, "write, then build, package and (with --repo) publish what changed")
	fl.BoolVar(&f.prereleases, "pre-releases", false, "count pre-releases (rc, beta...) as new releases")
	fl.StringVar(&f.versionRange, "range", "", `only versions in this range, e.g. ">=4.2, <5"`)
	fl.StringVar(&f.tagPattern, "tag-pattern", "", "only tags matching this regexp; its first group, if any, is the version (e.g. ^criu-(.+)$)")
	// The environment is read at run time, not as the flag's default:
	// --help prints defaults, and a webhook URL carries its secret.
	fl.StringVar(&f.webhook, "webhook", "", "POST the plan JSON to this URL when there is something to say (default $CRIU_FORGE_WATCH_WEBHOOK)")
	fl.StringVar(&f.exec, "exec", "", "run this shell command with the plan JSON on stdin when there is something to say")
	fl.BoolVar(&f.notifyAlways, "notify-always", false, "notify on every run, not once per distinct plan")
	fl.DurationVar(&f.interval, "interval", 0, "run as a daemon, checking this often (e.g. 6h); 0 checks once")
	fl.StringVar(&f.stateDir, "state-dir", "", "watch state and instance lock (default <cache-dir>/watch)")
	fl.StringVar(&f.build.OutDir, "out", "out", "--apply: output directory (one folder per recipe)")
	fl.StringVar(&f.build.Runner, "runner", "", "--apply: bubblewrap, docker or podman")
	fl.StringSliceVar(&f.build.Targets, "target", nil, "--apply: target ids to build (default: all)")
	fl.IntVar(&f.build.Jobs, "jobs", 1, "--apply: targets built at once")
	fl.StringVar(&f.repoDir, "repo", "", "--apply: publish the new packages (apt and yum) to this repository")
	fl.StringVar(&f.key.Path, "key", "", "--apply: OpenPGP private key file to sign the repository")
	fl.StringVar(&f.key.Env, "key-env", "", "--apply: environment variable holding the armored private key")
	fl.StringVar(&f.key.PassphraseEnv, "passphrase-env", "CRIU_FORGE_KEY_PASSPHRASE", "--apply: environment variable holding the key's passphrase")
	fl.StringVar(&f.key.KeyID, "key-id", "", "--apply: full fingerprint of the (sub)key to sign with")
	fl.IntVar(&f.keep, "keep", 0, "--apply: versions kept per package in the repository (0: all)")
	return cmd
}

func runWatch(ctx context.Context, g *globals, f *watchFlags, paths []string) error {
	if g.offline {
		return usageError{errors.New("watch asks GitHub what changed: it cannot run --offline")}
	}
	if f.webhook == "" {
		f.webhook = os.Getenv("CRIU_FORGE_WATCH_WEBHOOK")
	}
	filter := watch.Filter{Prereleases: f.prereleases}
	var err error
	if filter.Range, err = watch.ParseRange(f.versionRange); err != nil {
		return usageError{err}
	}
	if f.tagPattern != "" {
		if filter.TagPattern, err = regexp.Compile(f.tagPattern); err != nil {
			return usageError{fmt.Errorf("--tag-pattern: %w", err)}
		}
	}
	if (f.repoDir != "") != (f.key.Path != "" || f.key.Env != "") {
		return usageError{errors.New("--repo needs a signing key (--key FILE or --key-env VARIABLE), and a key needs --repo")}
	}
	if f.repoDir != "" && !f.apply {
		return usageError{errors.New("--repo publishes what --apply builds: add --apply")}
	}
	if f.interval < 0 {
		return usageError{errors.New("--interval must be positive")}
	}
	var signer *signing.Signer
	if f.repoDir != "" {
		if signer, err = signing.Load(f.key); err != nil {
			return err
		}
	}
	if f.stateDir == "" {
		f.stateDir = filepath.Join(g.cacheDir, "watch")
	}
	inst, err := watch.Claim(f.stateDir)
	if err != nil {
		return err
	}
	defer inst.Release()

	once := func(ctx context.Context) (int, error) { return watchOnce(ctx, g, f, filter, signer, paths) }
	if f.interval == 0 {
		code, err := once(ctx)
		if err != nil {
			return err
		}
		if code != 0 {
			return silentError{code}
		}
		return nil
	}
	fmt.Fprintf(g.stderr, "watch: checking %d recipe(s) every %v (±10%%); state in %s\n", len(paths), f.interval, f.stateDir)
	return watch.Daemon(ctx, f.interval, func(ctx context.Context) error {
		code, err := once(ctx)
		if err == nil && code == watch.ExitError {
			err = errors.New("this check failed (see above)")
		}
		return err
	}, g.stderr)
}

// watchOnce checks the recipes once and does what the flags ask; it
// returns the exit code of the run.
func watchOnce(ctx context.Context, g *globals, f *watchFlags, filter watch.Filter, signer *signing.Signer, paths []string) (int, error) {
	var recipes []*recipe.Recipe
	for _, p := range paths {
		r, err := loadRecipe(g, p)
		if err != nil {
			return watch.ExitError, err
		}
		recipes = append(recipes, r)
	}
	sopts, err := g.seriesOptions()
	if err != nil {
		return watch.ExitError, err
	}
	plan, err := watch.Run(ctx, recipes, watch.Options{
		CacheDir: g.cacheDir, StateDir: f.stateDir, GitHub: sopts.GitHub, Filter: filter, Log: g.stderr,
	})
	if err != nil {
		return watch.ExitError, err
	}
	if f.json {
		data, err := plan.JSON()
		if err != nil {
			return watch.ExitError, err
		}
		g.stdout.Write(data)
	} else {
		plan.Render(g.stdout)
	}
	code := plan.ExitCode()
	if err := notify(ctx, g, f, plan); err != nil {
		fmt.Fprintf(g.stderr, "watch: %v\n", err)
		code = watch.ExitError
	}
	out := g.stdout
	if f.json {
		out = g.stderr // stdout holds only the plan
	}
	switch {
	case f.apply:
		rep := watch.Act(ctx, recipes, plan, watch.ActOptions{Series: sopts, Build: f.build, RepoDir: f.repoDir, Signer: signer, Keep: f.keep, Log: g.stderr})
		rep.Render(out)
		if rep.Failed() > 0 || code == watch.ExitError {
			return watch.ExitError, nil
		}
		return watch.ExitNothingToDo, nil
	case f.write:
		wrote := false
		for i, rp := range plan.Recipes {
			if len(rp.Actions) == 0 || rp.Error != "" {
				continue
			}
			res, err := watch.Write(ctx, recipes[i], rp, sopts)
			if errors.Is(err, watch.ErrNothingToWrite) {
				continue
			}
			if err != nil {
				fmt.Fprintf(g.stderr, "watch: write: %v\n", err)
				code = watch.ExitError
				continue
			}
			wrote = true
			renderWrite(out, res)
		}
		if wrote && code != watch.ExitError {
			code = watch.ExitActionNeeded
		}
	}
	return code, nil
}

func renderWrite(w interface{ Write([]byte) (int, error) }, res *watch.WriteResult) {
	fmt.Fprintf(w, "wrote %s", res.Path)
	if res.To != "" {
		fmt.Fprintf(w, ": upstream %s -> %s", res.From, res.To)
	}
	fmt.Fprintln(w)
	for _, d := range res.Dropped {
		fmt.Fprintf(w, "  dropped %s\n", d)
	}
	if res.Lock != nil {
		fmt.Fprintf(w, "  lock %s revision %d\n", res.Lock.Path, res.Lock.Revision)
	}
}

// notify sends the plan to the webhook and the command when there is
// something to say, once per distinct plan unless --notify-always.
func notify(ctx context.Context, g *globals, f *watchFlags, plan *watch.Plan) error {
	if f.webhook == "" && f.exec == "" || plan.ExitCode() == watch.ExitNothingToDo {
		return nil
	}
	if !f.notifyAlways && watch.AlreadyNotified(f.stateDir, plan) {
		fmt.Fprintln(g.stderr, "watch: same plan as last notified: not sent again (--notify-always sends it)")
		return nil
	}
	var errs []error
	if f.webhook != "" {
		errs = append(errs, watch.PostWebhook(ctx, nil, f.webhook, plan))
	}
	if f.exec != "" {
		errs = append(errs, watch.RunCommand(ctx, f.exec, plan, g.stderr, g.stderr))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return watch.MarkNotified(f.stateDir, plan)
}
