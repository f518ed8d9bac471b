package watch

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// PlanVersion is the format of the plan's JSON; it rises only when a field
// changes meaning or goes away (new fields may appear at any time).
const PlanVersion = 1

// Exit codes of `criu-forge watch`, for cron and CI.
const (
	ExitNothingToDo  = 0 // every recipe is current
	ExitError        = 1 // a recipe could not be checked (network, rate limit, broken lock)
	ExitActionNeeded = 3 // the plan proposes at least one action
)

// Plan is what one watch run found and proposes, for every recipe.
type Plan struct {
	PlanVersion  int          `json:"planVersion"`
	CheckedAt    time.Time    `json:"checkedAt"`
	ActionNeeded bool         `json:"actionNeeded"`
	Recipes      []RecipePlan `json:"recipes"`
	GitHub       RequestStats `json:"github"`
}

// RequestStats counts the GitHub requests of the run.
type RequestStats struct {
	Requests    int64 `json:"requests"`
	NotModified int64 `json:"notModified"` // answered 304 from the cache: no rate limit spent
}

// RecipePlan is the finding for one recipe.
type RecipePlan struct {
	Recipe         string     `json:"recipe"` // name
	Path           string     `json:"path"`   // recipe file
	CurrentVersion string     `json:"currentVersion"`
	LockRevision   int        `json:"lockRevision"`
	NewReleases    []Release  `json:"newReleases"` // newer than currentVersion, newest first, filtered
	PullRequests   []PRStatus `json:"pullRequests"`
	Rebase         *Rebase    `json:"rebase,omitempty"` // trial of the series on the newest release
	Actions        []Action   `json:"actions"`
	Notes          []string   `json:"notes"`
	// Error says why the recipe could not be checked; its other fields
	// are then incomplete.
	Error string `json:"error,omitempty"`
}

// Release is an upstream release or tag.
type Release struct {
	Tag         string     `json:"tag"`
	Version     string     `json:"version"`
	Commit      string     `json:"commit,omitempty"`
	Prerelease  bool       `json:"prerelease"`
	PublishedAt *time.Time `json:"publishedAt,omitempty"`
	Kind        string     `json:"kind"` // "release" (a GitHub release) or "tag" (a tag without one)
	URL         string     `json:"url,omitempty"`
}

// PRStatus is a pull request of the series as GitHub sees it now.
type PRStatus struct {
	Entry       string     `json:"entry"` // "PR #3093"
	Repo        string     `json:"repo"`
	Number      int        `json:"number"`
	Title       string     `json:"title,omitempty"`
	URL         string     `json:"url,omitempty"`
	State       string     `json:"state"`       // open, closed (not merged) or merged
	LockedState string     `json:"lockedState"` // state when the lock was written
	MergedAt    *time.Time `json:"mergedAt,omitempty"`
	LockedHead  string     `json:"lockedHead"`
	Head        string     `json:"head"`
	HeadMoved   bool       `json:"headMoved"`
	// ContainedIn is the oldest release (tag) that contains the change, by
	// content, or "base" for the recipe's current base; "" when none
	// does. Checked for merged pull requests only.
	ContainedIn string `json:"containedIn,omitempty"`
}

// Rebase is the trial application of the locked series on a new base.
type Rebase struct {
	From    string       `json:"from"` // current version
	To      Release      `json:"to"`
	Clean   bool         `json:"clean"` // no entry conflicts
	Entries []EntryTrial `json:"entries"`
}

// Trial results of one entry.
const (
	TrialApplies   = "applies"
	TrialContained = "contained" // every patch is already in the new base: drop the entry
	TrialConflict  = "conflict"
	TrialSkipped   = "skipped" // the lock skips it (until:)
)

// EntryTrial is how one series entry fared on the new base.
type EntryTrial struct {
	Entry     string    `json:"entry"`
	Result    string    `json:"result"` // applies, contained, conflict, skipped
	Patches   int       `json:"patches"`
	Contained int       `json:"containedPatches"` // of Patches, already in the base
	Conflict  *Conflict `json:"conflict,omitempty"`
}

// Conflict says where a patch stopped applying.
type Conflict struct {
	Patch  string `json:"patch"` // subject
	Index  int    `json:"index"` // 1-based, within the entry
	File   string `json:"file"`
	Hunk   string `json:"hunk,omitempty"` // "@@ -93,7 +93,7 @@"
	Line   int    `json:"line,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Action kinds.
const (
	ActionSync     = "sync"     // no lock, or one older than the recipe: run sync
	ActionRebase   = "rebase"   // move upstream to a new release (To)
	ActionDrop     = "drop"     // remove Entry: its change is in the base
	ActionConflict = "conflict" // Entry does not apply on the new base: a person rebases it
	ActionResync   = "resync"   // Entry's head moved (Old -> New): run sync
	ActionRebuild  = "rebuild"  // build and publish after the changes above
)

// Action is one thing the plan proposes.
type Action struct {
	Kind   string `json:"kind"`
	Entry  string `json:"entry,omitempty"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Old    string `json:"old,omitempty"`
	New    string `json:"new,omitempty"`
	Reason string `json:"reason"`
}

// Failed counts the recipes that could not be checked.
func (p *Plan) Failed() int {
	n := 0
	for _, r := range p.Recipes {
		if r.Error != "" {
			n++
		}
	}
	return n
}

// ExitCode is the documented exit code for the plan.
func (p *Plan) ExitCode() int {
	switch {
	case p.Failed() > 0:
		return ExitError
	case p.ActionNeeded:
		return ExitActionNeeded
	}
	return ExitNothingToDo
}

// JSON renders the plan for scripts, webhooks and --exec.
func (p *Plan) JSON() ([]byte, error) {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Render writes the plan for people.
func (p *Plan) Render(w io.Writer) {
	for _, r := range p.Recipes {
		fmt.Fprintf(w, "%s (%s, upstream %s, lock revision %d)\n", r.Path, r.Recipe, r.CurrentVersion, r.LockRevision)
		if r.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", r.Error)
			continue
		}
		for i, rel := range r.NewReleases {
			if i == 0 {
				fmt.Fprintf(w, "  new release: %s%s\n", rel.Tag, releaseDetail(rel))
			} else {
				fmt.Fprintf(w, "  also newer: %s%s\n", rel.Tag, releaseDetail(rel))
			}
		}
		for _, pr := range r.PullRequests {
			state := pr.State
			if pr.MergedAt != nil {
				state += " " + pr.MergedAt.UTC().Format("2006-01-02")
			}
			fmt.Fprintf(w, "  %s [%s]", pr.Entry, state)
			if pr.ContainedIn != "" {
				fmt.Fprintf(w, ", contained in %s", pr.ContainedIn)
			}
			if pr.HeadMoved {
				fmt.Fprintf(w, ", head moved %.12s -> %.12s", pr.LockedHead, pr.Head)
			}
			fmt.Fprintln(w)
		}
		if rb := r.Rebase; rb != nil {
			fmt.Fprintf(w, "  trial rebase %s -> %s (%.12s):\n", rb.From, rb.To.Version, rb.To.Commit)
			for _, e := range rb.Entries {
				fmt.Fprintf(w, "    %s: %s", e.Entry, e.Result)
				if e.Result == TrialApplies && e.Contained > 0 {
					fmt.Fprintf(w, " (%d of %d patches already in the base)", e.Contained, e.Patches)
				}
				if c := e.Conflict; c != nil {
					fmt.Fprintf(w, " in %s", c.File)
					if c.Hunk != "" {
						fmt.Fprintf(w, " hunk %s (line %d)", c.Hunk, c.Line)
					}
					fmt.Fprintf(w, ", patch %d %q", c.Index, c.Patch)
				}
				fmt.Fprintln(w)
			}
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		if len(r.Actions) == 0 {
			fmt.Fprintln(w, "  nothing new")
			continue
		}
		for _, a := range r.Actions {
			fmt.Fprintf(w, "  action %s: %s\n", a.Kind, a.Reason)
		}
	}
	verdict := "nothing to do"
	switch {
	case p.Failed() > 0:
		verdict = fmt.Sprintf("%d of %d recipes could not be checked", p.Failed(), len(p.Recipes))
	case p.ActionNeeded:
		verdict = "action needed"
	}
	fmt.Fprintf(w, "%s; GitHub: %d requests, %d not modified\n", verdict, p.GitHub.Requests, p.GitHub.NotModified)
}

func releaseDetail(r Release) string {
	var parts []string
	if r.Kind == "tag" {
		parts = append(parts, "tag only")
	}
	if r.Prerelease {
		parts = append(parts, "pre-release")
	}
	if r.PublishedAt != nil {
		parts = append(parts, r.PublishedAt.UTC().Format("2006-01-02"))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
