// Package patch turns upstream changes into normalized patches and applies a
// series of them to a base commit as one commit per patch, fast.
//
// Entry points:
//   - FromCommit, ParseMbox: get patches (from a commit, or from
//     `git format-patch` / GitHub .patch / plain diff files).
//   - Normalize, Hash: the canonical form of a change, for lock files.
//   - Apply: write the series as commits into a repository's object store.
//   - Checkout: turn the result into a normal git work tree where the user
//     asked for it.
//
// Applying works on git objects, never on a work tree: go-gitdiff parses the
// patches, text hunks are applied here (exact context, with line offsets as
// `git am` allows, and optional bounded fuzz), binary patches by go-gitdiff.
package patch

import (
	"fmt"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Signature names a person and a moment (author or committer).
type Signature = object.Signature

// Patch is one change with the metadata needed to commit it.
type Patch struct {
	// Name is how messages refer to the patch: a file name or the subject.
	Name string
	// Origin names where the patch came from; it is recorded in each
	// commit's Forge-Origin trailer, e.g. "commit 8ee2eba47..." or
	// "https://github.com/o/r/pull/2449 (commit abc...)".
	Origin  string
	Author  Signature
	Message string
	// Diff is a unified git diff (binary patches allowed). Anything before
	// the first file header is ignored.
	Diff []byte
}

// String names the patch in messages: its origin, else its name.
func (p *Patch) String() string {
	switch {
	case p == nil:
		return "<nil patch>"
	case p.Origin != "":
		return p.Origin
	case p.Name != "":
		return p.Name
	default:
		return "unnamed patch"
	}
}

// Status says what Apply did with a patch.
type Status int

const (
	// Applied: the patch became a commit.
	Applied Status = iota + 1
	// Contained: the tree already holds the change (its reverse applies, or
	// the patch is empty); no commit was made.
	Contained
)

func (s Status) String() string {
	switch s {
	case Applied:
		return "applied"
	case Contained:
		return "contained (skipped)"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Options tune Apply.
type Options struct {
	// Fuzz is how many context lines at each end of a hunk may be ignored
	// when the hunk does not apply with its full context (like patch -F).
	// 0, the default, means exact context only; a hunk may still be found
	// at another line than its header says, as with `git am`.
	Fuzz int
	// Strict makes a contained patch an error instead of a skip.
	Strict bool
	// Committer is recorded in every commit (its When is ignored: the
	// commit date is the author date, so ids are reproducible). Empty means
	// DefaultCommitter.
	Committer Signature
}

// DefaultCommitter is the committer when Options.Committer has no name.
var DefaultCommitter = Signature{Name: "criu-forge", Email: "criu-forge@localhost"}

// Outcome reports what happened to one patch.
type Outcome struct {
	Patch  *Patch
	Status Status
	// Commit is the commit made for an applied patch (zero when contained).
	Commit plumbing.Hash
}

// ConflictError says which patch does not apply, where, and what to do.
type ConflictError struct {
	Index int // 0-based position in the series
	Total int // length of the series
	Patch *Patch
	File  string
	Hunk  string // "@@ -93,7 +93,7 @@", empty when the whole file failed
	Line  int    // line of the current file where the hunk was expected
	// Reason says what did not match.
	Reason string
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "patch %d/%d (%s): %s", e.Index+1, e.Total, e.Patch, e.File)
	if e.Hunk != "" {
		fmt.Fprintf(&b, ": hunk %s does not apply at line %d", e.Hunk, e.Line)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	b.WriteString("; re-sync the series, drop the entry, or rebase it onto the new base")
	return b.String()
}

// ContainedError is returned by Apply in strict mode for a patch the base
// already contains.
type ContainedError struct {
	Index, Total int
	Patch        *Patch
}

func (e *ContainedError) Error() string {
	return fmt.Sprintf("patch %d/%d (%s) is already contained in the tree (strict mode): drop the entry from the series, or mark it as no longer needed from this release on", e.Index+1, e.Total, e.Patch)
}

// fileName is the path a diff entry is about, for messages and sorting.
func fileName(f *gitdiff.File) string {
	if f.IsDelete || f.NewName == "" {
		return f.OldName
	}
	return f.NewName
}
