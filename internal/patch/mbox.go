package patch

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
)

// mboxSeparator is the "From <commit> <magic date>" line that starts every
// message written by `git format-patch` and GitHub's .patch answers.
var mboxSeparator = regexp.MustCompile(`(?m)^From [0-9a-f]{40,64} Mon Sep 17 00:00:00 2001\n`)

// ParseMbox splits `git format-patch` output (one file or an mbox of many
// messages, as GitHub's .patch of a pull request) into patches, taking
// author, date and message from each message's headers. Input without mail
// headers is taken as one plain diff: its Patch has no author or message,
// and the caller names it. Every patch is checked like Normalize checks it
// (parseable, no path outside the tree).
func ParseMbox(data []byte) ([]*Patch, error) {
	chunks := [][]byte{data}
	if starts := mboxSeparator.FindAllIndex(data, -1); len(starts) > 0 {
		// Text before the first message (a cover note) is not a patch.
		chunks = chunks[:0]
		for i, s := range starts {
			end := len(data)
			if i+1 < len(starts) {
				end = starts[i+1][0]
			}
			chunks = append(chunks, data[s[0]:end])
		}
	}
	var patches []*Patch
	for i, chunk := range chunks {
		p, err := parseMessage(chunk)
		if err != nil {
			if len(chunks) > 1 {
				return nil, fmt.Errorf("message %d of %d: %w", i+1, len(chunks), err)
			}
			return nil, err
		}
		patches = append(patches, p)
	}
	return patches, nil
}

func looksLikeMail(data []byte) bool {
	return bytes.HasPrefix(data, []byte("From:")) || bytes.HasPrefix(data, []byte("From "))
}

// parseMessage reads one message: mail headers and message, then the diff.
func parseMessage(chunk []byte) (*Patch, error) {
	files, preamble, err := gitdiff.Parse(bytes.NewReader(chunk))
	if err != nil {
		return nil, fmt.Errorf("parse patch: %w", err)
	}
	diff := chunk
	if bytes.HasPrefix(chunk, []byte(preamble)) {
		diff = chunk[len(preamble):]
	}
	if _, err := parseDiff(diff); err != nil {
		return nil, err
	}
	p := &Patch{Diff: diff}
	if len(files) == 0 {
		// An empty commit (format-patch --always) or a message without a
		// diff: the whole text is header.
		p.Diff = nil
		preamble = string(chunk)
	}
	if !looksLikeMail([]byte(preamble)) {
		return p, nil
	}
	h, err := gitdiff.ParsePatchHeader(preamble)
	if err != nil {
		return nil, fmt.Errorf("parse patch header: %w", err)
	}
	p.Name = h.Title
	p.Message = h.Message()
	if h.Author != nil {
		p.Author = Signature{Name: h.Author.Name, Email: h.Author.Email, When: h.AuthorDate}
	}
	if h.SHA != "" && strings.Trim(h.SHA, "0") != "" {
		p.Origin = "commit " + h.SHA
	}
	return p, nil
}
