package packager

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// The realistic staged tree: a tiny C program and shared library built
// with gcc stand in for criu and libcriu, installed the way CRIU's
// `make install PREFIX=/usr LIBDIR=/usr/lib/x86_64-linux-gnu` lays them out.
var (
	stageMu   sync.Mutex
	stageDirs = map[string]string{} // lib dir -> staged tree
	stageRoot string
)

// Library directories of the two families' layouts.
const (
	debLibDir = "usr/lib/x86_64-linux-gnu"
	rpmLibDir = "usr/lib64"
)

const criuC = `#include <stdio.h>
#include <zlib.h>
int main(int argc, char **argv) { printf("Version: 4.2.1 (zlib %s)\n", zlibVersion()); return 0; }
`

const libcriuC = `#include <unistd.h>
int criu_check(void) { return getpid() > 0 ? 0 : -1; }
int criu_get_version(void) { return 40201; }
`

const criuH = `#ifndef __CRIU_LIB_H__
#define __CRIU_LIB_H__
int criu_check(void);
int criu_get_version(void);
#endif
`

// stagedTree returns the staged tree with libraries in libDir (debLibDir
// or rpmLibDir), built once per test run.
func stagedTree(t testing.TB, libDir string) string {
	t.Helper()
	testutil.RequireTool(t, "gcc", "gcc")
	if _, err := os.Stat("/usr/include/zlib.h"); err != nil {
		t.Skip("zlib.h missing: install the Debian package zlib1g-dev")
	}
	stageMu.Lock()
	defer stageMu.Unlock()
	if dir, ok := stageDirs[libDir]; ok {
		return dir
	}
	if stageRoot == "" {
		root, err := os.MkdirTemp("", "packager-stage-")
		if err != nil {
			t.Fatal(err)
		}
		stageRoot = root
	}
	work := filepath.Join(stageRoot, strings.ReplaceAll(libDir, "/", "_"))
	stage := filepath.Join(work, "stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	if msg := buildStage(work, stage, libDir); msg != "" {
		t.Fatalf("build the staged tree: %s", msg)
	}
	stageDirs[libDir] = stage
	return stage
}

func buildStage(work, stage, libDir string) string {
	files := map[string]string{"criu.c": criuC, "libcriu.c": libcriuC}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(src), 0o644); err != nil {
			return err.Error()
		}
	}
	lib := filepath.Join(stage, libDir)
	for _, d := range []string{lib + "/pkgconfig", stage + "/usr/sbin", stage + "/usr/include/criu", stage + "/usr/share/man/man8", stage + "/usr/share/man/man1",
		stage + "/usr/libexec/criu/scripts"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err.Error()
		}
	}
	// -s: packages ship stripped binaries (dh_strip, rpm's brp-strip);
	// -ffile-prefix-map: no temporary directory names in the binaries.
	gcc := [][]string{
		{"-O2", "-s", "-fPIC", "-shared", "-Wl,-soname,libcriu.so.2", "-ffile-prefix-map=" + work + "=.", "-o", lib + "/libcriu.so.2.0", filepath.Join(work, "libcriu.c"), "-lc"},
		{"-O2", "-s", "-ffile-prefix-map=" + work + "=.", "-o", stage + "/usr/sbin/criu", filepath.Join(work, "criu.c"), "-lz"},
	}
	for _, args := range gcc {
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			return "gcc " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(out)
		}
	}
	links := map[string]string{lib + "/libcriu.so.2": "libcriu.so.2.0", lib + "/libcriu.so": "libcriu.so.2"}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			return err.Error()
		}
	}
	var man bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&man, gzip.BestCompression)
	zw.Write([]byte(".TH CRIU 8 \"\" \"criu 4.2.1\"\n.SH NAME\ncriu \\- checkpoint/restore in userspace\n.SH SYNOPSIS\n\\fBcriu\\fR \\fIcommand\\fR\n"))
	zw.Close()
	var nsMan bytes.Buffer
	zw, _ = gzip.NewWriterLevel(&nsMan, gzip.BestCompression)
	zw.Write([]byte(".TH CRIU-NS 1 \"\" \"criu 4.2.1\"\n.SH NAME\ncriu-ns \\- run criu in new namespaces\n"))
	zw.Close()
	plain := map[string]struct {
		content string
		mode    os.FileMode
	}{
		"usr/include/criu/criu.h":                            {criuH, 0o644},
		libDir + "/pkgconfig/criu.pc":                        {"prefix=/usr\nlibdir=/" + libDir + "\nincludedir=/usr/include/criu\n\nName: CRIU\nDescription: RPC library for userspace checkpoint and restore\nVersion: 4.2.1\nLibs: -L${libdir} -lcriu\nCflags: -I${includedir}\n", 0o644},
		"usr/share/man/man8/criu.8.gz":                       {man.String(), 0o644},
		"usr/libexec/criu/scripts/systemd-autofs-restart.sh": {"#!/bin/sh\n# restart autofs mounts after restore\nexit 0\n", 0o755},
		"usr/sbin/criu-ns":                                   {"#!/usr/bin/env python3\nprint('run criu in new namespaces')\n", 0o755},
		"usr/share/man/man1/criu-ns.1.gz":                    {nsMan.String(), 0o644},
	}
	for rel, f := range plain {
		p := filepath.Join(stage, rel)
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			return err.Error()
		}
	}
	return ""
}

// hostRunner runs the command on this machine: the resolvers' tests use
// the host's own dpkg and rpm databases.
func hostRunner(ctx context.Context, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, args[0], args[1:]...).Output()
}

// baseSpec is a complete Spec for the staged tree.
func baseSpec(t testing.TB, out string) Spec {
	return Spec{
		StageDir: stagedTree(t, debLibDir), Target: bookworm, Name: "criu", Mode: ModeReplace, Split: SplitSingle,
		SeriesRevision: 3, BuildRevision: 1,
		Maintainer: "Platform Team <platform@example.com>", Homepage: "https://criu.org",
		License: "GPL-2.0-only AND LGPL-2.1-only", Summary: "Checkpoint and restore in userspace, with pidfd support",
		Description: "CRIU freezes a running container or process tree and checkpoints it to disk.\nThis build adds pidfd support.",
		Vendor:      "criu-forge",
		Resolve:     DebianResolver{Run: hostRunner},
		Upstream: Upstream{URL: "https://github.com/checkpoint-restore/criu", Ref: "v3.17.1",
			Commit: "d46f40f4fbd4ae2dbd98d9f6e5e31b0d2a6c2f5e", Version: "3.17.1", SourceKind: "git"},
		Patches: []Patch{
			{Name: "pidfd-support", Source: "PR #2449", URL: "https://github.com/checkpoint-restore/criu/pull/2449",
				Commits: []string{"3322d1e94c8a91d795a1f341de07a1c130dce254", "1ce408ffa4a723e7110cbc0d68c68bfc5871b287"},
				SHA256:  "6f2c1b0e8d9a4f3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b"},
			{Name: "vdso-vvar-vclock", Source: "PR #2539", URL: "https://github.com/checkpoint-restore/criu/pull/2539",
				Commits: []string{"8ee2eba47"}, SHA256: "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"},
		},
		BuilderID: "debian-12-amd64@sha256:1111", BuildKey: "bk-2222", SourceDateEpoch: 1656028800,
		OutDir: out,
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if stageRoot != "" {
		os.RemoveAll(stageRoot)
	}
	os.Exit(code)
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
