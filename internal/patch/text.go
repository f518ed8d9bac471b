package patch

import (
	"bytes"
	"fmt"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
)

// hunkError says where a text hunk failed.
type hunkError struct {
	frag   *gitdiff.TextFragment
	line   int // 1-based line of the file where the hunk was expected
	reason string
}

// splitLines splits b into lines that keep their "\n" (the last one may
// lack it), sharing b's memory.
func splitLines(b []byte) [][]byte {
	lines := make([][]byte, 0, bytes.Count(b, []byte{'\n'})+1)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lines = append(lines, b)
			break
		}
		lines = append(lines, b[:i+1])
		b = b[i+1:]
	}
	return lines
}

// applyText applies text hunks to src the way `git apply` does: each hunk's
// removed and context lines must match exactly, but the hunk may sit at
// another line than its header says (the search starts there and moves
// outward, and later hunks inherit the offset). With fuzz > 0, up to fuzz
// context lines at each end of a hunk may be dropped when the full hunk
// matches nowhere, as `patch -F` does; anchors to the start or end of the
// file hold only at full context.
func applyText(src []byte, frags []*gitdiff.TextFragment, fuzz int) ([]byte, *hunkError) {
	lines := splitLines(src)
	var out bytes.Buffer
	out.Grow(len(src) + 256)
	cursor, offset := 0, 0
	for _, frag := range frags {
		if err := frag.Validate(); err != nil {
			return nil, &hunkError{frag: frag, line: int(frag.OldPosition), reason: err.Error()}
		}
		var old, neu []string
		for _, l := range frag.Lines {
			if l.Old() {
				old = append(old, l.Line)
			}
			if l.New() {
				neu = append(neu, l.Line)
			}
		}
		leading, trailing := contextCounts(frag.Lines)
		stated := int(frag.OldPosition) - 1
		if frag.OldLines == 0 {
			stated = int(frag.OldPosition) // a pure insertion goes after that line
		}
		hasContext := leading+trailing > 0
		pos := -1
		for f := 0; f <= fuzz && pos < 0; f++ {
			dropLead, dropTrail := min(f, leading), min(f, trailing)
			if f > 0 && dropLead == min(f-1, leading) && dropTrail == min(f-1, trailing) {
				break // no context left to drop
			}
			o := old[dropLead : len(old)-dropTrail]
			n := neu[dropLead : len(neu)-dropTrail]
			anchorStart := f == 0 && (frag.OldPosition == 0 || (frag.OldPosition == 1 && hasContext))
			anchorEnd := f == 0 && hasContext && trailing == 0
			p := find(lines, o, cursor, stated+dropLead+offset, anchorStart, anchorEnd)
			if p < 0 {
				continue
			}
			for _, l := range lines[cursor:p] {
				out.Write(l)
			}
			for _, l := range n {
				out.WriteString(l)
			}
			cursor = p + len(o)
			offset = p - dropLead - stated
			pos = p
		}
		if pos < 0 {
			expected := max(stated+offset, cursor)
			return nil, &hunkError{frag: frag, line: expected + 1, reason: mismatch(lines, old, expected)}
		}
	}
	for _, l := range lines[cursor:] {
		out.Write(l)
	}
	return out.Bytes(), nil
}

// contextCounts counts the context lines before the first and after the
// last change of a hunk.
func contextCounts(lines []gitdiff.Line) (leading, trailing int) {
	for _, l := range lines {
		if l.Op != gitdiff.OpContext {
			break
		}
		leading++
	}
	if leading == len(lines) {
		return leading, 0
	}
	for i := len(lines) - 1; i >= 0 && lines[i].Op == gitdiff.OpContext; i-- {
		trailing++
	}
	return leading, trailing
}

// find returns where want matches lines at or after cursor, trying
// positions nearest to start first, or -1.
func find(lines [][]byte, want []string, cursor, start int, anchorStart, anchorEnd bool) int {
	last := len(lines) - len(want) // last possible position
	if last < cursor {
		return -1
	}
	if anchorStart {
		if cursor == 0 && matchAt(lines, want, 0) {
			return 0
		}
		return -1
	}
	if anchorEnd {
		if matchAt(lines, want, last) {
			return last
		}
		return -1
	}
	start = min(max(start, cursor), last)
	for d := 0; start+d <= last || start-d >= cursor; d++ {
		if p := start + d; p <= last && matchAt(lines, want, p) {
			return p
		}
		if p := start - d; d > 0 && p >= cursor && matchAt(lines, want, p) {
			return p
		}
	}
	return -1
}

func matchAt(lines [][]byte, want []string, p int) bool {
	for i, w := range want {
		if string(lines[p+i]) != w {
			return false
		}
	}
	return true
}

// mismatch explains why old does not match at line index at.
func mismatch(lines [][]byte, old []string, at int) string {
	for i, w := range old {
		if at+i >= len(lines) {
			return fmt.Sprintf("the file ends at line %d, the hunk needs %d more", len(lines), len(old)-i)
		}
		if got := string(lines[at+i]); got != w {
			return fmt.Sprintf("line %d is %q, the patch expects %q (and the hunk matches nowhere else)", at+i+1, trimNL(got), trimNL(w))
		}
	}
	return "the hunk matches only where it would overlap an earlier hunk or break an anchor at the start or end of the file"
}

func trimNL(s string) string {
	const max = 80
	s = string(bytes.TrimRight([]byte(s), "\n"))
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

// reverseFragments returns hunks that undo frags.
func reverseFragments(frags []*gitdiff.TextFragment) []*gitdiff.TextFragment {
	out := make([]*gitdiff.TextFragment, len(frags))
	for i, f := range frags {
		r := *f
		r.OldPosition, r.NewPosition = f.NewPosition, f.OldPosition
		r.OldLines, r.NewLines = f.NewLines, f.OldLines
		r.LinesAdded, r.LinesDeleted = f.LinesDeleted, f.LinesAdded
		r.Lines = make([]gitdiff.Line, len(f.Lines))
		for j, l := range f.Lines {
			switch l.Op {
			case gitdiff.OpAdd:
				l.Op = gitdiff.OpDelete
			case gitdiff.OpDelete:
				l.Op = gitdiff.OpAdd
			}
			r.Lines[j] = l
		}
		out[i] = &r
	}
	return out
}
