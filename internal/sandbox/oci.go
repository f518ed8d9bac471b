package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// OCI runs commands with a docker-compatible command line: docker or
// podman. The builder becomes a local image tagged by its key: either the
// mmdebstrap root file system imported as is, or the target's registry
// image with the build dependencies installed into it.
type OCI struct {
	name     string // runner name: docker or podman
	bin      string // command
	pkg      string // Debian package that provides it
	extraEnv []string
	// setup runs once before the first command (podman writes its
	// containers.conf here).
	setup func() error
}

// NewDocker returns the docker runner. It talks to the daemon named by
// $DOCKER_HOST, or the default socket.
func NewDocker() *OCI {
	return &OCI{name: "docker", bin: "docker", pkg: "docker.io"}
}

// NewPodman returns the podman runner. stateDir holds the containers.conf it
// writes (runc, cgroupfs, file events logger and explicit ulimits: what
// podman needs on hybrid-cgroup hosts, see SANDBOX-NOTES); "" means
// $XDG_CACHE_HOME/criu-forge/podman.
func NewPodman(stateDir string) *OCI {
	if stateDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		stateDir = filepath.Join(base, "criu-forge", "podman")
	}
	conf := filepath.Join(stateDir, "containers.conf")
	o := &OCI{name: "podman", bin: "podman", pkg: "podman"}
	o.extraEnv = []string{"CONTAINERS_CONF=" + conf}
	o.setup = func() error {
		if err := writeIfChanged(conf, []byte(podmanConf)); err != nil {
			return fmt.Errorf("podman: write %s: %w", conf, err)
		}
		return nil
	}
	return o
}

const podmanConf = `# Written by criu-forge: crun and systemd cgroups fail on hybrid-cgroup
# hosts, and podman's default ulimits exceed what an unprivileged-resource
# root may set.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

func (o *OCI) Name() string { return o.name }

func (o *OCI) Available() error {
	if _, err := exec.LookPath(o.bin); err != nil {
		return fmt.Errorf("%s not found on PATH: install the Debian package %s", o.bin, o.pkg)
	}
	if err := o.prepareState(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := o.output(ctx, nil, "version"); err != nil {
		hint := "is its service running?"
		if o.name == "docker" {
			hint = "start dockerd (the Debian package does not start it without systemd) and set DOCKER_HOST to its socket"
		}
		return fmt.Errorf("%s cannot reach its engine: %s: %v: %s", o.bin, hint, err, lastLine(out))
	}
	return nil
}

func (o *OCI) prepareState() error {
	if o.setup == nil {
		return nil
	}
	return o.setup()
}

// ImageTag is the local image a builder becomes for docker and podman. An
// imported root is tagged by its content id, so a root remade from a newer
// archive under the same key is imported again; an image builder is tagged
// by its key, since its id is read from the image once it exists.
func ImageTag(b *Builder) string {
	if b.Root != "" && b.ID != "" {
		return "criu-forge-builder:" + b.ID
	}
	return "criu-forge-builder:" + b.Key
}

func (o *OCI) Import(ctx context.Context, b *Builder, log io.Writer) error {
	if err := o.prepareState(); err != nil {
		return err
	}
	tag := ImageTag(b)
	if _, err := o.output(ctx, nil, "image", "inspect", "--format", "{{.Id}}", tag); err == nil {
		return nil
	}
	if b.Root != "" {
		return o.importRoot(ctx, b, tag, log)
	}
	return o.deriveImage(ctx, b, tag, log)
}

// importRoot streams the root file system as a tar into `import`.
func (o *OCI) importRoot(ctx context.Context, b *Builder, tag string, log io.Writer) error {
	tarCmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "-C", b.Root, "-cf", "-", ".")
	imp := o.command(ctx, "import", "-", tag)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		return err
	}
	var tarErr, impOut bytes.Buffer
	tarCmd.Stderr = &tarErr
	imp.Stdin = pipe
	imp.Stdout = &impOut
	imp.Stderr = &impOut
	if err := tarCmd.Start(); err != nil {
		return fmt.Errorf("%s import %s: start tar: %w", o.name, b.Root, err)
	}
	impErr := imp.Run()
	tErr := tarCmd.Wait()
	if impErr != nil || tErr != nil {
		return fmt.Errorf("%s import %s as %s: %v %v: %s %s", o.name, b.Root, tag, impErr, tErr, lastLine(impOut.Bytes()), lastLine(tarErr.Bytes()))
	}
	fmt.Fprintf(writerOr(log), "%s: imported builder %s as %s\n", o.name, b.Key, tag)
	return nil
}

// deriveImage installs the builder's packages into the target's registry
// image and commits the result under tag.
func (o *OCI) deriveImage(ctx context.Context, b *Builder, tag string, log io.Writer) error {
	install, err := installCommand(b.Target.Family, b.Packages)
	if err != nil {
		return err
	}
	name := "criu-forge-prepare-" + randomSuffix()
	args := []string{"run", "--name", name, b.Image, "sh", "-ec", install}
	cmd := o.command(ctx, args...)
	cmd.Stdout = writerOr(log)
	cmd.Stderr = writerOr(log)
	defer o.command(context.Background(), "rm", "-f", name).Run()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: install build dependencies into %s (does the registry answer, and does the image have the packages?): %w", o.name, b.Image, err)
	}
	if out, err := o.output(ctx, nil, "commit", name, tag); err != nil {
		return fmt.Errorf("%s commit %s: %w: %s", o.name, tag, err, lastLine(out))
	}
	return nil
}

// installCommand is the shell command that installs packages in a
// container image of the given family.
func installCommand(family string, packages []string) (string, error) {
	for _, p := range packages {
		if strings.ContainsAny(p, " \t\n'\"$;&|`\\") {
			return "", fmt.Errorf("package name %q has characters a package name cannot have", p)
		}
	}
	list := strings.Join(packages, " ")
	switch family {
	case "deb":
		return "export DEBIAN_FRONTEND=noninteractive; apt-get update; apt-get install -y --no-install-recommends " + list + "; apt-get clean", nil
	case "rpm":
		return "if command -v dnf >/dev/null; then dnf -y install " + list + " && dnf clean all; else yum -y install " + list + "; fi", nil
	}
	return "", fmt.Errorf("unknown package family %q (want deb or rpm)", family)
}

func (o *OCI) Run(ctx context.Context, spec RunSpec) error {
	if err := checkSpec(spec); err != nil {
		return err
	}
	if err := o.prepareState(); err != nil {
		return err
	}
	name := "criu-forge-run-" + randomSuffix()
	args := []string{"run", "--rm", "--name", name, "--hostname", "criu-forge"}
	if !spec.Network {
		args = append(args, "--network", "none")
	}
	for _, m := range spec.Mounts {
		v := m.Source + ":" + m.Target
		if m.ReadOnly {
			v += ":ro"
		}
		args = append(args, "-v", v)
	}
	for _, kv := range environment(spec.Env) {
		args = append(args, "-e", kv)
	}
	if spec.Dir != "" {
		args = append(args, "-w", spec.Dir)
	}
	args = append(args, "--tmpfs", "/tmp:exec,mode=1777", ImageTag(spec.Builder))
	args = append(args, spec.Cmd...)
	cmd := o.command(ctx, args...)
	// Killing the client leaves the container running: remove it first.
	cmd.Cancel = func() error {
		_ = o.command(context.Background(), "rm", "-f", name).Run()
		return cmd.Process.Kill()
	}
	cmd.WaitDelay = 10 * time.Second
	cmd.Stdout = writerOr(spec.Stdout)
	cmd.Stderr = writerOr(spec.Stderr)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %s: %w", o.name, strings.Join(spec.Cmd, " "), ctx.Err())
		}
		return fmt.Errorf("%s: %s: %w", o.name, strings.Join(spec.Cmd, " "), err)
	}
	return nil
}

func (o *OCI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, o.bin, args...)
	cmd.Env = append(os.Environ(), o.extraEnv...)
	return cmd
}

func (o *OCI) output(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := o.command(ctx, args...)
	cmd.Stdin = stdin
	return cmd.CombinedOutput()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLine(out []byte) string {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

func (o *OCI) imageID(ctx context.Context, tag string) (string, error) {
	out, err := o.output(ctx, nil, "image", "inspect", "--format", "{{.Id}}", tag)
	if err != nil {
		return "", fmt.Errorf("%s image inspect %s: %w: %s", o.name, tag, err, lastLine(out))
	}
	return strings.TrimSpace(string(out)), nil
}
