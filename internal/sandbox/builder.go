package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// builderFormat is part of every builder key: bump it when the way a
// builder is made changes, so old builders are not mistaken for new ones.
const builderFormat = 1

// Target is the distribution a build is for.
type Target struct {
	Name    string `json:"name"`             // output name, e.g. debian-12; default Distro-Release
	Distro  string `json:"distro"`           // debian, ubuntu, rocky, fedora, ...
	Release string `json:"release"`          // bookworm, trixie, noble, 9, 41
	Arch    string `json:"arch"`             // Debian architecture name; default the machine's
	Mirror  string `json:"mirror,omitempty"` // archive URI; "" = the machine's apt configuration
	Image   string `json:"image,omitempty"`  // container image (docker/podman only)
	Family  string `json:"family"`           // deb or rpm; default from Distro
}

func (t Target) name() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Distro + "-" + t.Release
}

// Normalize fills the defaults: Name, Arch (the machine's) and Family.
func (t Target) Normalize() Target {
	t.Name = t.name()
	if t.Arch == "" {
		t.Arch = debianArch(runtime.GOARCH)
	}
	if t.Family == "" {
		switch t.Distro {
		case "debian", "ubuntu":
			t.Family = "deb"
		case "rocky", "fedora", "almalinux", "centos", "rhel", "opensuse":
			t.Family = "rpm"
		}
	}
	return t
}

func debianArch(goarch string) string {
	switch goarch {
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	}
	return goarch // amd64, arm64, s390x, riscv64 share their names
}

func rpmArch(debArch string) string {
	return map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le", "armhf": "armv7hl"}[debArch]
}

// BuilderSpec says which builder a target needs.
type BuilderSpec struct {
	Target   Target
	Packages []string // build dependencies; ccache is always added
	CacheDir string   // builders live under CacheDir/builders/<key>/
	Log      io.Writer
}

// Builder is a prepared build environment. Key names it in the cache and
// is computed from the inputs; ID hashes the key together with the exact
// package versions installed, so it changes when a builder is remade from
// a newer archive.
type Builder struct {
	Key      string    `json:"key"`
	ID       string    `json:"id"`
	Target   Target    `json:"target"`
	Packages []string  `json:"packages"`
	Sources  []string  `json:"sources,omitempty"`
	Image    string    `json:"image,omitempty"` // registry base image, for image builders
	Created  time.Time `json:"created"`
	Size     int64     `json:"size"`

	Root     string    `json:"-"` // root file system directory ("" for image builders)
	Dir      string    `json:"-"` // CacheDir/builders/<key>
	LastUsed time.Time `json:"-"`
}

const (
	builderRecord = "builder.json"
	lastUsedStamp = "last-used"
	manifestFile  = "packages.txt"
)

// Prepare returns the builder for spec, ready for runner r: it reuses the
// cached one or makes it (mmdebstrap for Debian-family targets, dnf
// --installroot from the target's mirror for RPM-family targets, or the
// target's image with the packages installed when r is docker or podman).
// Creation happens aside and is renamed into place under a lock, so two
// processes make it once and a killed creation leaves nothing that looks
// complete.
func Prepare(ctx context.Context, r Runner, spec BuilderSpec) (*Builder, error) {
	t := spec.Target.Normalize()
	if spec.CacheDir == "" {
		return nil, errors.New("prepare builder: no cache directory given")
	}
	packages, err := PackageSet(spec.Packages)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	_, isOCI := r.(*OCI)
	want := &Builder{Target: t, Packages: packages}
	switch {
	case t.Image != "" && isOCI:
		want.Image = t.Image
	case t.Family == "deb":
		var machine []IndexTarget
		if t.Mirror == "" {
			if machine, err = cachedIndexTargets(ctx, spec.CacheDir); err != nil {
				return nil, fmt.Errorf("target %s: %w", t.Name, err)
			}
		}
		if want.Sources, err = AptSources(t, machine); err != nil {
			return nil, err
		}
	case t.Family == "rpm":
		if t.Mirror == "" {
			return nil, fmt.Errorf("target %s: an RPM-family builder needs either the target's container image with --runner docker or podman, or an RPM mirror (the target's mirror) for dnf --installroot; neither is given", t.Name)
		}
		want.Sources = []string{t.Mirror}
	default:
		return nil, fmt.Errorf("target %s: unknown distribution %q (family %q): set the target's family to deb or rpm", t.Name, t.Distro, t.Family)
	}
	want.Key = builderKey(want)
	b, err := ensureBuilder(ctx, spec.CacheDir, want, spec.Log, r)
	if err != nil {
		return nil, err
	}
	if err := r.Import(ctx, b, spec.Log); err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(b.Dir, lastUsedStamp), now, now)
	return b, nil
}

// packageSet sorts and deduplicates the packages and adds ccache.
// PackageSet is the package list of a builder made for pkgs: trimmed,
// checked to be package names, with ccache, sorted and unique. Builders
// are keyed by it.
func PackageSet(pkgs []string) ([]string, error) {
	set := map[string]bool{"ccache": true}
	for _, p := range pkgs {
		p = strings.TrimSpace(p)
		if !validWord(p) || strings.HasPrefix(p, "-") {
			return nil, fmt.Errorf("build dependency %q is not a package name", p)
		}
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// builderKey hashes everything a builder is made from.
func builderKey(b *Builder) string {
	in, _ := json.Marshal(struct {
		Format   int
		Family   string
		Distro   string
		Release  string
		Arch     string
		Image    string
		Sources  []string
		Packages []string
	}{builderFormat, b.Target.Family, b.Target.Distro, b.Target.Release, b.Target.Arch, b.Image, b.Sources, b.Packages})
	sum := sha256.Sum256(in)
	return hex.EncodeToString(sum[:12])
}

func builderDir(cacheDir string) string { return filepath.Join(cacheDir, "builders") }

func lockPath(cacheDir, key string) string {
	return filepath.Join(builderDir(cacheDir), ".locks", key+".lock")
}

func ensureBuilder(ctx context.Context, cacheDir string, want *Builder, log io.Writer, r Runner) (*Builder, error) {
	dir := filepath.Join(builderDir(cacheDir), want.Key)
	if b, err := loadBuilder(dir); err == nil {
		return b, nil
	}
	lock, err := fsutil.Acquire(ctx, lockPath(cacheDir, want.Key))
	if err != nil {
		return nil, fmt.Errorf("target %s: builder %s: %w", want.Target.Name, want.Key, err)
	}
	defer lock.Release()
	if b, err := loadBuilder(dir); err == nil {
		return b, nil // another process made it while we waited
	}
	// Leftovers of a killed creation of this key: we hold its lock, so no
	// one is still writing them.
	old, _ := filepath.Glob(filepath.Join(builderDir(cacheDir), ".tmp-"+want.Key+"-*"))
	for _, o := range old {
		if err := removeTree(o); err != nil {
			return nil, fmt.Errorf("remove the remains of an interrupted builder creation: %w", err)
		}
	}
	_ = os.RemoveAll(dir) // incomplete: it has no readable record
	tmp, err := os.MkdirTemp(builderDir(cacheDir), ".tmp-"+want.Key+"-")
	if err != nil {
		return nil, fmt.Errorf("target %s: create builder: %w", want.Target.Name, err)
	}
	_ = os.Chmod(tmp, 0o755) // apt's download sandbox user must reach the new root
	keep := false
	defer func() {
		if !keep {
			_ = removeTree(tmp)
		}
	}()
	b := *want
	start := time.Now()
	fmt.Fprintf(writerOr(log), "builder %s: creating for %s (%s)\n", b.Key, b.Target.Name, strings.Join(b.Packages, " "))
	manifest := []byte(b.Image + "\n")
	if b.Image == "" {
		root := filepath.Join(tmp, "rootfs")
		if b.Target.Family == "deb" {
			err = mmdebstrap(ctx, &b, root, log)
		} else {
			err = dnfInstallroot(ctx, &b, root, log)
		}
		if err != nil {
			return nil, fmt.Errorf("target %s: create builder: %w", b.Target.Name, err)
		}
		if manifest, err = packageManifest(ctx, b.Target.Family, root); err != nil {
			return nil, fmt.Errorf("target %s: builder %s: %w", b.Target.Name, b.Key, err)
		}
		b.Size = treeSize(root)
	} else {
		// The image builder's content is fixed by the image digest the
		// runner resolves; the record keeps the requested reference.
		if err := r.Import(ctx, &Builder{Key: b.Key, Target: b.Target, Packages: b.Packages, Image: b.Image}, log); err != nil {
			return nil, fmt.Errorf("target %s: %w", b.Target.Name, err)
		}
		if o, ok := r.(*OCI); ok {
			id, err := o.imageID(ctx, ImageTag(&b))
			if err != nil {
				return nil, err
			}
			manifest = []byte(id + "\n")
		}
	}
	sum := sha256.Sum256(append([]byte(b.Key+"\n"), manifest...))
	b.ID = hex.EncodeToString(sum[:12])
	b.Created = time.Now().UTC().Truncate(time.Second)
	if err := os.WriteFile(filepath.Join(tmp, manifestFile), manifest, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, lastUsedStamp), nil, 0o644); err != nil {
		return nil, err
	}
	rec, _ := json.MarshalIndent(&b, "", "  ")
	// The record is written last: a directory without it is not a builder.
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, builderRecord), append(rec, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("target %s: install builder %s: %w", b.Target.Name, dir, err)
	}
	keep = true
	if err := fsutil.SyncDir(builderDir(cacheDir)); err != nil {
		return nil, err
	}
	fmt.Fprintf(writerOr(log), "builder %s: ready in %s\n", b.Key, time.Since(start).Round(100*time.Millisecond))
	return loadBuilder(dir)
}

// loadBuilder reads a complete builder; anything else is an error.
func loadBuilder(dir string) (*Builder, error) {
	data, err := os.ReadFile(filepath.Join(dir, builderRecord))
	if err != nil {
		return nil, err
	}
	var b Builder
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("builder record %s: %w", dir, err)
	}
	if b.Key != filepath.Base(dir) || b.ID == "" {
		return nil, fmt.Errorf("builder record %s does not match its directory", dir)
	}
	b.Dir = dir
	if b.Image == "" {
		b.Root = filepath.Join(dir, "rootfs")
	}
	b.LastUsed = b.Created
	if fi, err := os.Stat(filepath.Join(dir, lastUsedStamp)); err == nil {
		b.LastUsed = fi.ModTime()
	}
	return &b, nil
}

// mmdebstrap makes a minbase root with the packages in one cached step.
// The sources are passed explicitly: mmdebstrap does not read the
// machine's apt configuration by itself.
func mmdebstrap(ctx context.Context, b *Builder, root string, log io.Writer) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return errors.New("mmdebstrap not found on PATH: install the Debian package mmdebstrap")
	}
	args := []string{"--mode=root", "--variant=minbase", "--arch=" + b.Target.Arch,
		"--include=" + strings.Join(b.Packages, ","),
		"--aptopt=Acquire::Retries \"3\""}
	if b.Target.Distro == "ubuntu" {
		const keyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
		if _, err := os.Stat(keyring); err != nil {
			return fmt.Errorf("an Ubuntu builder needs Ubuntu's archive keyring: install the Debian package ubuntu-keyring (%w)", err)
		}
		args = append(args, "--keyring="+keyring)
	}
	args = append(args, b.Target.Release, root)
	args = append(args, b.Sources...)
	return runLogged(ctx, log, "mmdebstrap", args...)
}

// dnfInstallroot makes an RPM-family root from the target's mirror.
func dnfInstallroot(ctx context.Context, b *Builder, root string, log io.Writer) error {
	if _, err := exec.LookPath("dnf"); err != nil {
		return errors.New("dnf not found on PATH: install the Debian package dnf")
	}
	args := []string{"-y", "--installroot=" + root, "--releasever=" + b.Target.Release,
		"--setopt=reposdir=/dev/null", "--setopt=install_weak_deps=False",
		"--repofrompath=criu-forge-target," + b.Target.Mirror, "--repo=criu-forge-target"}
	if a := rpmArch(b.Target.Arch); a != "" {
		args = append(args, "--forcearch="+a)
	}
	args = append(args, "install")
	args = append(args, b.Packages...)
	if err := runLogged(ctx, log, "dnf", args...); err != nil {
		return fmt.Errorf("%w (does the mirror %s answer and carry every build dependency?)", err, b.Target.Mirror)
	}
	return nil
}

// runLogged runs a tool, sending its output to log and keeping its tail
// for the error. Cancelling ctx sends SIGTERM to its process group first,
// so mmdebstrap can unmount what it mounted in the new root, and SIGKILL
// 20 s later.
func runLogged(ctx context.Context, log io.Writer, name string, args ...string) error {
	tail := &tailBuffer{max: 4096}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = io.MultiWriter(writerOr(log), tail)
	cmd.Stderr = cmd.Stdout
	// mmdebstrap runs apt and dpkg in the new root: stop the whole process
	// group, or they go on writing into a directory being removed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pgid := -cmd.Process.Pid
		time.AfterFunc(20*time.Second, func() { _ = syscall.Kill(pgid, syscall.SIGKILL) })
		return syscall.Kill(pgid, syscall.SIGTERM)
	}
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of a finished or killed run
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s: %w:\n%s", name, err, tail.String())
	}
	return nil
}

// packageManifest lists the installed packages with versions, sorted.
func packageManifest(ctx context.Context, family, root string) ([]byte, error) {
	var cmd *exec.Cmd
	if family == "deb" {
		cmd = exec.CommandContext(ctx, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Package} ${Version} ${Architecture}\n")
	} else {
		cmd = exec.CommandContext(ctx, "rpm", "--root", root, "-qa", "--qf", "%{NEVRA}\n")
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list the packages installed in %s: %w", root, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

func treeSize(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Builders lists the complete builders in cacheDir, most recently used first.
func Builders(cacheDir string) ([]*Builder, error) {
	entries, err := os.ReadDir(builderDir(cacheDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list builders: %w", err)
	}
	var out []*Builder
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if b, err := loadBuilder(filepath.Join(builderDir(cacheDir), e.Name())); err == nil {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// Prune removes the builders not used since before the given time, and the
// remains of interrupted creations. A builder whose lock is held (being
// made right now) is left alone. Local docker/podman images tagged
// criu-forge-builder:<key> are not removed.
func Prune(cacheDir string, unusedSince time.Time) (removed []*Builder, err error) {
	all, err := Builders(cacheDir)
	if err != nil {
		return nil, err
	}
	for _, b := range all {
		if !b.LastUsed.Before(unusedSince) {
			continue
		}
		lock, ok, err := fsutil.TryAcquire(lockPath(cacheDir, b.Key))
		if err != nil || !ok {
			continue
		}
		// Rename first, so a half-removed builder never looks complete.
		gone := filepath.Join(builderDir(cacheDir), ".tmp-"+b.Key+"-prune")
		err = os.Rename(b.Dir, gone)
		if err == nil {
			err = removeTree(gone)
		}
		lock.Release()
		if err != nil {
			return removed, fmt.Errorf("prune builder %s: %w", b.Key, err)
		}
		removed = append(removed, b)
	}
	leftovers, _ := filepath.Glob(filepath.Join(builderDir(cacheDir), ".tmp-*"))
	for _, l := range leftovers {
		key, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(l), ".tmp-"), "-")
		lock, ok, err := fsutil.TryAcquire(lockPath(cacheDir, key))
		if err != nil || !ok {
			continue
		}
		err = removeTree(l)
		lock.Release()
		if err != nil {
			return removed, fmt.Errorf("prune %s: %w", l, err)
		}
	}
	return removed, nil
}

// removeTree removes a builder directory after detaching anything still
// mounted below it (a killed mmdebstrap can leave /proc or /dev mounted in
// its new root): RemoveAll must never walk into the host's /dev.
func removeTree(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	mounts, err := mountsBelow(abs)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	if left, _ := mountsBelow(abs); len(left) > 0 {
		return fmt.Errorf("refusing to remove %s: %s is still mounted", abs, left[0])
	}
	return os.RemoveAll(abs)
}

// mountsBelow lists mount points at or below dir, deepest first.
func mountsBelow(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
