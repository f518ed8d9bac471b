// Command benchyum measures rpmmd against createrepo_c in one run: indexing
// N small rpms from scratch, and adding one rpm to an indexed repository of
// N. It is run by scripts/bench-yum; the rpms are built once with nfpm and
// cached.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/criu-forge/criu-forge/internal/repo/rpmmd"
	"github.com/criu-forge/criu-forge/internal/repo/rpmmd/internal/rpmtest"
	"github.com/criu-forge/criu-forge/internal/signing"
)

func main() {
	n := flag.Int("n", 1000, "packages in the repository")
	runs := flag.Int("runs", 5, "measurements per case (the median is printed)")
	cache := flag.String("cache", filepath.Join(os.TempDir(), "criu-forge-bench-yum"), "where the generated rpms are kept between runs")
	flag.Parse()
	if err := run(*n, *runs, *cache); err != nil {
		fmt.Fprintln(os.Stderr, "bench-yum:", err)
		os.Exit(1)
	}
}

// sample is one measurement: wall time and CPU time (user+system).
type sample struct{ wall, cpu time.Duration }

func median(s []sample) sample {
	walls := make([]time.Duration, len(s))
	cpus := make([]time.Duration, len(s))
	for i, x := range s {
		walls[i], cpus[i] = x.wall, x.cpu
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	return sample{walls[len(s)/2], cpus[len(s)/2]}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle flushes dirty pages before a measurement, so that neither tool
// pays for the other's writes: createrepo_c does not fsync, and our fsyncs
// would otherwise flush what it left behind.
func settle() { syscall.Sync() }

// measureGo times f in this process.
func measureGo(f func() error) (sample, error) {
	settle()
	c0, t0 := selfCPU(), time.Now()
	err := f()
	return sample{time.Since(t0), selfCPU() - c0}, err
}

// measureCmd times a command, counting its own CPU time.
func measureCmd(dir, name string, args ...string) (sample, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	settle()
	t0 := time.Now()
	err := cmd.Run()
	s := sample{wall: time.Since(t0)}
	if cmd.ProcessState != nil {
		s.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return s, fmt.Errorf("%s %v: %w\n%s", name, args, err, out.String())
	}
	return s, nil
}

func run(n, runs int, cache string) error {
	if _, err := exec.LookPath("createrepo_c"); err != nil {
		return fmt.Errorf("createrepo_c not found: install the Debian package createrepo-c")
	}
	t0 := time.Now()
	paths, err := rpmtest.Corpus(filepath.Join(cache, "corpus"), 0, n, 4)
	if err != nil {
		return fmt.Errorf("build corpus: %w", err)
	}
	extras, err := rpmtest.Corpus(filepath.Join(cache, "extra"), n, 1, 1)
	if err != nil {
		return fmt.Errorf("build extra package: %w", err)
	}
	fmt.Printf("corpus: %d nfpm-built rpms in %s (ready in %.1fs)\n", n, cache, time.Since(t0).Seconds())

	work, err := os.MkdirTemp("", "bench-yum-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ours, theirs := filepath.Join(work, "ours"), filepath.Join(work, "createrepo_c")
	for _, root := range []string{ours, theirs} {
		if err := os.MkdirAll(filepath.Join(root, "Packages"), 0o755); err != nil {
			return err
		}
		for _, p := range paths {
			if err := os.Link(p, filepath.Join(root, "Packages", filepath.Base(p))); err != nil {
				return err
			}
		}
	}
	key, err := rpmtest.SigningKey(work)
	if err != nil {
		return err
	}
	signer, err := signing.Load(signing.KeyOptions{Path: key})
	if err != nil {
		return err
	}
	sign := func(data []byte) ([]byte, error) {
		var sig bytes.Buffer
		err := signer.DetachSign(&sig, data, true)
		return sig.Bytes(), err
	}

	// Index N from scratch.
	var oursIndex, crIndex []sample
	for range runs {
		for _, root := range []string{ours, theirs} {
			if err := os.RemoveAll(filepath.Join(root, "repodata")); err != nil {
				return err
			}
		}
		s, err := measureGo(func() error {
			r, err := rpmmd.Open(ours)
			if err != nil {
				return err
			}
			return r.Write(ours, sign)
		})
		if err != nil {
			return err
		}
		oursIndex = append(oursIndex, s)
		if s, err = measureCmd(theirs, "createrepo_c", "--no-database", "."); err != nil {
			return err
		}
		crIndex = append(crIndex, s)
	}

	// Add one to an indexed repository of N, then take it out again
	// (untimed) for the next run.
	extraName := filepath.Base(extras[0])
	href := "Packages/" + extraName
	var oursAdd, crAdd []sample
	for range runs {
		for _, root := range []string{ours, theirs} {
			if err := os.Link(extras[0], filepath.Join(root, "Packages", extraName)); err != nil {
				return err
			}
		}
		s, err := measureGo(func() error {
			r, err := rpmmd.Open(ours)
			if err != nil {
				return err
			}
			p, err := rpmmd.ReadPackage(filepath.Join(ours, filepath.FromSlash(href)))
			if err != nil {
				return err
			}
			if err := r.Add(p, href); err != nil {
				return err
			}
			return r.Write(ours, sign)
		})
		if err != nil {
			return err
		}
		oursAdd = append(oursAdd, s)
		if s, err = measureCmd(theirs, "createrepo_c", "--update", "--no-database", "."); err != nil {
			return err
		}
		crAdd = append(crAdd, s)

		for _, root := range []string{ours, theirs} {
			if err := os.Remove(filepath.Join(root, "Packages", extraName)); err != nil {
				return err
			}
		}
		r, err := rpmmd.Open(ours)
		if err != nil {
			return err
		}
		if err := r.Write(ours, sign); err != nil {
			return err
		}
		if _, err := measureCmd(theirs, "createrepo_c", "--update", "--no-database", "."); err != nil {
			return err
		}
	}

	var la [3]float64
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(data), &la[0], &la[1], &la[2])
	}
	fmt.Printf("median of %d runs; load average %.1f on %d CPUs (wall times on a busy machine vary, CPU times less)\n\n", runs, la[0], numCPU())
	fmt.Printf("%-34s %10s %10s %10s %10s %8s\n", "case", "ours wall", "ours CPU", "cr_c wall", "cr_c CPU", "speedup")
	row := func(name string, o, c []sample) sample {
		mo, mc := median(o), median(c)
		fmt.Printf("%-34s %9.3fs %9.3fs %9.3fs %9.3fs %7.1fx\n", name, mo.wall.Seconds(), mo.cpu.Seconds(), mc.wall.Seconds(), mc.cpu.Seconds(), mc.wall.Seconds()/mo.wall.Seconds())
		return mo
	}
	row(fmt.Sprintf("index %d rpms (signed)", n), oursIndex, crIndex)
	add := row(fmt.Sprintf("add 1 rpm to %d (signed; --update)", n), oursAdd, crAdd)
	fmt.Println()
	fmt.Println("createrepo_c runs with --no-database (the same three files we write) and does not sign; ours signs repomd.xml.")
	verdict := "met"
	if add.wall >= 100*time.Millisecond {
		verdict = "NOT met"
	}
	fmt.Printf("goal: add one under 0.1 s: %s (%.3fs wall)\n", verdict, add.wall.Seconds())
	return nil
}

func numCPU() int {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return bytes.Count(data, []byte("\nprocessor")) + 1
}
