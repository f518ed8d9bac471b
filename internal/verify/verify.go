package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PidfdSince is the first CRIU release that checkpoints pidfds (upstream
// commit 1ce408ffa "criu: Support C/R of pidfds", in v4.1).
const PidfdSince = "4.1"

// The cases of the round trip.
const (
	CaseLive    = "live"    // pidfd of a running child: restored, fdinfo names the child
	CaseDead    = "dead"    // pidfd of a reaped child: restored, still names no process
	CaseOutside = "outside" // pidfd of a process outside the tree: dump must refuse
)

// AllCases is the default set, in the order they run.
var AllCases = []string{CaseLive, CaseDead, CaseOutside}

// Options for Run.
type Options struct {
	CRIU CRIU
	// WorkDir holds the workload, images and logs (kept for inspection);
	// it must be on a filesystem CRIU can restore files from.
	WorkDir string
	Cases   []string // default AllCases
	// Progress receives a line per check as it completes (nil: none).
	Progress io.Writer
}

// Check is one verdict.
type Check struct {
	Case   string `json:"case"`
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail,omitempty"`
}

func (c Check) String() string {
	verdict := "FAIL"
	if c.Pass {
		verdict = "PASS"
	}
	s := fmt.Sprintf("%s  %-8s %s", verdict, c.Case, c.Name)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// Report is the outcome of Run.
type Report struct {
	CRIU    string      `json:"criu"`
	Version string      `json:"version"`
	Check   CheckResult `json:"check"`
	Checks  []Check     `json:"checks"`
	// Advice says what to do when something failed ("" when all passed).
	Advice string `json:"advice,omitempty"`
}

// Failed counts the failed checks.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if !c.Pass {
			n++
		}
	}
	return n
}

// Print writes the whole report: criu, a line per check, the verdict.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "criu %s (%s)\n", r.Version, r.CRIU)
	for _, c := range r.Checks {
		fmt.Fprintln(w, c)
	}
	r.Summary(w)
}

// Summary writes the verdict and, on failure, the advice.
func (r *Report) Summary(w io.Writer) {
	if n := r.Failed(); n > 0 {
		fmt.Fprintf(w, "FAILED: %d of %d checks with criu %s\n", n, len(r.Checks), r.Version)
		if r.Advice != "" {
			fmt.Fprintln(w, r.Advice)
		}
		return
	}
	fmt.Fprintf(w, "OK: all %d checks passed with criu %s: it checkpoints and restores pidfds on this kernel\n", len(r.Checks), r.Version)
}

// Run checks the criu (`criu check`) and round-trips the workload for each
// case. It needs root and gcc. The error is for what stops the test itself
// (no root, no gcc, no work dir); what criu gets wrong is in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("verify needs root: criu dump and restore need CAP_SYS_ADMIN and friends (run it with sudo)")
	}
	if len(opts.Cases) == 0 {
		opts.Cases = AllCases
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("verify work dir: %w", err)
	}
	rep := &Report{CRIU: opts.CRIU.Path}
	add := func(c Check) {
		rep.Checks = append(rep.Checks, c)
		fmt.Fprintln(progress, c)
	}
	v, err := opts.CRIU.Version(ctx)
	if err != nil {
		return nil, err
	}
	rep.Version = v
	fmt.Fprintf(progress, "criu %s (%s)\n", v, opts.CRIU.Path)
	rep.Check = opts.CRIU.Check(ctx)
	add(Check{Case: "-", Name: "criu check", Pass: rep.Check.OK, Detail: rep.Check.Summary()})

	bin, err := BuildWorkload(ctx, opts.WorkDir)
	if err != nil {
		return nil, err
	}
	for _, c := range opts.Cases {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		checks, err := roundTrip(ctx, opts.CRIU, bin, filepath.Join(opts.WorkDir, c), c)
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", c, err)
		}
		for _, ch := range checks {
			add(ch)
		}
	}
	rep.Advice = advice(rep)
	return rep, nil
}

// advice explains a failed run in terms of what to do.
func advice(r *Report) string {
	if r.Failed() == 0 {
		return ""
	}
	var why []string
	if !r.Check.OK {
		why = append(why, fmt.Sprintf("`criu check` fails on this kernel (%s): this criu cannot checkpoint anything here", r.Check.Summary()))
	}
	if !AtLeast(r.Version, PidfdSince) {
		why = append(why, fmt.Sprintf("criu %s cannot checkpoint pidfds: CRIU supports them from %s on (upstream commit 1ce408ffa)", r.Version, PidfdSince))
	}
	if len(why) == 0 {
		return "see the dump.log and restore.log files in the work dir for CRIU's own account"
	}
	return strings.Join(why, "; ") + ". Use a CRIU >= " + PidfdSince + " built for this distro: criu-forge build recipes/criu-pidfd.yaml"
}

// roundTrip runs one case: start, dump, wait for the reap, restore, ask.
func roundTrip(ctx context.Context, c CRIU, bin, dir, kase string) ([]Check, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	images := filepath.Join(dir, "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		return nil, err
	}
	arg := kase
	if kase == CaseOutside {
		arg = "outside:" + strconv.Itoa(os.Getpid()) // this process is not in the workload's tree
	}
	w, before, err := StartWorkload(ctx, bin, dir, arg)
	if err != nil {
		return nil, err
	}
	defer w.Kill()
	held, ok := before.FD(kase)
	if !ok || held.Link != pidfdLink {
		return nil, fmt.Errorf("the workload holds no pidfd before the dump: %+v", before.FDs)
	}
	dumpErr := runCRIU(ctx, c, images, "dump.log", "dump", "-t", strconv.Itoa(w.Pid))
	if kase == CaseOutside {
		return outsideChecks(ctx, w, images, dumpErr, held), nil
	}
	if dumpErr != nil {
		return []Check{{Case: kase, Name: "dump", Detail: dumpErr.Error()}}, nil
	}
	checks := []Check{{Case: kase, Name: "dump", Pass: true}}
	// Restore needs the same pids: wait until the dumped tree is gone.
	gone := []int{w.Pid}
	if held.Target > 0 && kase == CaseLive {
		gone = append(gone, held.Target)
	}
	if err := waitReaped(ctx, w, gone); err != nil {
		return append(checks, Check{Case: kase, Name: "dumped process reaped", Detail: err.Error()}), nil
	}
	if err := runCRIU(ctx, c, images, "restore.log", "restore", "-d"); err != nil {
		return append(checks, Check{Case: kase, Name: "restore", Detail: err.Error()}), nil
	}
	checks = append(checks, Check{Case: kase, Name: "restore", Pass: true})
	after, err := w.Report(ctx)
	if err != nil {
		return append(checks, Check{Case: kase, Name: "restored process reports", Detail: err.Error()}), nil
	}
	return append(checks, restoredChecks(kase, held, after)...), nil
}

const pidfdLink = "anon_inode:[pidfd]"

// restoredChecks compares the restored fd with what the workload held.
func restoredChecks(kase string, held HeldFD, after *WorkloadReport) []Check {
	got, ok := after.FD(kase)
	if !ok {
		return []Check{{Case: kase, Name: "fd restored", Detail: "the restored workload no longer reports it"}}
	}
	checks := []Check{{Case: kase, Name: "fd is " + pidfdLink, Pass: got.Link == pidfdLink, Detail: "link " + got.Link}}
	switch kase {
	case CaseLive:
		want := strconv.Itoa(held.Target)
		alive := processAlive(held.Target)
		checks = append(checks,
			Check{Case: kase, Name: "fdinfo Pid names the restored child", Pass: got.FDPid == want && alive,
				Detail: fmt.Sprintf("Pid: %s, child %d alive: %v", got.FDPid, held.Target, alive)},
			Check{Case: kase, Name: "pidfd_send_signal(fd, 0) works", Pass: got.Signal == "ok", Detail: got.Signal})
	case CaseDead:
		checks = append(checks,
			Check{Case: kase, Name: "fdinfo Pid says the target is gone", Pass: got.FDPid == "-1", Detail: "Pid: " + got.FDPid},
			Check{Case: kase, Name: "pidfd_send_signal(fd, 0) says ESRCH", Pass: got.Signal == "ESRCH", Detail: got.Signal})
	}
	return checks
}

// outsideChecks: the dump must fail with CRIU's reason and leave the
// workload running with its fd.
func outsideChecks(ctx context.Context, w *Workload, images string, dumpErr error, held HeldFD) []Check {
	const kase = CaseOutside
	log, _ := os.ReadFile(filepath.Join(images, "dump.log"))
	reason := ""
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "is not a part of process tree") {
			reason = strings.TrimSpace(l)
		}
	}
	var checks []Check
	if dumpErr == nil {
		checks = append(checks, Check{Case: kase, Name: "dump refuses a pidfd outside the tree", Detail: "criu dumped it (and killed the workload)"})
		return checks
	}
	checks = append(checks, Check{Case: kase, Name: "dump refuses a pidfd outside the tree", Pass: reason != "",
		Detail: orElse(reason, "failed for another reason: "+dumpErr.Error())})
	after, err := w.Report(ctx)
	if err != nil {
		return append(checks, Check{Case: kase, Name: "process keeps running", Detail: err.Error()})
	}
	got, _ := after.FD(kase)
	return append(checks, Check{Case: kase, Name: "process keeps running", Pass: after.Pid == w.Pid && got.Link == pidfdLink && got.Signal == "ok",
		Detail: fmt.Sprintf("pid %d, fd %d %s, signal %s", after.Pid, got.FD, got.Link, got.Signal)})
}

func orElse(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}

// runCRIU runs one criu action with -v4 and its log in the images folder;
// a failure carries CRIU's first error line.
func runCRIU(ctx context.Context, c CRIU, images, logName string, args ...string) error {
	args = append(args, "-D", images, "-v4", "-o", logName)
	out, err := os.Create(filepath.Join(images, strings.TrimSuffix(logName, ".log")+".out"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := c.command(ctx, args...)
	// Files, not pipes: a restored tree must not hold our pipe open.
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(images, logName))
		return fmt.Errorf("criu %s: %v: %s", args[0], err, firstError(log))
	}
	return nil
}

// firstError picks CRIU's first "Error" line of a log.
func firstError(log []byte) string {
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "Error") {
			return strings.TrimSpace(l)
		}
	}
	return "no error line in its log"
}

// waitReaped waits until the started process was reaped and the other
// pids are gone.
func waitReaped(ctx context.Context, w *Workload, pids []int) error {
	deadline := time.After(10 * time.Second)
	select {
	case <-w.Reaped():
	case <-deadline:
		return fmt.Errorf("process %d still not reaped 10 s after the dump", w.Pid)
	}
	for {
		busy := 0
		for _, p := range pids {
			if processExists(p) {
				busy = p
			}
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("pid %d still in use 10 s after the dump: restore needs it", busy)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func processExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

// processAlive: exists and is not a zombie.
func processAlive(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
