package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/repo"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/signing"
)

// ActOptions configure Act.
type ActOptions struct {
	Series series.Options   // sync: cache and GitHub client
	Build  pipeline.Options // build: runner, targets, jobs; OutDir gets one folder per recipe
	// RepoDir, with Signer, is the apt repository the new packages are
	// published to; empty: build only.
	RepoDir string
	Signer  *signing.Signer
	Keep    int // versions kept per package in the repository (0: all)
	Log     io.Writer
}

// ActReport says what Act did for each recipe that needed it.
type ActReport struct {
	Recipes []RecipeOutcome `json:"recipes"`
}

// RecipeOutcome is what happened to one recipe.
type RecipeOutcome struct {
	Recipe    string          `json:"recipe"`
	Path      string          `json:"path"`
	Write     *WriteResult    `json:"write,omitempty"`
	Targets   []TargetOutcome `json:"targets"`
	Published []string        `json:"published"`
	// Error is what stopped the recipe (write, sync, prepare, runner,
	// publish); a failed target is reported in Targets instead.
	Error string `json:"error,omitempty"`
}

// TargetOutcome is one target's build.
type TargetOutcome struct {
	Target    string   `json:"target"`
	Version   string   `json:"version,omitempty"`
	Artifacts []string `json:"artifacts"`
	Error     string   `json:"error,omitempty"`
}

// Failed counts recipes and targets that did not end as planned.
func (r *ActReport) Failed() int {
	n := 0
	for _, rc := range r.Recipes {
		if rc.Error != "" {
			n++
		}
		for _, t := range rc.Targets {
			if t.Error != "" {
				n++
			}
		}
	}
	return n
}

// Render writes the summary for people, one line per recipe and target.
func (r *ActReport) Render(w io.Writer) {
	if len(r.Recipes) == 0 {
		fmt.Fprintln(w, "apply: nothing to do")
	}
	for _, rc := range r.Recipes {
		status := "done"
		if rc.Error != "" {
			status = "FAILED: " + rc.Error
		}
		fmt.Fprintf(w, "apply %s: %s\n", rc.Path, status)
		if wr := rc.Write; wr != nil {
			if wr.To != "" {
				fmt.Fprintf(w, "  recipe moved %s -> %s\n", wr.From, wr.To)
			}
			for _, d := range wr.Dropped {
				fmt.Fprintf(w, "  dropped %s\n", d)
			}
			if wr.Lock != nil {
				fmt.Fprintf(w, "  lock %s revision %d\n", wr.Lock.Path, wr.Lock.Revision)
			}
		}
		for _, t := range rc.Targets {
			if t.Error != "" {
				fmt.Fprintf(w, "  %s: FAILED: %s\n", t.Target, t.Error)
				continue
			}
			fmt.Fprintf(w, "  %s: built %s (%d packages)\n", t.Target, t.Version, len(t.Artifacts))
		}
		for _, p := range rc.Published {
			fmt.Fprintf(w, "  published %s\n", p)
		}
	}
}

// Act runs the chain for every recipe whose plan has actions: Write (new
// base, dropped entries, re-synced lock), build and package every target,
// publish the packages (apt and yum alike) when a repository and key are
// given. A failing
// recipe or target does not stop the others.
func Act(ctx context.Context, recipes []*recipe.Recipe, plan *Plan, opts ActOptions) *ActReport {
	rep := &ActReport{Recipes: []RecipeOutcome{}}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	for i, rp := range plan.Recipes {
		if len(rp.Actions) == 0 && rp.Error == "" || i >= len(recipes) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(log, "watch: applying the plan for %s\n", rp.Path)
		rep.Recipes = append(rep.Recipes, act(ctx, recipes[i], rp, opts))
	}
	return rep
}

func act(ctx context.Context, r *recipe.Recipe, rp RecipePlan, opts ActOptions) RecipeOutcome {
	out := RecipeOutcome{Recipe: r.Name, Path: r.Path, Targets: []TargetOutcome{}, Published: []string{}}
	if rp.Error != "" {
		out.Error = "not checked: " + rp.Error
		return out
	}
	wr, err := Write(ctx, r, rp, opts.Series)
	switch {
	case errors.Is(err, ErrNothingToWrite):
	case err != nil:
		out.Error = "write: " + err.Error()
		return out
	default:
		out.Write = wr
	}
	r, _, err = recipe.Load(r.Path)
	if err != nil {
		out.Error = "reload: " + err.Error()
		return out
	}
	bopts := opts.Build
	bopts.Series = opts.Series
	bopts.Series.GitHub = nil // the build works from the lock alone
	base := bopts.OutDir
	if base == "" {
		base = "out"
	}
	bopts.OutDir = filepath.Join(base, r.Name)
	res, err := pipeline.Build(ctx, r, bopts)
	if err != nil {
		out.Error = "build: " + err.Error()
		return out
	}
	var packages []repo.Input
	for _, t := range res.Targets {
		to := TargetOutcome{Target: t.Target.ID(), Artifacts: []string{}}
		if t.Err != nil {
			to.Error = t.Err.Error()
			out.Targets = append(out.Targets, to)
			continue
		}
		for _, a := range t.Package.Artifacts {
			to.Version = a.Version
			to.Artifacts = append(to.Artifacts, a.Path)
			packages = append(packages, repo.Input{Path: a.Path})
		}
		out.Targets = append(out.Targets, to)
	}
	if opts.RepoDir == "" || opts.Signer == nil || len(packages) == 0 {
		return out
	}
	prep, err := repo.Publish(ctx, repo.PublishOptions{Dir: opts.RepoDir, Packages: packages, Signer: opts.Signer, Keep: opts.Keep, Log: opts.Log})
	if err != nil {
		out.Error = "publish: " + err.Error()
		return out
	}
	out.Published = append(out.Published, prep.Added...)
	return out
}
