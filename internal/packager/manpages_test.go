package packager

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCompressManPages(t *testing.T) {
	stage := t.TempDir()
	page := []byte(".TH CRIU 8\n.SH NAME\ncriu \\- checkpoint/restore in userspace\n")
	if err := os.MkdirAll(filepath.Join(stage, "usr/share/man/man8"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stage, "usr/share/man/man8/criu.8"), page, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("criu.8", filepath.Join(stage, "usr/share/man/man8/criu-alias.8")); err != nil {
		t.Fatal(err)
	}
	staged, err := walkStage(stage)
	if err != nil {
		t.Fatal(err)
	}
	run := func() []stagedFile {
		out, err := compressManPages(stage, t.TempDir(), staged)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first, second := run(), run()
	byRel := map[string]stagedFile{}
	for _, f := range first {
		byRel[f.Rel] = f
	}
	gz, ok := byRel["usr/share/man/man8/criu.8.gz"]
	if !ok || gz.Src == "" {
		t.Fatalf("criu.8 not compressed: %+v", first)
	}
	if link := byRel["usr/share/man/man8/criu-alias.8.gz"]; link.Mode&fs.ModeSymlink == 0 || link.Target != "criu.8.gz" {
		t.Errorf("link to a man page must follow it to .gz: %+v", link)
	}
	if _, ok := byRel["usr/share/man/man8/criu.8"]; ok {
		t.Error("the uncompressed page is still listed")
	}
	data, err := os.ReadFile(gz.Src)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, page) || zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip holds %q (name %q, time %v), want the page with no name or time", got, zr.Name, zr.ModTime)
	}
	var again []byte
	for _, f := range second {
		if f.Rel == gz.Rel {
			again, _ = os.ReadFile(f.Src)
		}
	}
	if !bytes.Equal(data, again) {
		t.Error("compressing twice gave different bytes: packages would not be reproducible")
	}
	if _, err := os.Stat(filepath.Join(stage, "usr/share/man/man8/criu.8")); err != nil {
		t.Errorf("the staged tree (a cached build output) was changed: %v", err)
	}
}
