// Package doctor inspects a live process tree (a pid and its descendants,
// or a container's init) for file descriptors the installed CRIU cannot
// checkpoint, and says what fixes it: which CRIU version, which shipped
// recipe, or which workaround when a rebuild is not an option.
//
// Entry point: Inspect(ctx, Options) -> *Report; Report.Print, JSON via
// encoding/json; Report.CanDump decides the exit code.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/criu-forge/criu-forge/internal/verify"
)

// Options for Inspect.
type Options struct {
	Pid       int    // root of the tree
	Container string // or: a docker/podman container name or id (its init)
	// CRIU is the installed criu's state; nil: probe the criu on PATH
	// (`criu --version`, `criu check`).
	CRIU *CRIUStatus
	// Proc is the proc filesystem to read (default /proc).
	Proc string
}

// CRIUStatus is what doctor knows of the installed criu.
type CRIUStatus struct {
	Path    string              `json:"path,omitempty"`
	Version string              `json:"version,omitempty"` // "" = none installed
	Check   *verify.CheckResult `json:"check,omitempty"`
	Error   string              `json:"error,omitempty"` // why it is unknown
}

func (c CRIUStatus) where() string {
	if c.Path == "" {
		return ""
	}
	return " (" + c.Path + ")"
}

// Finding is one descriptor the installed criu cannot dump (or that no
// criu can).
type Finding struct {
	Pid    int    `json:"pid"`
	Comm   string `json:"comm"`
	FD     int    `json:"fd"`
	Link   string `json:"link"`
	Kind   string `json:"kind"`
	Target int    `json:"target,omitempty"` // a pidfd's process (fdinfo Pid)
	Needs  string `json:"needs"`            // "needs CRIU >= 4.1", "no CRIU release supports it"
	Since  string `json:"since,omitempty"`
	// Blocks: the installed criu cannot dump it.
	Blocks bool   `json:"blocks"`
	Recipe string `json:"recipe,omitempty"` // shipped recipe that fixes it
	Remedy string `json:"remedy,omitempty"`
	Source string `json:"source"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s pid %d fd %d %s", f.Comm, f.Pid, f.FD, f.Link)
	switch f.Kind {
	case KindPidfdThread:
		s += " (PIDFD_THREAD)"
	case KindPidfdOutside:
		s += fmt.Sprintf(" (target pid %d is outside the tree)", f.Target)
	}
	s += " -> " + f.Needs
	if !f.Blocks {
		s += " (the installed criu handles it)"
	}
	return s
}

// Report is the outcome of Inspect.
type Report struct {
	Root        int        `json:"root"`
	Container   string     `json:"container,omitempty"`
	CRIU        CRIUStatus `json:"criu"`
	Processes   []Process  `json:"processes"`
	Findings    []Finding  `json:"findings"`
	CanDump     bool       `json:"can_dump"`
	Fixes       []string   `json:"fixes,omitempty"`
	Workarounds []string   `json:"workarounds,omitempty"`
	Skipped     []string   `json:"skipped,omitempty"` // processes whose fds could not be read
}

// Inspect walks the tree and classifies every descriptor.
func Inspect(ctx context.Context, opts Options) (*Report, error) {
	root := opts.Pid
	if opts.Container != "" {
		pid, err := ContainerPid(ctx, opts.Container)
		if err != nil {
			return nil, err
		}
		root = pid
	}
	if root <= 0 {
		return nil, errors.New("doctor needs a process: --pid PID or --container NAME")
	}
	proc := procFS(opts.Proc)
	if proc == "" {
		proc = "/proc"
	}
	procs, err := proc.tree(root)
	if err != nil {
		return nil, err
	}
	criu := probeOr(ctx, opts.CRIU)
	fds := map[int][]OpenFD{}
	var skipped []string
	for _, p := range procs {
		list, err := proc.fds(p.Pid)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s pid %d: %v", p.Comm, p.Pid, err))
			continue
		}
		fds[p.Pid] = list
	}
	rep := analyze(root, procs, fds, criu)
	rep.Container = opts.Container
	rep.Skipped = skipped
	rep.CanDump = rep.CanDump && len(skipped) == 0
	return rep, nil
}

// analyze classifies what was read and decides.
func analyze(root int, procs []Process, fds map[int][]OpenFD, criu CRIUStatus) *Report {
	rep := &Report{Root: root, CRIU: criu, Findings: []Finding{}}
	inTree := map[int]bool{}
	for _, p := range procs {
		inTree[p.Pid] = true
	}
	for _, p := range procs {
		p.FDs = len(fds[p.Pid])
		rep.Processes = append(rep.Processes, p)
		for _, fd := range fds[p.Pid] {
			if f, ok := classify(p, fd, inTree, criu.Version); ok {
				rep.Findings = append(rep.Findings, f)
			}
		}
	}
	rep.CanDump = criu.Version != "" && criu.Check != nil && criu.Check.OK && rep.blocking() == 0
	rep.Fixes = fixes(rep)
	rep.Workarounds = workarounds(rep)
	return rep
}

func probeOr(ctx context.Context, given *CRIUStatus) CRIUStatus {
	if given != nil {
		return *given
	}
	return probeCRIU(ctx)
}

func (r *Report) blocking() int {
	n := 0
	for _, f := range r.Findings {
		if f.Blocks {
			n++
		}
	}
	return n
}

// classify returns a finding for a descriptor worth reporting: a pidfd or
// an anon inode that not every CRIU release handles; Blocks says whether
// the installed criu (version v, "" = none) cannot dump it. Plain files,
// sockets, pipes and the anon inodes every checked release handles are not
// reported.
func classify(p Process, fd OpenFD, inTree map[int]bool, v string) (Finding, bool) {
	var k Kind
	target := 0
	switch {
	case fd.Pidfd:
		target = fd.FDInfo.Pid
		switch {
		case fd.FDInfo.Flags&pidfdThread != 0:
			k = KindNamed(KindPidfdThread)
		case fd.FDInfo.HasPid && target > 0 && !inTree[target]:
			k = KindNamed(KindPidfdOutside)
		case fd.FDInfo.HasPid && target == 0:
			// Pid 0: the target lives in a pid namespace we cannot see into.
			k = KindNamed(KindPidfdOutside)
		default:
			k = KindNamed(KindPidfd)
		}
	default:
		var ok bool
		if k, ok = kindOfAnonLink(fd.Link); !ok {
			return Finding{}, false
		}
	}
	if k.SinceIsFloor {
		return Finding{}, false // every release checked handles it
	}
	return Finding{Pid: p.Pid, Comm: p.Comm, FD: fd.FD, Link: fd.Link, Kind: k.Name, Target: target,
		Needs: k.Needs(), Since: k.Since, Blocks: !k.Supported(v), Recipe: k.Recipe, Remedy: k.Remedy, Source: k.Source}, true
}

// pidfdThread is PIDFD_THREAD, which the kernel spells O_EXCL (octal 0200)
// and shows in fdinfo's flags.
const pidfdThread = 0o200

func probeCRIU(ctx context.Context) CRIUStatus {
	c, err := verify.Installed()
	if err != nil {
		return CRIUStatus{Error: err.Error()}
	}
	return Probe(ctx, c)
}

// Probe asks a criu for its version and `criu check` verdict.
func Probe(ctx context.Context, c verify.CRIU) CRIUStatus {
	st := CRIUStatus{Path: c.Path}
	v, err := c.Version(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Version = v
	check := c.Check(ctx)
	st.Check = &check
	return st
}

// ContainerPid asks docker, then podman, for a container's init pid.
func ContainerPid(ctx context.Context, name string) (int, error) {
	var tried []string
	for _, tool := range []string{"docker", "podman"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, tool, "inspect", "--format", "{{.State.Pid}}", name).CombinedOutput()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s inspect: %v: %s", tool, err, strings.TrimSpace(string(out))))
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil || pid <= 0 {
			tried = append(tried, fmt.Sprintf("%s inspect: container %s is not running (pid %q)", tool, name, strings.TrimSpace(string(out))))
			continue
		}
		return pid, nil
	}
	if len(tried) == 0 {
		return 0, fmt.Errorf("container %s: neither docker nor podman is on PATH; give its init's pid with --pid", name)
	}
	return 0, fmt.Errorf("container %s: %s", name, strings.Join(tried, "; "))
}

// fixes names what rebuilding would fix.
func fixes(r *Report) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range r.Findings {
		if !f.Blocks || seen[f.Kind] {
			continue
		}
		seen[f.Kind] = true
		if f.Recipe != "" {
			out = append(out, fmt.Sprintf("%s: build %s (CRIU >= %s): criu-forge build %s", f.Kind, f.Recipe, f.Since, f.Recipe))
		} else {
			out = append(out, fmt.Sprintf("%s: no shipped recipe fixes it yet (%s)", f.Kind, f.Source))
		}
	}
	if r.CRIU.Version == "" {
		out = append(out, "no criu installed: "+orElse(r.CRIU.Error, "install one"))
	} else if r.CRIU.Check != nil && !r.CRIU.Check.OK {
		out = append(out, fmt.Sprintf("criu %s fails `criu check` on this kernel (%s): a CRIU >= %s from %s runs here", r.CRIU.Version, r.CRIU.Check.Summary(), verify.PidfdSince, PidfdRecipe))
	}
	return out
}

func orElse(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}

// workarounds names what helps without a rebuild, for what was found.
func workarounds(r *Report) []string {
	if r.blocking() == 0 {
		return nil
	}
	var out []string
	holders := map[int]bool{}
	ibus := false
	for _, f := range r.Findings {
		if f.Blocks {
			holders[f.Pid] = true
			if isInputMethod(f.Comm) {
				ibus = true
			}
		}
	}
	if ibus {
		out = append(out, "The pidfd holder is the input-method daemon (IBus). In the container, stop it before the checkpoint (`ibus exit` as the desktop user) "+
			"and keep it from starting in the XFCE/VNC session: `im-config -n none` for that user (or unset GTK_IM_MODULE, QT_IM_MODULE and XMODIFIERS / set them to a non-ibus value such as GTK_IM_MODULE=xim XMODIFIERS=@im=none in the VNC start script, e.g. ~/.vnc/xstartup), "+
			"and disable its autostart entry (/etc/xdg/autostart/im-launch.desktop, or an ibus .desktop there: copy it to ~/.config/autostart/ with Hidden=true, or remove it from the image).")
	}
	if sub := cleanSubtrees(r, holders); len(sub) > 0 {
		how := "Checkpoint only the processes that matter: these subtrees hold nothing the installed criu rejects: " + strings.Join(sub, ", ") +
			" (a subtree that is not its own session needs --shell-job, and its open files and sockets must allow it)."
		if r.Container != "" {
			how += " Docker and podman checkpoint the whole container, so this means running criu on the subtree directly; with the engine, stop the holders first."
		}
		out = append(out, how)
	}
	return out
}

// isInputMethod: IBus and friends (ibus-daemon, ibus-x11, ibus-ui-gtk3, ...).
func isInputMethod(comm string) bool {
	c := strings.ToLower(comm)
	return strings.HasPrefix(c, "ibus") || strings.HasPrefix(c, "fcitx")
}

// cleanSubtrees lists the largest subtrees below the root that contain no
// blocking holder and are not below one, as `criu dump -t PID` commands.
func cleanSubtrees(r *Report, holders map[int]bool) []string {
	children := map[int][]Process{}
	for _, p := range r.Processes {
		if p.Pid != r.Root {
			children[p.PPid] = append(children[p.PPid], p)
		}
	}
	var size func(pid int) (int, bool)
	size = func(pid int) (int, bool) {
		n, clean := 1, !holders[pid]
		for _, c := range children[pid] {
			m, ok := size(c.Pid)
			n += m
			clean = clean && ok
		}
		return n, clean
	}
	type cand struct {
		p Process
		n int
	}
	var cands []cand
	var walk func(pid int)
	walk = func(pid int) {
		for _, c := range children[pid] {
			if n, ok := size(c.Pid); ok {
				cands = append(cands, cand{c, n})
			} else if !holders[c.Pid] {
				walk(c.Pid) // a holder's helpers alone are rarely what matters
			}
		}
	}
	walk(r.Root)
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].n > cands[j].n })
	var out []string
	for i, c := range cands {
		if i == 5 {
			break
		}
		out = append(out, fmt.Sprintf("`criu dump -t %d` (%s, %d process(es))", c.p.Pid, c.p.Comm, c.n))
	}
	return out
}

// Print writes the human report.
func (r *Report) Print(w io.Writer) {
	what := fmt.Sprintf("pid %d", r.Root)
	if r.Container != "" {
		what = fmt.Sprintf("container %s (init pid %d)", r.Container, r.Root)
	}
	nfds := 0
	for _, p := range r.Processes {
		nfds += p.FDs
	}
	fmt.Fprintf(w, "tree: %s, %d process(es), %d fd(s)\n", what, len(r.Processes), nfds)
	switch {
	case r.CRIU.Version == "":
		fmt.Fprintf(w, "criu: not found (%s)\n", r.CRIU.Error)
	case r.CRIU.Check == nil:
		fmt.Fprintf(w, "criu: %s%s\n", r.CRIU.Version, r.CRIU.where())
	default:
		fmt.Fprintf(w, "criu: %s%s, criu check: %s\n", r.CRIU.Version, r.CRIU.where(), r.CRIU.Check.Summary())
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "could not read: %s\n", s)
	}
	if r.blocking() == 0 {
		fmt.Fprintln(w, "no fds the installed criu cannot dump")
	}
	for _, f := range r.Findings {
		fmt.Fprintln(w, f)
	}
	for _, s := range r.Fixes {
		fmt.Fprintf(w, "fix: %s\n", s)
	}
	for _, s := range r.Workarounds {
		fmt.Fprintf(w, "workaround: %s\n", s)
	}
	if r.CanDump {
		fmt.Fprintln(w, "verdict: the installed criu can dump this tree")
	} else {
		fmt.Fprintln(w, "verdict: the installed criu cannot dump this tree")
	}
}
