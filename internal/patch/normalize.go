package patch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
)

// ErrUnsafePath reports a patch that names a path outside its tree.
var ErrUnsafePath = errors.New("unsafe path in patch")

// parseDiff parses a patch (headers before the first file are ignored) and
// refuses paths that could escape the tree.
func parseDiff(diff []byte) ([]*gitdiff.File, error) {
	files, _, err := gitdiff.Parse(bytes.NewReader(diff))
	if err != nil {
		return nil, fmt.Errorf("parse diff: %w", err)
	}
	for _, f := range files {
		for _, name := range []string{f.OldName, f.NewName} {
			if name == "" {
				continue
			}
			if err := checkPath(name); err != nil {
				return nil, err
			}
		}
		if f.OldName == "" && f.NewName == "" {
			return nil, fmt.Errorf("parse diff: a file entry names no path")
		}
		if f.OldName != "" && f.NewName != "" && f.OldName != f.NewName && !f.IsRename && !f.IsCopy {
			return nil, fmt.Errorf("parse diff: entry for %s names %s as its old path but is no rename or copy", f.NewName, f.OldName)
		}
	}
	return files, nil
}

// checkPath accepts only relative, clean paths inside the tree and outside
// .git: no absolute path, no "." or ".." component, no empty component.
func checkPath(name string) error {
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("%w: %q is absolute", ErrUnsafePath, name)
	}
	if strings.ContainsRune(name, 0) || strings.Contains(name, "\\") {
		return fmt.Errorf("%w: %q contains a NUL or backslash", ErrUnsafePath, name)
	}
	for _, c := range strings.Split(name, "/") {
		switch {
		case c == "" || c == "." || c == "..":
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" component", ErrUnsafePath, name)
		case strings.EqualFold(c, ".git"):
			return fmt.Errorf("%w: %q is inside .git", ErrUnsafePath, name)
		}
	}
	return nil
}

// Normalize returns the canonical form of the change a patch makes.
//
// It keeps, per file: the old and new path, the kind of change (new,
// deleted, renamed, copied, mode change) and the modes, every hunk's
// old/new ranges and its lines (context, removed, added, and the "no
// newline at end of file" markers), and for a binary file the full old and
// new blob ids when the patch has them (`--full-index`), otherwise the
// decoded binary data. Files are sorted by path.
//
// It drops everything else: mail headers (From, Date, Subject), the commit
// message, the diffstat, the signature ("-- " and the git version),
// abbreviated index lines, similarity scores, and the function-name text
// after a hunk's "@@ ... @@". So the form is the same for `git format-patch`
// with any --abbrev, with or without --stat, for `git diff`, and for a
// GitHub .patch regenerated over time. It does not merge patches made with
// other context sizes (-U) or other diff algorithms, and a rename is not
// the same change as a delete plus an add.
func Normalize(diff []byte) ([]byte, error) {
	files, err := parseDiff(diff)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(files, func(i, j int) bool { return fileName(files[i]) < fileName(files[j]) })
	var out strings.Builder
	for _, f := range files {
		c := *f
		c.Score = 0
		c.OldOIDPrefix, c.NewOIDPrefix = "", ""
		// An index line's mode is not a mode change; keep modes only when
		// they say something.
		if !c.IsNew && !c.IsDelete && c.OldMode == c.NewMode {
			c.OldMode, c.NewMode = 0, 0
		}
		// A traditional diff has no modes: a created or deleted file is a
		// regular one, as Apply treats it.
		if c.IsNew && c.NewMode == 0 {
			c.NewMode = 0o100644
		}
		if c.IsDelete && c.OldMode == 0 {
			c.OldMode = 0o100644
		}
		frags := make([]*gitdiff.TextFragment, len(f.TextFragments))
		for i, fr := range f.TextFragments {
			cf := *fr
			cf.Comment = ""
			frags[i] = &cf
		}
		c.TextFragments = frags
		if c.IsBinary {
			// A binary change is named by its blob ids, whatever encoding
			// (delta, literal, none at all as on GitHub) carries it. Seven
			// hex digits: every generator writes at least that many.
			if len(f.OldOIDPrefix) < binaryIDLen || len(f.NewOIDPrefix) < binaryIDLen {
				return nil, fmt.Errorf("binary change to %s has no index line with blob ids: regenerate the patch with --binary", fileName(f))
			}
			c.OldOIDPrefix, c.NewOIDPrefix = strings.ToLower(f.OldOIDPrefix[:binaryIDLen]), strings.ToLower(f.NewOIDPrefix[:binaryIDLen])
			c.BinaryFragment, c.ReverseBinaryFragment = nil, nil
		}
		out.WriteString(c.String())
	}
	return []byte(out.String()), nil
}

// binaryIDLen is how much of a binary change's blob ids Normalize keeps.
const binaryIDLen = 7

// Hash is "sha256:<hex>" of Normalize(diff): the identity of a change that
// lock files record.
func Hash(diff []byte) (string, error) {
	n, err := Normalize(diff)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(n)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
