package fsutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFilesAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteFilesAtomic(dir, 0o640, NamedFile{"a", []byte("A")}, NamedFile{"index", []byte("names a")}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "A", "index": "names a"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, name)); fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v", name, fi.Mode())
		}
	}
	for _, bad := range []string{"", ".", "..", "sub/x"} {
		err := WriteFilesAtomic(dir, 0o644, NamedFile{"fine", nil}, NamedFile{bad, nil})
		if err == nil || !strings.Contains(err.Error(), "not a plain file name") {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want the 2 written (no temporary files, nothing from refused calls)", len(entries))
	}
}
