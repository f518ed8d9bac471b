package rpmmd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/repo/rpmmd/internal/rpmtest"
)

func readPkg(t *testing.T, path string) *Package {
	t.Helper()
	p, err := ReadPackage(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdd(t *testing.T) {
	root := t.TempDir()
	specs := sampleSpecs()
	paths := buildSamples(t, root, specs[1:3])
	rebuilt := specs[1]
	rebuilt.Files = map[string]string{"/usr/bin/tool": "other content"}
	other, err := rpmtest.Build(t.TempDir(), rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	a, b, sameNEVRA := readPkg(t, paths[0]), readPkg(t, paths[1]), readPkg(t, other)
	hrefA, hrefB := "Packages/"+filepath.Base(paths[0]), "Packages/"+filepath.Base(paths[1])

	tests := []struct {
		name    string
		pkg     *Package
		href    string
		wantErr string
	}{
		{"same package again", a, hrefA, ""},
		{"same package at a second href", a, "Packages/copy.rpm", ""},
		{"same NEVRA, other content", sameNEVRA, "Packages/rebuilt.rpm", "already has this version with other content"},
		{"href taken by another package", b, hrefA, "remove it first"},
		{"absolute href", b, "/etc/x.rpm", "clean relative path"},
		{"climbing href", b, "../x.rpm", "clean relative path"},
		{"unclean href", b, "Packages/../../x.rpm", "clean relative path"},
		{"href into repodata", b, "repodata/x.rpm", "outside repodata"},
		{"not an rpm name", b, "Packages/x.deb", "clean relative path"},
		{"control character", b, "Packages/x\n.rpm", "rename the file"},
		{"URL query", b, "Packages/x?.rpm", "rename the file"},
		{"space", b, "Packages/x y.rpm", "rename the file"},
		{"new package", b, hrefB, ""},
	}
	r, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(a, hrefA); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Add(tt.pkg, tt.href)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Add: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Add: error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if got := len(r.Packages()); got != 2 {
		t.Errorf("%d packages after the adds, want 2", got)
	}
	r.Remove(hrefA)
	r.Remove("Packages/never-added.rpm")
	if got := r.Packages(); len(got) != 1 || got[0].Href != hrefB {
		t.Errorf("after Remove: %v", got)
	}
	if err := r.Add(sameNEVRA, "Packages/rebuilt.rpm"); err != nil {
		t.Errorf("after removing the old build, its rebuild must be accepted: %v", err)
	}
}

// TestOpenIsIncremental shows that reopening a written repository reads no
// package whose file is unchanged: such a file is replaced by garbage of the
// same size and mtime, and Open and Write still succeed with the same
// metadata. A changed file is read again; a removed one is dropped.
func TestOpenIsIncremental(t *testing.T) {
	root := t.TempDir()
	paths := buildSamples(t, root, sampleSpecs())
	writeRepo(t, root)
	before, err := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(paths[0], make([]byte, fi.Size()), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(paths[0], fi.ModTime(), fi.ModTime())
	r := writeRepo(t, root)
	after, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
	if !bytes.Equal(before, after) {
		t.Fatalf("reopened repository wrote other metadata:\n%s\n---\n%s", before, after)
	}
	if len(r.Packages()) != 3 {
		t.Fatalf("%d packages", len(r.Packages()))
	}

	// A file with a new mtime is read again: here it is garbage, so Open
	// names it.
	later := fi.ModTime().Add(time.Hour)
	os.Chtimes(paths[0], later, later)
	if _, err := Open(root); err == nil || !strings.Contains(err.Error(), filepath.Base(paths[0])) {
		t.Fatalf("Open with a changed, broken package: %v", err)
	}

	if err := os.Remove(paths[0]); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(root, "repodata", ".repomd.xml.tmp-123456")
	if err := os.WriteFile(leftover, []byte("from a killed write"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = writeRepo(t, root)
	if got := len(r.Packages()); got != 2 {
		t.Fatalf("after removing a package file: %d packages, want 2", got)
	}
	// The first write's metadata files are gone, the new ones are named.
	entries, _ := os.ReadDir(filepath.Join(root, "repodata"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 5 { // 3 metadata files, repomd.xml, state
		t.Errorf("repodata holds %v, want 3 metadata files, repomd.xml and %s", names, StateFile)
	}
}

func TestOpenRebuildsLostState(t *testing.T) {
	root := t.TempDir()
	buildSamples(t, root, sampleSpecs())
	writeRepo(t, root)
	want, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
	for _, state := range []string{"", "{not json", `{"rpmmd-state":99}`, stateHeader + "\n{not json\n", stateHeader + "\nnull\n",
		stateHeader + "\n" + `{"href":"../../etc/passwd.rpm"}`, stateHeader + "\n" + `{"href":"Packages/../../../etc/x.rpm"}`} {
		statePath := filepath.Join(root, "repodata", StateFile)
		if state == "" {
			os.Remove(statePath)
		} else if err := os.WriteFile(statePath, []byte(state), 0o644); err != nil {
			t.Fatal(err)
		}
		writeRepo(t, root)
		got, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
		if !bytes.Equal(want, got) {
			t.Errorf("state %q: rebuilt metadata differs", state)
		}
	}
}

func TestWrite(t *testing.T) {
	root := t.TempDir()
	buildSamples(t, root, sampleSpecs())
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("signed", func(t *testing.T) {
		var signed []byte
		err := r.Write(root, func(repomd []byte) ([]byte, error) {
			signed = repomd
			return []byte("SIGNATURE"), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		repomd, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
		asc, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml.asc"))
		if !bytes.Equal(signed, repomd) || string(asc) != "SIGNATURE" {
			t.Errorf("signed %q, wrote repomd %q and signature %q", signed, repomd, asc)
		}
	})
	t.Run("unsigned removes a stale signature", func(t *testing.T) {
		if err := r.Write(root, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "repodata", "repomd.xml.asc")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("repomd.xml.asc left behind: %v", err)
		}
	})
	t.Run("signing error changes nothing", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
		r.Timestamp = 42
		defer func() { r.Timestamp = 0 }()
		err := r.Write(root, func([]byte) ([]byte, error) { return nil, errors.New("no key") })
		if err == nil || !strings.Contains(err.Error(), "no key") {
			t.Fatalf("Write: %v", err)
		}
		after, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
		if !bytes.Equal(before, after) {
			t.Error("a failed signature changed repomd.xml")
		}
	})
	t.Run("package missing from the root", func(t *testing.T) {
		gone := filepath.Join(root, filepath.FromSlash(r.Packages()[0].Href))
		data, err := os.ReadFile(gone)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(gone)
		defer func() {
			os.WriteFile(gone, data, 0o644)
			os.Chtimes(gone, fileTime, fileTime)
		}()
		out := t.TempDir()
		err = r.Write(out, nil)
		if err == nil || !strings.Contains(err.Error(), "put the package in place before writing metadata") {
			t.Fatalf("Write: %v", err)
		}
		if _, err := os.Stat(filepath.Join(out, "repodata")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("repodata written for an incomplete tree: %v", err)
		}
	})
	t.Run("empty repository", func(t *testing.T) {
		out := t.TempDir()
		empty, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := empty.Write(out, nil); err != nil {
			t.Fatal(err)
		}
		docs, _ := repoFiles(t, out)
		for _, kind := range []string{"primary", "filelists", "other"} {
			if docs[kind] == nil || docs[kind].Attrs["packages"] != "0" || len(docs[kind].Children) != 0 {
				t.Errorf("%s of an empty repository: %+v", kind, docs[kind])
			}
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		out := t.TempDir()
		copyTree(t, filepath.Join(root, "Packages"), filepath.Join(out, "Packages"))
		if err := r.Write(out, nil); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
		b, _ := os.ReadFile(filepath.Join(out, "repodata", "repomd.xml"))
		if !bytes.Equal(a, b) {
			t.Errorf("two writes of the same packages differ:\n%s\n---\n%s", a, b)
		}
	})
	t.Run("repodata through a symlink is refused", func(t *testing.T) {
		out := t.TempDir()
		copyTree(t, filepath.Join(root, "Packages"), filepath.Join(out, "Packages"))
		elsewhere := t.TempDir()
		if err := os.Symlink(elsewhere, filepath.Join(out, "repodata")); err != nil {
			t.Fatal(err)
		}
		if err := r.Write(out, nil); err == nil {
			t.Fatal("Write followed a repodata symlink out of the tree")
		}
		if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
			t.Errorf("wrote %d files outside the tree", len(entries))
		}
	})
}

func TestReadPackageErrors(t *testing.T) {
	good, err := os.ReadFile(rpmbuildFixture)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePackage(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	sigEnd, mainEnd := int(p.HeaderStart), int(p.HeaderEnd)
	corrupt := func(off int, b ...byte) []byte {
		d := bytes.Clone(good)
		copy(d[off:], b)
		return d
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "not an rpm"},
		{"a deb", []byte("!<arch>\ndebian-binary   1342943816  0     0     100644  4         `\n2.0\n" + strings.Repeat(" ", 100)), "not an rpm"},
		{"lead only", good[:leadSize], "signature header intro"},
		{"truncated signature", good[:sigEnd-3], "only"},
		{"truncated main header", good[:mainEnd-1], "only"},
		{"bad header magic", corrupt(leadSize, 0, 0, 0), "bad magic"},
		{"huge index count", corrupt(sigEnd+8, 0x7f, 0xff, 0xff, 0xff), "index entries"},
		{"huge data size", corrupt(sigEnd+12, 0x7f, 0xff, 0xff, 0xff), "too large"},
		{"offset outside store", corrupt(sigEnd+16+8, 0x7f, 0, 0, 0), "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePackage(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := ReadPackage(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadPackage(dir): %v", err)
	}
}

func FuzzReadPackage(f *testing.F) {
	for _, p := range []string{rpmbuildFixture} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range sampleSpecs() {
		p, err := rpmtest.Build(f.TempDir(), s)
		if err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePackage(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		// Whatever parses must render as well-formed XML.
		p.Href = "Packages/x.rpm"
		var buf bytes.Buffer
		bw := bufioWriter(&buf)
		writePrimary(xmlWriter{bw}, []*Package{p})
		writeFilelists(xmlWriter{bw}, []*Package{p})
		bw.Flush()
		checkWellFormed(t, buf.Bytes())
	})
}

// TestWriteNewGeneration follows a publisher that keeps packages in one
// place and metadata in generations: root/repodata is a symbolic link to
// the live generation's repodata. It opens the root, adds a package, writes
// the next generation elsewhere, switches the link, and opens the root
// again without reading the old packages.
func TestWriteNewGeneration(t *testing.T) {
	root, gens := t.TempDir(), t.TempDir()
	specs := sampleSpecs()
	old := buildSamples(t, root, specs[:2])
	gen1, gen2 := filepath.Join(gens, "1"), filepath.Join(gens, "2")
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(gen1, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(gen1, "repodata"), filepath.Join(root, "repodata")); err != nil {
		t.Fatal(err)
	}

	added := buildSamples(t, root, specs[2:])[0]
	if r, err = Open(root); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(readPkg(t, added), "Packages/"+filepath.Base(added)); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(gen2, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(root, nil); err == nil {
		t.Error("Write followed the repodata link into the live generation")
	}
	next := filepath.Join(root, ".repodata-next")
	if err := os.Symlink(filepath.Join(gen2, "repodata"), next); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, filepath.Join(root, "repodata")); err != nil {
		t.Fatal(err)
	}

	// Unchanged packages are not read again: garbage of the same size and
	// mtime goes unnoticed.
	fi, _ := os.Stat(old[0])
	if err := os.WriteFile(old[0], make([]byte, fi.Size()), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(old[0], fi.ModTime(), fi.ModTime())
	r2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r2.Packages()); got != 3 {
		t.Errorf("next generation has %d packages, want 3", got)
	}
	if _, err := os.Stat(filepath.Join(gen1, "repodata", "repomd.xml")); err != nil {
		t.Errorf("the old generation was touched: %v", err)
	}
}
