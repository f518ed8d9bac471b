package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Bubblewrap runs commands with bwrap in a builder's root file system.
//
// As root, bwrap's user namespace maps only uid 0, which breaks tools that
// switch users, so it runs without one (see SANDBOX-NOTES). The builder's
// top-level directories are bound read-only onto a fresh tmpfs root: the
// cached builder is never written to, and mount points such as /build/src
// can be created in the tmpfs. /tmp, /var/tmp and /run are private tmpfs.
type Bubblewrap struct{}

func (*Bubblewrap) Name() string { return "bubblewrap" }

func (*Bubblewrap) Available() error {
	if _, err := exec.LookPath("bwrap"); err != nil {
		return errors.New("bwrap not found on PATH: install the Debian package bubblewrap")
	}
	return nil
}

// Import checks that the builder has a root file system: bubblewrap needs
// nothing more.
func (*Bubblewrap) Import(_ context.Context, b *Builder, _ io.Writer) error {
	if b.Root == "" {
		return fmt.Errorf("builder %s is a container image (%s): bubblewrap needs a root file system; use --runner docker or podman, or drop the target's image", b.Key, b.Image)
	}
	if _, err := os.Stat(filepath.Join(b.Root, "usr")); err != nil {
		return fmt.Errorf("builder %s: root file system %s is incomplete: %w (remove it with `criu-forge builders --prune`)", b.Key, b.Root, err)
	}
	return nil
}

func (r *Bubblewrap) Run(ctx context.Context, spec RunSpec) error {
	if err := checkSpec(spec); err != nil {
		return err
	}
	args, err := bwrapArgs(spec)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "bwrap", args...)
	cmd.Env = []string{} // the sandbox gets only what --setenv gives
	cmd.Stdout = writerOr(spec.Stdout)
	cmd.Stderr = writerOr(spec.Stderr)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("bubblewrap: %s: %w", strings.Join(spec.Cmd, " "), ctx.Err())
		}
		return fmt.Errorf("bubblewrap: %s: %w", strings.Join(spec.Cmd, " "), err)
	}
	return nil
}

// sandboxOwned are the top-level directories bwrap provides itself.
var sandboxOwned = map[string]bool{"proc": true, "dev": true, "sys": true, "tmp": true, "run": true}

func bwrapArgs(spec RunSpec) ([]string, error) {
	root := spec.Builder.Root
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("bubblewrap: read builder root: %w", err)
	}
	var args []string
	for _, e := range entries {
		name := e.Name()
		if sandboxOwned[name] {
			continue
		}
		path := filepath.Join(root, name)
		if e.Type()&os.ModeSymlink != 0 {
			// /bin -> usr/bin and friends: recreate the link, do not follow it on the host.
			target, err := os.Readlink(path)
			if err != nil {
				return nil, fmt.Errorf("bubblewrap: %w", err)
			}
			args = append(args, "--symlink", target, "/"+name)
			continue
		}
		args = append(args, "--ro-bind", path, "/"+name)
	}
	args = append(args,
		"--proc", "/proc", "--dev", "/dev",
		"--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup",
		"--perms", "1777", "--tmpfs", "/tmp",
		"--tmpfs", "/run",
		"--die-with-parent", "--new-session",
		"--hostname", "criu-forge",
	)
	if fi, err := os.Stat(filepath.Join(root, "var", "tmp")); err == nil && fi.IsDir() {
		args = append(args, "--perms", "1777", "--tmpfs", "/var/tmp")
	}
	if !spec.Network {
		args = append(args, "--unshare-net")
	}
	mounts := append([]Mount(nil), spec.Mounts...)
	// Parents before children, so a mount inside another is not hidden by it.
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i].Target) < len(mounts[j].Target) })
	for _, m := range mounts {
		flag := "--bind"
		if m.ReadOnly {
			flag = "--ro-bind"
		}
		args = append(args, flag, m.Source, m.Target)
	}
	args = append(args, "--clearenv")
	for _, kv := range environment(spec.Env) {
		k, v, _ := strings.Cut(kv, "=")
		args = append(args, "--setenv", k, v)
	}
	if spec.Dir != "" {
		args = append(args, "--chdir", spec.Dir)
	}
	args = append(args, "--")
	return append(args, spec.Cmd...), nil
}
