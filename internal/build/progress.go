package build

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress prints one line per stage: target, stage, elapsed time.
type progress struct {
	w      io.Writer
	target string
	start  time.Time
}

func (p progress) line(format string, args ...any) {
	if p.w != nil {
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p progress) stage(stage, format string, args ...any) {
	elapsed := time.Since(p.start).Round(100 * time.Millisecond)
	p.line("%s: %s: %s [%s]", p.target, stage, fmt.Sprintf(format, args...), elapsed)
}

// logWriter is where builder creation output goes: the progress stream
// when verbose, otherwise nowhere (its tail is in the error on failure).
func (p progress) logWriter(verbose bool) io.Writer {
	if verbose && p.w != nil {
		return &prefixWriter{w: p.w, prefix: p.target + "| "}
	}
	return nil
}

// failure prints the last lines of a failed build's log and its path.
func (p progress) failure(logPath string) {
	if p.w == nil {
		return
	}
	data, _ := os.ReadFile(logPath)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: FAILED after %s; last %d lines of %s:\n", p.target, time.Since(p.start).Round(100*time.Millisecond), tailLines, logPath)
	for _, l := range lastLines(data, tailLines) {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "%s: full log: %s\n", p.target, logPath)
	io.WriteString(p.w, b.String())
}

func lastLines(data []byte, n int) []string {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// prefixWriter writes whole lines with a prefix, so streamed compiler
// output of parallel targets stays readable.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// syncWriter serializes writes from parallel builds.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
