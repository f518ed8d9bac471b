package packager

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestReadELFOfTheStagedTree(t *testing.T) {
	stage := stagedTree(t, debLibDir)
	tests := []struct {
		rel    string
		needed []string
		soname string
	}{
		{"usr/sbin/criu", []string{"libz.so.1", "libc.so.6"}, ""},
		{debLibDir + "/libcriu.so.2.0", []string{"libc.so.6"}, "libcriu.so.2"},
	}
	for _, tt := range tests {
		info, err := readELFFile(filepath.Join(stage, tt.rel))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(info.Needed, " ") != strings.Join(tt.needed, " ") || info.Soname != tt.soname || info.Class != elf.ELFCLASS64 {
			t.Errorf("%s: %+v, want needed %v soname %q", tt.rel, info, tt.needed, tt.soname)
		}
	}
}

func TestReadELFRejectsBrokenFiles(t *testing.T) {
	for _, data := range [][]byte{[]byte("\x7fELF"), []byte("\x7fELF\x02\x01\x01" + strings.Repeat("\x00", 60))} {
		if _, err := ReadELF(bytes.NewReader(data), "broken"); err == nil || !strings.Contains(err.Error(), "broken") {
			t.Errorf("ReadELF(%q) = %v, want an error naming the file", data, err)
		}
	}
}

// TestPackageRefusesHostileTrees checks untrusted build output is refused
// with an error that names the problem, and nothing lands in OutDir.
func TestPackageRefusesHostileTrees(t *testing.T) {
	testutil.RequireTool(t, "dpkg-query", "dpkg")
	tests := []struct {
		name  string
		setup func(stage string) error
		want  string
	}{
		{"fifo", func(stage string) error { return mkfifo(filepath.Join(stage, "usr/sbin/pipe")) }, "not a file, directory or symlink"},
		{"newline in a name", func(stage string) error {
			return os.WriteFile(filepath.Join(stage, "usr/sbin/a\nb"), []byte("x"), 0o644)
		}, "control characters"},
		{"bad DT_NEEDED", func(stage string) error {
			data, err := os.ReadFile(filepath.Join(stage, "usr/sbin/criu"))
			if err != nil {
				return err
			}
			// Same length, so the ELF stays well formed: only the name changes.
			data = bytes.Replace(data, []byte("libz.so.1"), []byte("../z.so.1"), 1)
			return os.WriteFile(filepath.Join(stage, "usr/sbin/criu"), data, 0o755)
		}, "not a plausible library name"},
		{"empty tree", func(stage string) error {
			if err := os.RemoveAll(stage); err != nil {
				return err
			}
			return os.MkdirAll(filepath.Join(stage, "usr"), 0o755)
		}, "has no files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := filepath.Join(t.TempDir(), "stage")
			testutil.Run(t, "", "cp", "-a", stagedTree(t, debLibDir), stage)
			if err := tt.setup(stage); err != nil {
				t.Fatal(err)
			}
			spec := baseSpec(t, filepath.Join(t.TempDir(), "out"))
			spec.StageDir = stage
			_, err := Package(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Package = %v, want error containing %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(spec.OutDir); len(entries) > 0 {
				t.Errorf("output left behind: %v", entries)
			}
		})
	}
}

func TestSpecValidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Spec)
		want   string
	}{
		{"replace needs criu", func(s *Spec) { s.Name = "criu-pidfd" }, "mode replace"},
		{"distinct needs another name", func(s *Spec) { s.Mode = ModeDistinct }, "mode distinct"},
		{"unknown split", func(s *Spec) { s.Split = "debian" }, "split"},
		{"no epoch", func(s *Spec) { s.SourceDateEpoch = 0 }, "SourceDateEpoch"},
		{"bad maintainer", func(s *Spec) { s.Maintainer = "me" }, "maintainer"},
		{"bad arch", func(s *Spec) { s.Target.Arch = "x86_64" }, "architecture"},
		{"bad format", func(s *Spec) { s.Formats = []string{"apk"} }, "format"},
		{"bad name", func(s *Spec) { s.Name, s.Mode = "Criu Pidfd", ModeDistinct }, "package name"},
		{"no stage", func(s *Spec) { s.StageDir = "/nonexistent" }, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := baseSpec(t, t.TempDir())
			tt.change(&spec)
			if _, err := Package(context.Background(), spec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Package = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// FuzzReadELF feeds arbitrary bytes to the DT_NEEDED reader: ELF files
// come out of a build and are untrusted. It must never panic, and what it
// returns must pass the soname check before use, or be refused there.
func FuzzReadELF(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ReadELF(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for _, so := range info.Needed {
			_ = checkSoname(so)
		}
	})
}

func TestReadScript(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content, interpreter, rewritten string
		isScript                        bool
	}{
		{"#!/usr/bin/env python3\nprint(1)\n", "/usr/bin/python3", "#!/usr/bin/python3\nprint(1)\n", true},
		{"#!/usr/bin/env python3 -u\nx\n", "/usr/bin/python3", "#!/usr/bin/python3 -u\nx\n", true},
		{"#!/bin/sh -e\nexit 0\n", "/bin/sh", "", true},
		{"#!/usr/bin/env -S python3\n", "/usr/bin/env", "", true},
		{"#!relative/sh\n", "", "", false},
		{"\x7fELF...", "", "", false},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, fmt.Sprint(i))
		os.WriteFile(p, []byte(tt.content), 0o755)
		sc, ok, err := readScript(p)
		if err != nil || ok != tt.isScript || sc.Interpreter != tt.interpreter || string(sc.Rewritten) != tt.rewritten {
			t.Errorf("readScript(%q) = %+v %v %v", tt.content, sc, ok, err)
		}
	}
	for _, tt := range []struct{ format, interp, want string }{
		{FormatDeb, "/usr/bin/python3", "python3"}, {FormatDeb, "/bin/sh", ""}, {FormatRPM, "/bin/sh", "/bin/sh"},
	} {
		if _, got := interpreterDependency(tt.format, tt.interp); got != tt.want {
			t.Errorf("interpreterDependency(%s, %s) = %q", tt.format, tt.interp, got)
		}
	}
}
