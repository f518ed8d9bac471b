package build

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Syncing an unchanged source leaves every file alone whatever its mode and
// the umask, so make sees nothing new; a changed file gets a new time.
func TestSyncTreeTouchesOnlyChangedFiles(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "tree")
	files := map[string]os.FileMode{"group-writable.mk": 0o664, "script.sh": 0o775, "plain.c": 0o644}
	for name, mode := range files {
		os.WriteFile(filepath.Join(src, name), []byte(name), mode)
		os.Chmod(filepath.Join(src, name), mode)
	}
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	for name := range files {
		os.Chtimes(filepath.Join(dst, name), past, past)
	}
	os.WriteFile(filepath.Join(src, "plain.c"), []byte("changed"), 0o644)
	list, _ := listTree(src)
	if err := syncTree(src, dst, list); err != nil {
		t.Fatal(err)
	}
	for name, mode := range files {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		touched := fi.ModTime().After(past.Add(time.Minute))
		if touched != (name == "plain.c") || fi.Mode().Perm() != mode {
			t.Errorf("%s: touched=%v mode=%v, want touched=%v mode=%v", name, touched, fi.Mode().Perm(), name == "plain.c", mode)
		}
	}
}
