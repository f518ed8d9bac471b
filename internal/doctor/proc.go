package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// pidfsMagic is the pidfs filesystem magic (kernel >= 6.9 puts pidfds on it).
const pidfsMagic = 0x50494446

// Process is one process of the inspected tree.
type Process struct {
	Pid  int    `json:"pid"`
	PPid int    `json:"ppid"`
	Comm string `json:"comm"`
	FDs  int    `json:"fds"` // how many fds were looked at
}

// OpenFD is one descriptor of a process, as /proc shows it.
type OpenFD struct {
	FD     int
	Link   string
	Pidfd  bool // link anon_inode:[pidfd] or on pidfs
	FDInfo FDInfo
}

// FDInfo is what doctor reads from /proc/PID/fdinfo/N.
type FDInfo struct {
	Flags  uint64 // "flags:" (octal)
	Pid    int    // "Pid:" of a pidfd (-1: the process is gone)
	HasPid bool
}

// ParseFDInfo reads the fields doctor needs from an fdinfo file.
func ParseFDInfo(data []byte) (FDInfo, error) {
	var info FDInfo
	sawFlags := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "flags":
			f, err := strconv.ParseUint(val, 8, 64)
			if err != nil {
				return info, fmt.Errorf("fdinfo flags %q: %w", val, err)
			}
			info.Flags, sawFlags = f, true
		case "Pid":
			p, err := strconv.Atoi(val)
			if err != nil {
				return info, fmt.Errorf("fdinfo Pid %q: %w", val, err)
			}
			info.Pid, info.HasPid = p, true
		}
	}
	if !sawFlags {
		return info, errors.New("fdinfo has no flags line")
	}
	return info, nil
}

// procFS reads a /proc tree (a folder, so tests can point elsewhere only
// where it is safe: the real one is used by Inspect).
type procFS string

// parents maps every visible pid to its parent pid.
func (p procFS) parents() (map[int]int, error) {
	ents, err := os.ReadDir(string(p))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p, err)
	}
	out := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, _, err := p.stat(pid)
		if err != nil {
			continue // exited while we looked
		}
		out[pid] = ppid
	}
	return out, nil
}

// stat returns ppid and comm from /proc/PID/stat.
func (p procFS) stat(pid int) (int, string, error) {
	data, err := os.ReadFile(filepath.Join(string(p), strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, "", err
	}
	return parseStat(data)
}

// parseStat reads "pid (comm) state ppid ..."; comm may hold spaces and
// parentheses, so it ends at the last ')'.
func parseStat(data []byte) (int, string, error) {
	s := string(data)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return 0, "", fmt.Errorf("malformed stat %q", s)
	}
	rest := strings.Fields(s[close+1:])
	if len(rest) < 2 {
		return 0, "", fmt.Errorf("malformed stat %q", s)
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return 0, "", fmt.Errorf("malformed stat ppid %q", rest[1])
	}
	return ppid, s[open+1 : close], nil
}

// tree returns root and its descendants, parents before children.
func (p procFS) tree(root int) ([]Process, error) {
	parents, err := p.parents()
	if err != nil {
		return nil, err
	}
	if _, ok := parents[root]; !ok {
		return nil, fmt.Errorf("no process %d (is it running, and is /proc from this pid namespace?)", root)
	}
	children := map[int][]int{}
	for pid, ppid := range parents {
		children[ppid] = append(children[ppid], pid)
	}
	var out []Process
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		ppid, comm, err := p.stat(pid)
		if err != nil {
			continue
		}
		out = append(out, Process{Pid: pid, PPid: ppid, Comm: comm})
		kids := children[pid]
		sort.Ints(kids)
		queue = append(queue, kids...)
	}
	return out, nil
}

// fds lists a process's descriptors with their links and, for pidfds and
// anon inodes, their fdinfo.
func (p procFS) fds(pid int) ([]OpenFD, error) {
	dir := filepath.Join(string(p), strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list fds of %d: %w", pid, err)
	}
	var out []OpenFD
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		link, err := os.Readlink(path)
		if err != nil {
			continue // closed meanwhile
		}
		fd := OpenFD{FD: n, Link: link}
		var st syscall.Statfs_t
		onPidfs := syscall.Statfs(path, &st) == nil && uint32(st.Type) == pidfsMagic
		fd.Pidfd = link == "anon_inode:[pidfd]" || onPidfs
		if fd.Pidfd || strings.HasPrefix(link, "anon_inode:") {
			data, err := os.ReadFile(filepath.Join(string(p), strconv.Itoa(pid), "fdinfo", e.Name()))
			if err != nil {
				continue
			}
			if fd.FDInfo, err = ParseFDInfo(data); err != nil {
				return nil, fmt.Errorf("pid %d fd %d: %w", pid, n, err)
			}
		}
		out = append(out, fd)
	}
	return out, nil
}
