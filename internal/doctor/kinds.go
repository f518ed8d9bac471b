package doctor

import (
	"strings"

	"github.com/criu-forge/criu-forge/internal/verify"
)

// Kind is one sort of file descriptor and the first CRIU release that
// checkpoints it.
type Kind struct {
	Name string `json:"name"`
	// Link is the /proc/PID/fd/N link that marks it (anon inodes are
	// "anon_inode:" + CRIU's type string).
	Link string `json:"link"`
	// Since is the first CRIU version that handles it; "" = none does.
	Since string `json:"since,omitempty"`
	// SinceIsFloor: Since is the oldest release checked, not proven first.
	SinceIsFloor bool `json:"since_is_floor,omitempty"`
	// Source says where this comes from (file, commit, PR).
	Source string `json:"source"`
	// Recipe is the shipped recipe whose packages handle it ("" = none yet).
	Recipe string `json:"recipe,omitempty"`
	// Remedy says what to do when no CRIU handles it.
	Remedy string `json:"remedy,omitempty"`
}

// Supported reports whether criu version v handles this kind.
func (k Kind) Supported(v string) bool { return k.Since != "" && verify.AtLeast(v, k.Since) }

// Needs says in a few words what this kind asks of CRIU.
func (k Kind) Needs() string {
	switch {
	case k.Since == "":
		return "no CRIU release supports it"
	case k.SinceIsFloor:
		return "supported by every CRIU checked (" + k.Since + " and later)"
	}
	return "needs CRIU >= " + k.Since
}

// PidfdRecipe is the shipped recipe that builds a pidfd-capable CRIU.
const PidfdRecipe = "recipes/criu-pidfd.yaml"

// Kind names.
const (
	KindPidfd        = "pidfd"
	KindPidfdThread  = "pidfd-thread"
	KindPidfdOutside = "pidfd-outside-tree"
	KindIOUring      = "io_uring"
	KindUnknownAnon  = "anon-inode"
)

const (
	dumpOneFile = "criu/files.c dump_one_file() of CRIU 4.2.1 (the fixture source): anon inodes other than eventfd, eventpoll, inotify, fanotify, signalfd, timerfd, pidfd and (with libbpf) bpf-map go to dump_unsupp_fd(): \"Can't dump file N of that type\""
	floorSource = "; the same link check is in Debian 12's criu 3.17.1 binary (older releases not checked here)"
)

// Kinds is the table doctor classifies with. Rows with an empty Since are
// what no CRIU release can checkpoint today.
var Kinds = []Kind{
	{Name: KindPidfd, Link: "anon_inode:[pidfd]", Since: "4.1",
		Source: "criu/pidfd.c, upstream commit 1ce408ffa \"criu: Support C/R of pidfds\" (PR #2449, in v4.1); pidfs (kernel >= 6.9) detected by magic 0x50494446",
		Recipe: PidfdRecipe},
	{Name: KindPidfdThread, Link: "anon_inode:[pidfd] with O_EXCL (PIDFD_THREAD) in fdinfo flags",
		Source: "criu/pidfd.c dump_one_pidfd(), CRIU 4.2.1: \"PIDFD_THREAD flag is currently not supported\"; zdtm pidfd_of_thread is marked crfail",
		Remedy: "no CRIU release handles PIDFD_THREAD pidfds: stop the holder before the checkpoint"},
	{Name: KindPidfdOutside, Link: "anon_inode:[pidfd] whose fdinfo Pid is not in the dumped tree",
		Source: "criu/pidfd.c dump_one_pidfd(), CRIU 4.2.1: \"pidfd pid N is not a part of process tree\"",
		Remedy: "no CRIU release restores a pidfd to a process outside the dump: dump a tree that contains the target, or stop the holder"},
	{Name: KindIOUring, Link: "anon_inode:[io_uring]", Source: dumpOneFile,
		Remedy: "no CRIU release checkpoints io_uring: stop the holder, or dump a subtree without it"},
	{Name: "userfaultfd", Link: "anon_inode:[userfaultfd]", Source: dumpOneFile,
		Remedy: "no CRIU release checkpoints a process's own userfaultfd: stop the holder, or dump a subtree without it"},
	{Name: "perf_event", Link: "anon_inode:[perf_event]", Source: dumpOneFile,
		Remedy: "no CRIU release checkpoints perf_event fds: stop the profiler, or dump a subtree without it"},
	{Name: "bpf-map", Link: "anon_inode:bpf-map",
		Source: "criu/bpfmap.c, compiled only with libbpf (CONFIG_HAS_LIBBPF in criu/files.c); Debian 12's 3.17.1 and criu-forge's recipes build without libbpf",
		Remedy: "only a criu built with libbpf (libbpf-dev in the builder) checkpoints BPF maps"},
	{Name: "bpf-prog", Link: "anon_inode:bpf-prog", Source: dumpOneFile,
		Remedy: "no CRIU release checkpoints BPF programs: stop the holder"},
	{Name: "bpf_link", Link: "anon_inode:bpf_link", Source: dumpOneFile,
		Remedy: "no CRIU release checkpoints BPF links: stop the holder"},
	{Name: "eventfd", Link: "anon_inode:[eventfd]", Since: "3.17.1", SinceIsFloor: true, Source: "criu/eventfd.c" + floorSource},
	{Name: "eventpoll", Link: "anon_inode:[eventpoll]", Since: "3.17.1", SinceIsFloor: true, Source: "criu/eventpoll.c" + floorSource},
	{Name: "inotify", Link: "anon_inode:inotify", Since: "3.17.1", SinceIsFloor: true, Source: "criu/fsnotify.c" + floorSource},
	{Name: "fanotify", Link: "anon_inode:[fanotify]", Since: "3.17.1", SinceIsFloor: true, Source: "criu/fsnotify.c" + floorSource},
	{Name: "signalfd", Link: "anon_inode:[signalfd]", Since: "3.17.1", SinceIsFloor: true, Source: "criu/signalfd.c" + floorSource},
	{Name: "timerfd", Link: "anon_inode:[timerfd]", Since: "3.17.1", SinceIsFloor: true, Source: "criu/timerfd.c" + floorSource},
	{Name: KindUnknownAnon, Link: "anon_inode:<anything else>", Source: dumpOneFile,
		Remedy: "CRIU does not know this anon inode: stop the holder, or dump a subtree without it"},
}

// KindNamed returns the table's row.
func KindNamed(name string) Kind {
	for _, k := range Kinds {
		if k.Name == name {
			return k
		}
	}
	panic("doctor: no kind " + name)
}

// kindOfAnonLink maps an anon inode link to its row (not pidfds: those
// need fdinfo too).
func kindOfAnonLink(link string) (Kind, bool) {
	if !strings.HasPrefix(link, "anon_inode:") {
		return Kind{}, false
	}
	for _, k := range Kinds {
		if k.Link == link {
			return k, true
		}
	}
	return KindNamed(KindUnknownAnon), true
}
