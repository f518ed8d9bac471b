package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const benchPackages = 1000

var (
	benchDebsOnce sync.Once
	benchDebsDir  string
)

// benchDebs makes (once per run) 1,000 small .debs with nfpm.
func benchDebs(b *testing.B) (string, []string) {
	b.Helper()
	benchDebsOnce.Do(func() {
		benchDebsDir = filepath.Join(os.TempDir(), fmt.Sprintf("criu-forge-bench-debs-%d", os.Getpid()))
		os.RemoveAll(benchDebsDir)
		os.MkdirAll(benchDebsDir, 0o755)
		for i := range benchPackages {
			makeDeb(b, benchDebsDir, testDeb{Name: fmt.Sprintf("pkg%04d", i), Version: "1.0~deb12u1", Depends: []string{"libc6 (>= 2.34)"}})
		}
	})
	b.Cleanup(func() {}) // the directory is shared by the benchmarks of this run
	matches, _ := filepath.Glob(filepath.Join(benchDebsDir, "*.deb"))
	if len(matches) != benchPackages {
		b.Fatalf("expected %d bench packages, found %d", benchPackages, len(matches))
	}
	return benchDebsDir, matches
}

// cpuTime is the CPU time (user+system) used so far by this process or, with
// children, by its waited-for child processes: on a shared machine CPU time
// compares better than wall time, so the benchmarks report both.
func cpuTime(children bool) time.Duration {
	who := syscall.RUSAGE_SELF
	if children {
		who = syscall.RUSAGE_CHILDREN
	}
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPackages1000 writes the Packages index of 1,000 small .debs:
// ours (read, hash, parse, render), and the tools users would otherwise run,
// measured in the same run. scripts/bench-repo prints the ratios.
func BenchmarkPackages1000(b *testing.B) {
	dir, debs := benchDebs(b)
	b.Run("criu-forge", func(b *testing.B) {
		c0 := cpuTime(false)
		defer func() { b.ReportMetric(float64(cpuTime(false)-c0)/float64(b.N)/1e6, "cpu-ms/op") }()
		for b.Loop() {
			var out bytes.Buffer
			for _, p := range debs {
				d, err := readDeb(p)
				if err != nil {
					b.Fatal(err)
				}
				writePackagesEntry(&out, d, d.poolPath())
			}
		}
	})
	for _, tool := range [][]string{{"apt-ftparchive", "packages", "."}, {"dpkg-scanpackages", "--multiversion", "."}} {
		b.Run(tool[0], func(b *testing.B) {
			if _, err := exec.LookPath(tool[0]); err != nil {
				b.Skipf("%s not installed", tool[0])
			}
			c0 := cpuTime(true)
			defer func() { b.ReportMetric(float64(cpuTime(true)-c0)/float64(b.N)/1e6, "cpu-ms/op") }()
			for b.Loop() {
				cmd := exec.Command(tool[0], tool[1:]...)
				cmd.Dir = dir
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublish1000 publishes 1,000 packages into an empty repository:
// pool copies, Packages(.gz, .xz), by-hash, signed Release.
func BenchmarkPublish1000(b *testing.B) {
	_, debs := benchDebs(b)
	signer := newSigner(b)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		b.StartTimer()
		if _, err := Publish(context.Background(), PublishOptions{Dir: dir, Packages: paths(debs...), Signer: signer}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddOneTo1000 adds one package to a signed repository of 1,000
// (goal: under 0.1 s).
func BenchmarkAddOneTo1000(b *testing.B) {
	_, debs := benchDebs(b)
	signer := newSigner(b)
	dir := b.TempDir()
	if _, err := Publish(context.Background(), PublishOptions{Dir: dir, Packages: paths(debs...), Signer: signer}); err != nil {
		b.Fatal(err)
	}
	extra := b.TempDir()
	i := 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		p := makeDeb(b, extra, testDeb{Name: "added", Version: fmt.Sprintf("1.%d~deb12u1", i)})
		i++
		b.StartTimer()
		c0 := cpuTime(false)
		if _, err := Publish(context.Background(), PublishOptions{Dir: dir, Packages: paths(p), Signer: signer}); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(false) - c0
	}
	b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
}
