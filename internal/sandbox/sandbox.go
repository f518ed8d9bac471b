// Package sandbox runs build commands inside a builder: a cached root file
// system (made with mmdebstrap, or a container image) entered through one
// of three runners — bubblewrap (the default: no daemon), docker or podman.
//
// The one entry point for a build stage is Prepare, which returns a ready
// Builder for a target, and Runner.Run, which runs one command in it.
//
// What makes a builder, by target family and runner:
//
//   - Debian family (debian bookworm/trixie/sid, ubuntu noble/jammy), any
//     runner: mmdebstrap --variant=minbase with the build dependencies and
//     ccache included in the same call, from the target's mirror or the
//     archives of the machine's apt configuration. Ubuntu needs an Ubuntu
//     archive (the target's mirror) and the ubuntu-keyring package. docker
//     and podman import the root as the local image
//     criu-forge-builder:<key>.
//   - A target image (ubuntu:24.04, rockylinux:9, fedora:41) with docker or
//     podman: the image from the user's registry with the dependencies
//     installed by apt-get or dnf and committed as criu-forge-builder:<key>.
//   - RPM family with bubblewrap: dnf --installroot from the target's RPM
//     mirror. Without a mirror or an image it is a clear error; on the
//     project's machines no RPM mirror or registry answers, so only the
//     error paths are tested here.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// EnvRunner names the environment variable that picks the runner when
// neither --runner nor the recipe does.
const EnvRunner = "CRIU_FORGE_RUNNER"

// Mount makes a host directory visible inside the sandbox. Targets should be
// new top-level paths (such as /build/src) or lie under /tmp: bubblewrap
// keeps the builder's own directories read-only and cannot create mount
// points inside them.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// RunSpec is one command to run in a builder.
type RunSpec struct {
	Builder *Builder
	Cmd     []string
	Dir     string   // working directory inside the sandbox
	Env     []string // KEY=VALUE; the sandbox starts from an empty environment plus a default PATH
	Mounts  []Mount
	Network bool // false cuts the sandbox off the network where the runner allows
	Stdout  io.Writer
	Stderr  io.Writer
}

// Runner is a way to enter a builder.
type Runner interface {
	// Name is the name users pass to --runner: bubblewrap, docker or podman.
	Name() string
	// Available reports why the runner cannot be used here, naming the
	// Debian package to install or the daemon to start.
	Available() error
	// Import makes a builder usable by this runner (for docker and podman:
	// an image tagged by the builder key). It is a no-op when already done.
	Import(ctx context.Context, b *Builder, log io.Writer) error
	// Run runs spec.Cmd in spec.Builder and waits for it. Cancelling ctx
	// stops the command and everything it started.
	Run(ctx context.Context, spec RunSpec) error
}

// Runners lists the runner names Select accepts, in the order it tries them.
var Runners = []string{"bubblewrap", "docker", "podman"}

// Select returns the runner called name. An empty name means the value of
// $CRIU_FORGE_RUNNER, and when that is empty too the first available of
// bubblewrap, docker and podman. An explicitly named runner that cannot be
// used here is an error that says what to install.
func Select(name string) (Runner, error) {
	if name == "" {
		name = strings.TrimSpace(os.Getenv(EnvRunner))
	}
	if name != "" {
		r, err := byName(name)
		if err != nil {
			return nil, err
		}
		if err := r.Available(); err != nil {
			return nil, fmt.Errorf("runner %s: %w", name, err)
		}
		return r, nil
	}
	var reasons []error
	for _, n := range Runners {
		r, _ := byName(n)
		err := r.Available()
		if err == nil {
			return r, nil
		}
		reasons = append(reasons, fmt.Errorf("%s: %w", n, err))
	}
	return nil, fmt.Errorf("no build runner available (install bubblewrap, the default): %w", errors.Join(reasons...))
}

func byName(name string) (Runner, error) {
	switch name {
	case "bubblewrap", "bwrap":
		return &Bubblewrap{}, nil
	case "docker":
		return NewDocker(), nil
	case "podman":
		return NewPodman(""), nil
	}
	return nil, fmt.Errorf("unknown runner %q: choose one of %s", name, strings.Join(Runners, ", "))
}

// defaultPath is the PATH a command gets when spec.Env sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// environment returns spec.Env with a PATH added when it has none.
func environment(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			return env
		}
	}
	return append([]string{"PATH=" + defaultPath}, env...)
}

func checkSpec(spec RunSpec) error {
	if spec.Builder == nil {
		return errors.New("run: no builder given")
	}
	if len(spec.Cmd) == 0 {
		return errors.New("run: empty command")
	}
	for _, kv := range spec.Env {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("run: environment entry %q is not KEY=VALUE", kv)
		}
	}
	for _, m := range spec.Mounts {
		if !strings.HasPrefix(m.Target, "/") {
			return fmt.Errorf("run: mount target %q is not absolute", m.Target)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("run: mount source: %w", err)
		}
	}
	return nil
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
