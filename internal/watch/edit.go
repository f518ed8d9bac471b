package watch

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The recipe is edited as text at positions the YAML node tree gives:
// re-encoding the tree would lose blank lines and reflow the file, and the
// edit must read as a small diff a person reviews and commits.

// recipeEdit is what Write changes in a recipe file.
type recipeEdit struct {
	Version   string // new upstream.version ("" = keep)
	GitSource int    // index in upstream.sources of the git source to move
	Ref       string // its new ref
	Commit    string // its new commit pin, set only where the recipe pins one
	Drop      []int  // series indexes to remove
}

type textEdit struct {
	start, end int // byte offsets
	text       string
}

// editRecipe returns data with the edit applied, or an error when the file
// is written in a way this cannot edit safely (it is then left to a person).
func editRecipe(data []byte, ed recipeEdit) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the recipe is not a YAML mapping")
	}
	root := doc.Content[0]
	lines := splitLines(data)
	var edits []textEdit

	if ed.Version != "" {
		n := lookup(root, "upstream", "version")
		if n == nil {
			return nil, errors.New("no upstream.version to change")
		}
		e, err := replaceScalar(data, lines, n, ed.Version)
		if err != nil {
			return nil, fmt.Errorf("upstream.version: %w", err)
		}
		edits = append(edits, e)
	}
	if ed.Ref != "" {
		sources := lookup(root, "upstream", "sources")
		if sources == nil || sources.Kind != yaml.SequenceNode || ed.GitSource >= len(sources.Content) {
			return nil, fmt.Errorf("no upstream.sources[%d]", ed.GitSource)
		}
		git := lookup(sources.Content[ed.GitSource], "git")
		ref := lookup(git, "ref")
		if ref == nil {
			return nil, fmt.Errorf("upstream.sources[%d] has no git.ref", ed.GitSource)
		}
		e, err := replaceScalar(data, lines, ref, ed.Ref)
		if err != nil {
			return nil, fmt.Errorf("upstream.sources[%d].git.ref: %w", ed.GitSource, err)
		}
		edits = append(edits, e)
		if c := lookup(git, "commit"); c != nil && ed.Commit != "" {
			e, err := replaceScalar(data, lines, c, ed.Commit)
			if err != nil {
				return nil, fmt.Errorf("upstream.sources[%d].git.commit: %w", ed.GitSource, err)
			}
			edits = append(edits, e)
		}
	}
	if len(ed.Drop) > 0 {
		key, seq := lookupPair(root, "series")
		if seq == nil || seq.Kind != yaml.SequenceNode {
			return nil, errors.New("no series list to drop entries from")
		}
		if seq.Style&yaml.FlowStyle != 0 {
			return nil, errors.New("series is written as a flow list ([...]): drop the entries by hand")
		}
		for _, i := range ed.Drop {
			if i < 0 || i >= len(seq.Content) {
				return nil, fmt.Errorf("no series[%d] to drop", i)
			}
			e, err := removeItem(data, lines, seq.Content[i])
			if err != nil {
				return nil, fmt.Errorf("series[%d]: %w", i, err)
			}
			edits = append(edits, e)
		}
		if len(ed.Drop) == len(seq.Content) {
			// An empty block list would read as null: say [] instead.
			at := offset(lines, key.Line, key.Column) + len(key.Value) + 1
			if at > len(data) || data[at-1] != ':' {
				return nil, errors.New("cannot find the colon after series")
			}
			edits = append(edits, textEdit{at, at, " []"})
		}
	}
	return applyEdits(data, edits)
}

func applyEdits(data []byte, edits []textEdit) ([]byte, error) {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := append([]byte(nil), data...)
	last := len(data) + 1
	for _, e := range edits {
		if e.end > last {
			return nil, errors.New("overlapping edits")
		}
		out = append(out[:e.start], append([]byte(e.text), out[e.end:]...)...)
		last = e.start
	}
	return out, nil
}

// lookup follows mapping keys from n.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		_, v := lookupPair(n, k)
		if v == nil {
			return nil
		}
		n = v
	}
	return n
}

func lookupPair(n *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// splitLines gives the byte offset where each line starts.
func splitLines(data []byte) []int {
	starts := []int{0}
	for i, b := range data {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offset turns a node's 1-based line and column (in characters) into a
// byte offset.
func offset(lines []int, line, col int) int {
	if line < 1 || line > len(lines) {
		return -1
	}
	return lines[line-1] + col - 1
}

func lineEnd(data []byte, at int) int {
	if i := bytes.IndexByte(data[at:], '\n'); i >= 0 {
		return at + i
	}
	return len(data)
}

// replaceScalar replaces a one-line scalar with value in the same quoting
// style (a plain value that YAML would read as a number is quoted).
func replaceScalar(data []byte, lines []int, n *yaml.Node, value string) (textEdit, error) {
	if n.Kind != yaml.ScalarNode {
		return textEdit{}, errors.New("not a single value")
	}
	for _, r := range value {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return textEdit{}, fmt.Errorf("refusing to write %q: not printable", value)
		}
	}
	lineStart := lines[n.Line-1]
	end := lineEnd(data, lineStart)
	line := data[lineStart:end]
	// Columns count characters: walk runes to the byte offset.
	start := lineStart
	for col := 1; col < n.Column && start < end; col++ {
		_, size := utf8.DecodeRune(data[start:end])
		start += size
	}
	rest := string(data[start:end])
	var tokenLen int
	var text string
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		tokenLen = quotedLen(rest, '"')
		text = strconv.Quote(value)
	case n.Style&yaml.SingleQuotedStyle != 0:
		tokenLen = quotedLen(rest, '\'')
		text = "'" + strings.ReplaceAll(value, "'", "''") + "'"
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return textEdit{}, errors.New("a block scalar: edit it by hand")
	default:
		tokenLen = plainLen(rest)
		text = value
		if !plainString(value) {
			text = strconv.Quote(value)
		}
	}
	if tokenLen <= 0 {
		return textEdit{}, fmt.Errorf("cannot find the value on line %d: %q", n.Line, line)
	}
	// The token read back must be the value the tree holds.
	var check string
	if err := yaml.Unmarshal([]byte("v: "+rest[:tokenLen]), &struct {
		V *string `yaml:"v"`
	}{&check}); err != nil || check != n.Value {
		return textEdit{}, fmt.Errorf("line %d: the text at the value's position is not %q", n.Line, n.Value)
	}
	return textEdit{start, start + tokenLen, text}, nil
}

func quotedLen(s string, q byte) int {
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return -1
}

// plainLen is the length of a plain scalar in a block or flow context: up
// to a flow indicator, a comment or the end of the line.
func plainLen(s string) int {
	end := len(s)
	for i := 0; i < len(s); i++ {
		if s[i] == ',' || s[i] == '}' || s[i] == ']' || s[i] == '#' && i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
			end = i
			break
		}
	}
	return len(strings.TrimRight(s[:end], " \t"))
}

var plainSafe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/+-]*$`)

// plainString reports whether value written plain reads back as the same
// string (not a number, a boolean or null).
func plainString(value string) bool {
	if !plainSafe.MatchString(value) {
		return false
	}
	var n yaml.Node
	if yaml.Unmarshal([]byte(value), &n) != nil || len(n.Content) == 0 {
		return false
	}
	return n.Content[0].Tag == "!!str" && n.Content[0].Value == value
}

// removeItem removes a block-list item: its "- " line, the lines of its
// body, and the comment lines right above it at its indentation.
func removeItem(data []byte, lines []int, item *yaml.Node) (textEdit, error) {
	at := offset(lines, item.Line, item.Column)
	dash := at - 1
	for dash >= 0 && (data[dash] == ' ' || data[dash] == '\t') {
		dash--
	}
	if dash < 0 || data[dash] != '-' {
		return textEdit{}, errors.New("not a block list item (\"- ...\") on one line: drop it by hand")
	}
	first := sort.Search(len(lines), func(i int) bool { return lines[i] > dash }) - 1 // the dash's line
	indent := dash - lines[first]
	if strings.TrimSpace(string(data[lines[first]:dash])) != "" {
		return textEdit{}, errors.New("the item does not start its line: drop it by hand")
	}
	lineText := func(i int) string {
		if i >= len(lines) {
			return ""
		}
		return string(data[lines[i]:lineEnd(data, lines[i])])
	}
	indentOf := func(s string) int { return len(s) - len(strings.TrimLeft(s, " \t")) }
	blank := func(s string) bool { return strings.TrimSpace(s) == "" }
	comment := func(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "#") }

	start := first
	for start > 0 && comment(lineText(start-1)) && indentOf(lineText(start-1)) == indent {
		start--
	}
	end := first + 1 // exclusive
	for end < len(lines) && lines[end] < len(data) {
		s := lineText(end)
		if !blank(s) && !comment(s) && indentOf(s) <= indent {
			break
		}
		end++
	}
	for end > first+1 && (blank(lineText(end-1)) || comment(lineText(end-1)) && indentOf(lineText(end-1)) <= indent) {
		end--
	}
	stop := len(data)
	if end < len(lines) {
		stop = lines[end]
	}
	return textEdit{lines[start], stop, ""}, nil
}
