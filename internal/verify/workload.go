package verify

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed workload/pidfd-workload.c
var workloadSource []byte

// WorkloadSource is the C source of the test workload (see its header).
func WorkloadSource() []byte { return append([]byte(nil), workloadSource...) }

// BuildWorkload compiles the workload with the host's gcc into dir and
// returns the binary's path; gccFlags are added (-static for a container).
func BuildWorkload(ctx context.Context, dir string, gccFlags ...string) (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", fmt.Errorf("build the pidfd workload: gcc not found (install the Debian package gcc): %w", err)
	}
	src := filepath.Join(dir, "pidfd-workload.c")
	bin := filepath.Join(dir, "pidfd-workload")
	if err := os.WriteFile(src, workloadSource, 0o644); err != nil {
		return "", fmt.Errorf("build the pidfd workload: %w", err)
	}
	if out, err := exec.CommandContext(ctx, gcc, append([]string{"-O2", "-Wall", "-o", bin, src}, gccFlags...)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the pidfd workload with gcc: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// Workload is a running pidfd workload.
type Workload struct {
	Pid    int
	CtlDir string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartWorkload starts the workload in its own session with its stdio on
// files in ctlDir and no other inherited descriptors (what CRIU needs to
// dump it as a tree of its own), holding one fd per case, and waits for its
// first report.
func StartWorkload(ctx context.Context, bin, ctlDir string, cases ...string) (*Workload, *WorkloadReport, error) {
	if err := os.MkdirAll(ctlDir, 0o755); err != nil {
		return nil, nil, err
	}
	logf, err := os.Create(filepath.Join(ctlDir, "workload.log"))
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, append([]string{ctlDir}, cases...)...)
	cmd.Dir = ctlDir
	cmd.Stdout, cmd.Stderr = logf, logf // stdin: /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start the pidfd workload: %w", err)
	}
	w := &Workload{Pid: cmd.Process.Pid, CtlDir: ctlDir, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(w.done) }()
	rep, err := w.waitReport(ctx)
	if err != nil {
		w.Kill()
		return nil, nil, err
	}
	return w, rep, nil
}

// Reaped is closed when the started process has exited and been reaped.
func (w *Workload) Reaped() <-chan struct{} { return w.done }

// Report asks the (possibly restored) workload for a fresh report.
func (w *Workload) Report(ctx context.Context) (*WorkloadReport, error) {
	path := filepath.Join(w.CtlDir, "report")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := syscall.Kill(w.Pid, syscall.SIGUSR1); err != nil {
		return nil, fmt.Errorf("signal workload %d: %w", w.Pid, err)
	}
	return w.waitReport(ctx)
}

func (w *Workload) waitReport(ctx context.Context) (*WorkloadReport, error) {
	path := filepath.Join(w.CtlDir, "report")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			return ParseWorkloadReport(data)
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(w.CtlDir, "workload.log"))
			return nil, fmt.Errorf("workload %d did not report within 10 s: %s", w.Pid, strings.TrimSpace(string(log)))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Kill ends the workload and the children it holds (by pid), whether it is
// the process we started or its restored copy.
func (w *Workload) Kill() {
	_ = syscall.Kill(w.Pid, syscall.SIGKILL) // its children die with it (PDEATHSIG)
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
}

// WorkloadReport is what the workload says about the fds it holds.
type WorkloadReport struct {
	Pid int
	FDs []HeldFD
}

// HeldFD is one line of the report.
type HeldFD struct {
	FD     int
	Case   string // live, dead, outside, thread, uring
	Target int    // pid the pidfd was opened for
	Link   string // readlink /proc/self/fd/N
	FDPid  string // fdinfo "Pid:" ("-1" once the target is gone, "none")
	Flags  string // fdinfo "flags:" (octal)
	Signal string // pidfd_send_signal(fd, 0): "ok" or the errno name
}

// ParseWorkloadReport reads a report.
func ParseWorkloadReport(data []byte) (*WorkloadReport, error) {
	rep := &WorkloadReport{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("workload report: bad line %q", sc.Text())
		}
		switch f[0] {
		case "pid":
			rep.Pid = n
		case "fd":
			h := HeldFD{FD: n}
			for _, kv := range f[2:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "case":
					h.Case = v
				case "target":
					h.Target, _ = strconv.Atoi(v)
				case "link":
					h.Link = v
				case "fdpid":
					h.FDPid = v
				case "flags":
					h.Flags = v
				case "signal":
					h.Signal = v
				}
			}
			rep.FDs = append(rep.FDs, h)
		}
	}
	if rep.Pid == 0 {
		return nil, fmt.Errorf("workload report has no pid line: %q", firstLine(data))
	}
	return rep, nil
}

// FD returns the report's line for a case.
func (r *WorkloadReport) FD(c string) (HeldFD, bool) {
	for _, h := range r.FDs {
		if h.Case == c {
			return h, true
		}
	}
	return HeldFD{}, false
}
