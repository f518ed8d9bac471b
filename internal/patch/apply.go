package patch

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// OriginTrailer is the trailer that names where a commit's patch came from.
const OriginTrailer = "Forge-Origin"

// Apply commits patches, in order, on top of base: one commit per applied
// patch, written into repo's object store (nothing else in the repository
// changes: no reference, no work tree). It returns the last commit (base
// when nothing applied) and what happened to each patch.
//
// Each commit carries the patch's author and message plus a
// "Forge-Origin: <Origin>" trailer; its committer is opts.Committer and
// its commit date the author date, so the same base and patches always give
// the same commit ids.
//
// A patch whose files all fail to apply but whose reverse applies cleanly
// (the tree already has the change; upstream may have rebased or squashed
// it) and an empty patch are Contained: skipped and reported, or an error
// (*ContainedError) with opts.Strict. A patch that does not apply is a
// *ConflictError; a patch contained only in part is one too.
func Apply(ctx context.Context, repo *git.Repository, base plumbing.Hash, patches []*Patch, opts Options) (plumbing.Hash, []Outcome, error) {
	baseCommit, err := repo.CommitObject(base)
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("apply: base %s is not a commit in the repository: %w", base, err)
	}
	committer := opts.Committer
	if committer.Name == "" {
		committer = DefaultCommitter
	}
	src, done := reader(repo)
	defer done()
	objs := newObjects(src)
	a := &applier{tree: newTree(objs, baseCommit.TreeHash), fuzz: max(opts.Fuzz, 0)}
	head, treeHash := base, baseCommit.TreeHash
	outcomes := make([]Outcome, 0, len(patches))
	for i, p := range patches {
		if err := ctx.Err(); err != nil {
			return plumbing.ZeroHash, nil, fmt.Errorf("apply: %w", err)
		}
		files, err := parseDiff(p.Diff)
		if err != nil {
			return plumbing.ZeroHash, nil, fmt.Errorf("apply patch %d/%d (%s): %w", i+1, len(patches), p, err)
		}
		status, conflict, err := a.apply(files)
		if err != nil {
			return plumbing.ZeroHash, nil, fmt.Errorf("apply patch %d/%d (%s): %w", i+1, len(patches), p, err)
		}
		if conflict != nil {
			conflict.Index, conflict.Total, conflict.Patch = i, len(patches), p
			return plumbing.ZeroHash, nil, conflict
		}
		if status == Applied {
			if next := a.tree.write(); next != treeHash {
				treeHash = next
				head = writeCommit(objs, p, treeHash, head, committer, baseCommit.Committer.When)
			} else {
				status = Contained // applied, but changed nothing
			}
		}
		if status == Contained && opts.Strict {
			return plumbing.ZeroHash, nil, &ContainedError{Index: i, Total: len(patches), Patch: p}
		}
		o := Outcome{Patch: p, Status: status}
		if status == Applied {
			o.Commit = head
		}
		outcomes = append(outcomes, o)
	}
	if err := flush(repo, objs, head); err != nil {
		return plumbing.ZeroHash, nil, err
	}
	return head, outcomes, nil
}

// applier applies one patch at a time to the tree being built.
type applier struct {
	tree *tree
	fuzz int
}

// change is the effect of one file entry, computed against the tree before
// the patch (all entries of a patch see the same preimage, as in git).
type change struct {
	remove  string // path to remove first, if any
	path    string // path to write, if any
	mode    filemode.FileMode
	content []byte
}

// fileConflict is why one file entry does not apply.
type fileConflict struct {
	file   string
	hunk   string
	line   int
	reason string
}

func (a *applier) apply(files []*gitdiff.File) (Status, *ConflictError, error) {
	if len(files) == 0 {
		return Contained, nil, nil
	}
	changes := make([]*change, len(files))
	failed := map[int]*fileConflict{}
	// Every entry sees the tree before the patch, so a path may be changed
	// by one entry only (git diff never does otherwise).
	touched := map[string]bool{}
	for _, f := range files {
		paths := map[string]bool{f.NewName: true}
		if !f.IsCopy { // a copy leaves its source alone
			paths[f.OldName] = true
		}
		for name := range paths {
			if name == "" {
				continue
			}
			if touched[name] {
				return 0, &ConflictError{File: name, Reason: "the patch changes this path more than once"}, nil
			}
			touched[name] = true
		}
	}
	for i, f := range files {
		c, fc, err := a.forward(f)
		if err != nil {
			return 0, nil, err
		}
		changes[i] = c
		if fc != nil {
			failed[i] = fc
		}
	}
	if len(failed) == 0 {
		for _, c := range changes {
			if err := a.commitChange(c); err != nil {
				return 0, nil, err
			}
		}
		return Applied, nil, nil
	}
	var contained, applies, conflicting []string
	var first *fileConflict
	for i, f := range files {
		fc := failed[i]
		switch {
		case fc == nil:
			applies = append(applies, fileName(f))
		case a.contained(f):
			contained = append(contained, fileName(f))
		default:
			conflicting = append(conflicting, fileName(f))
			if first == nil {
				first = fc
			}
		}
	}
	if first == nil && len(applies) == 0 {
		return Contained, nil, nil
	}
	ce := &ConflictError{}
	if first != nil {
		ce.File, ce.Hunk, ce.Line, ce.Reason = first.file, first.hunk, first.line, first.reason
	} else {
		ce.File = strings.Join(applies, ", ")
		ce.Reason = "only part of the patch is already in the tree"
	}
	if len(contained) > 0 {
		ce.Reason += fmt.Sprintf(" (already in the tree: %s; would apply: %s; conflicting: %s)",
			list(contained), list(applies), list(conflicting))
	}
	return 0, ce, nil
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// forward computes the change a file entry makes, or why it cannot.
func (a *applier) forward(f *gitdiff.File) (*change, *fileConflict, error) {
	name := fileName(f)
	conflict := func(format string, args ...any) (*change, *fileConflict, error) {
		return nil, &fileConflict{file: name, reason: fmt.Sprintf(format, args...)}, nil
	}
	if f.NewMode == 0o160000 || f.OldMode == 0o160000 {
		return conflict("submodule changes are not supported")
	}
	var src []byte
	mode := filemode.Regular
	if !f.IsNew {
		e, err := a.tree.lookup(f.OldName)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case e == nil:
			return conflict("%s does not exist in the tree", f.OldName)
		case e.sub != nil:
			return conflict("%s is a directory in the tree", f.OldName)
		case e.mode == filemode.Submodule:
			return conflict("%s is a submodule in the tree", f.OldName)
		}
		if f.OldMode != 0 && f.NewMode != 0 && f.OldMode != f.NewMode && uint32(e.mode) != uint32(f.OldMode) {
			return conflict("%s has mode %o, the patch expects %o", f.OldName, uint32(e.mode), uint32(f.OldMode))
		}
		if f.IsBinary && !oidMatches(e.hash, f.OldOIDPrefix) {
			return conflict("binary file %s is not the one the patch was made from (blob %s, patch expects %s)", f.OldName, e.hash, f.OldOIDPrefix)
		}
		mode = e.mode
		if src, err = a.tree.objs.readBlob(e.hash); err != nil {
			return nil, nil, err
		}
	}
	if f.IsNew || f.IsRename || f.IsCopy {
		e, err := a.tree.lookup(f.NewName)
		if err != nil {
			return nil, nil, err
		}
		if e != nil {
			return conflict("%s already exists in the tree", f.NewName)
		}
	}
	if f.NewMode != 0 && (f.IsNew || f.OldMode != f.NewMode) {
		mode = filemode.FileMode(uint32(f.NewMode))
	}
	if mode != filemode.Regular && mode != filemode.Executable && mode != filemode.Symlink {
		return conflict("unsupported file mode %o", uint32(mode))
	}
	var out []byte
	switch {
	case f.IsBinary:
		if f.BinaryFragment == nil {
			return conflict("binary patch without data: regenerate it with --binary")
		}
		var buf bytes.Buffer
		if err := gitdiff.Apply(&buf, bytes.NewReader(src), f); err != nil {
			return conflict("binary patch does not apply: %v", err)
		}
		out = buf.Bytes()
	default:
		var he *hunkError
		out, he = applyText(src, f.TextFragments, a.fuzz)
		if he != nil {
			return nil, &fileConflict{file: name, hunk: hunkHeader(he.frag), line: he.line, reason: he.reason}, nil
		}
	}
	c := &change{mode: mode, content: out}
	if f.IsDelete {
		if len(out) > 0 {
			return conflict("%s has content the patch does not delete", f.OldName)
		}
		c.remove = f.OldName
		return c, nil, nil
	}
	if f.IsRename {
		c.remove = f.OldName
	}
	c.path = f.NewName
	if c.path == "" {
		c.path = f.OldName
	}
	return c, nil, nil
}

// contained reports whether the tree already has the change f makes.
func (a *applier) contained(f *gitdiff.File) bool {
	if f.IsDelete {
		e, err := a.tree.lookup(f.OldName)
		return err == nil && e == nil
	}
	e, err := a.tree.lookup(f.NewName)
	if err != nil || e == nil || e.sub != nil {
		return false
	}
	if f.IsRename {
		if old, err := a.tree.lookup(f.OldName); err != nil || old != nil {
			return false
		}
	}
	if f.NewMode != 0 && (f.IsNew || f.OldMode != f.NewMode) && uint32(e.mode) != uint32(f.NewMode) {
		return false
	}
	if f.IsBinary {
		return f.NewOIDPrefix != "" && oidMatches(e.hash, f.NewOIDPrefix)
	}
	content, err := a.tree.objs.readBlob(e.hash)
	if err != nil {
		return false
	}
	if f.IsNew {
		want, he := applyText(nil, f.TextFragments, 0)
		return he == nil && bytes.Equal(want, content)
	}
	_, he := applyText(content, reverseFragments(f.TextFragments), 0)
	return he == nil
}

// oidMatches reports whether blob id h starts with the (possibly
// abbreviated) id from a patch's index line; an absent or all-zero id
// matches anything.
func oidMatches(h plumbing.Hash, prefix string) bool {
	if strings.Trim(prefix, "0") == "" {
		return true
	}
	return strings.HasPrefix(h.String(), strings.ToLower(prefix))
}

func (a *applier) commitChange(c *change) error {
	if c.remove != "" {
		if err := a.tree.remove(c.remove); err != nil {
			return err
		}
	}
	if c.path == "" {
		return nil
	}
	h := a.tree.objs.put(plumbing.BlobObject, c.content)
	return a.tree.set(c.path, c.mode, h)
}

// writeCommit stores the commit for an applied patch.
func writeCommit(objs *objects, p *Patch, treeHash, parent plumbing.Hash, committer Signature, fallback time.Time) plumbing.Hash {
	author := p.Author
	if author.Name == "" {
		author.Name, author.Email = committer.Name, committer.Email
	}
	if author.When.IsZero() {
		// A plain diff has no date: take the base's, so ids stay stable.
		author.When = fallback
	}
	committer.When = author.When
	c := &object.Commit{
		Author:       author,
		Committer:    committer,
		Message:      withTrailer(p.Message, p.Name, OriginTrailer, origin(p)),
		TreeHash:     treeHash,
		ParentHashes: []plumbing.Hash{parent},
	}
	o := &plumbing.MemoryObject{}
	_ = c.Encode(o) // encoding into memory cannot fail
	r, _ := o.Reader()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(r)
	return objs.put(plumbing.CommitObject, buf.Bytes())
}

func origin(p *Patch) string {
	o := p.Origin
	if o == "" {
		o = p.Name
	}
	if o == "" {
		o = "unnamed patch"
	}
	return strings.Join(strings.Fields(o), " ")
}

var trailerLine = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*: `)

// withTrailer appends "key: value" to a commit message, joining the
// message's own trailer block (Signed-off-by and friends) when it ends in
// one, so `git interpret-trailers --parse` finds them all.
func withTrailer(message, subject, key, value string) string {
	message = strings.TrimRight(message, " \t\n")
	if message == "" {
		message = strings.TrimSpace(subject)
	}
	if message == "" {
		message = "Apply patch"
	}
	paragraphs := strings.Split(message, "\n\n")
	last := paragraphs[len(paragraphs)-1]
	sep := "\n\n"
	if len(paragraphs) > 1 {
		sep = "\n"
		for _, l := range strings.Split(last, "\n") {
			if !trailerLine.MatchString(l) {
				sep = "\n\n"
				break
			}
		}
	}
	return message + sep + key + ": " + value + "\n"
}

// hunkHeader is a hunk's "@@ -a,b +c,d @@" without the function-name text.
func hunkHeader(f *gitdiff.TextFragment) string {
	return fmt.Sprintf("@@ -%d,%d +%d,%d @@", f.OldPosition, f.OldLines, f.NewPosition, f.NewLines)
}
