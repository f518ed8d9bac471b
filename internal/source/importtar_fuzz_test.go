package source

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// FuzzImportTar feeds arbitrary bytes to the tar importer: it must never
// panic, and whatever it accepts must be a readable tree whose every path
// is relative, free of "..", "." and ".git", as git itself requires.
// Seeds: testdata/fuzz/FuzzImportTar (small tars, malicious ones included).
func FuzzImportTar(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		store := memory.NewStorage()
		h, _, err := importTarTree(bytes.NewReader(data), store, io.Discard)
		if err != nil {
			return
		}
		tree, err := object.GetTree(store, h)
		if err != nil {
			t.Fatalf("accepted archive gives an unreadable tree: %v", err)
		}
		err = tree.Files().ForEach(func(file *object.File) error {
			parts := strings.Split(file.Name, "/")
			if file.Mode == filemode.Symlink && gitSpecialName(parts[len(parts)-1]) {
				t.Fatalf("accepted symbolic link %q", file.Name)
			}
			for _, part := range parts {
				if part == "" || part == "." || part == ".." || strings.EqualFold(part, ".git") {
					t.Fatalf("accepted path %q", file.Name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk accepted tree: %v", err)
		}
	})
}
