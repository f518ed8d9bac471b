package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestGendocsWritesManPagesAndCompletions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if code, _, stderr := cli(t, "__gendocs", dir); code != 0 {
		t.Fatalf("__gendocs: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"criu-forge.1.gz", "criu-forge-build.1.gz", "criu-forge-version.1.gz"} {
		if _, err := os.Stat(filepath.Join(dir, "man", name)); err != nil {
			t.Errorf("man page: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "man", "criu-forge-__gendocs.1.gz")); err == nil {
		t.Errorf("the hidden verb got a man page")
	}

	// The pages render with the man a user runs, and say the release date.
	testutil.RequireTool(t, "man", "man-db")
	out, err := exec.Command("man", "-l", "-P", "cat", filepath.Join(dir, "man", "criu-forge-build.1.gz")).CombinedOutput()
	if err != nil {
		t.Fatalf("man -l: %v\n%s", err, out)
	}
	page := string(out)
	for _, want := range []string{"criu-forge-build", "--target", "Nov 2023", "EXAMPLE"} {
		if !strings.Contains(page, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, page)
		}
	}
	root, err := exec.Command("man", "-l", "-P", "cat", filepath.Join(dir, "man", "criu-forge.1.gz")).CombinedOutput()
	if err != nil || strings.Contains(string(root), os.Getenv("HOME")+"/") {
		t.Errorf("root page names this machine's home directory or fails (%v):\n%s", err, root)
	}

	// bash parses the completion script and it registers the function.
	bash := testutil.RequireTool(t, "bash", "bash")
	script := filepath.Join(dir, "completions", "criu-forge.bash")
	out, err = exec.Command(bash, "-c", "source "+script+" && complete -p criu-forge").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "criu-forge") {
		t.Errorf("bash completion: %v\n%s", err, out)
	}
	for _, name := range []string{"criu-forge.zsh", "criu-forge.fish"} {
		data, err := os.ReadFile(filepath.Join(dir, "completions", name))
		if err != nil || !strings.Contains(string(data), "criu-forge") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestGendocsReproducible: the same release date gives the same bytes, so
// two builds of one tag ship identical man pages and completions.
func TestGendocsReproducible(t *testing.T) {
	read := func() map[string]string {
		dir := t.TempDir()
		if code, _, stderr := cli(t, "__gendocs", "--source-date-epoch", "1700000000", dir); code != 0 {
			t.Fatalf("__gendocs: exit %d: %s", code, stderr)
		}
		files := map[string]string{}
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			rel, _ := filepath.Rel(dir, path)
			files[rel] = string(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	first, second := read(), read()
	if len(first) < 5 {
		t.Fatalf("only %d files written", len(first))
	}
	for name, data := range first {
		if second[name] != data {
			t.Errorf("%s differs between two runs", name)
		}
	}
}
