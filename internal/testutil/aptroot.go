package testutil

import "os/exec"

// AptBwrapFlags are the bubblewrap flags under which apt works in a root
// file system when run as root (SANDBOX-NOTES.md): no user namespace,
// since apt drops to its _apt user, and a 1777 /tmp. The root itself is
// bound by the caller.
func AptBwrapFlags() []string {
	return []string{"--proc", "/proc", "--dev", "/dev", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup", "--perms", "1777", "--tmpfs", "/tmp"}
}

// InAptRoot runs a command in root with bubblewrap and those flags, with a
// minimal environment, and returns its combined output.
func InAptRoot(root string, args ...string) (string, error) {
	bw := append([]string{"--bind", root, "/"}, AptBwrapFlags()...)
	cmd := exec.Command("bwrap", append(bw, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
