package source

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Limits on an imported archive: it is untrusted, and its objects are held
// in memory until they are written as one pack.
const (
	maxImportBytes   = 1 << 30
	maxImportEntries = 1_000_000
)

// ErrUnsafeArchive marks an archive refused for what it names.
var ErrUnsafeArchive = errors.New("unsafe archive")

// node is a file, symbolic link or directory of the imported tree.
type node struct {
	children map[string]*node // non-nil for a directory
	mode     filemode.FileMode
	blob     plumbing.Hash
}

func (n *node) isDir() bool { return n.children != nil }

// treeImporter turns a tar stream into git blobs and trees without writing
// anything to disk: nothing an archive names can land outside the tree,
// because there is no extraction.
type treeImporter struct {
	store   storer.EncodedObjectStorer
	root    *node
	newest  time.Time
	bytes   int64
	entries int
	warn    io.Writer
}

// importTarTree reads an uncompressed tar stream, stores its blobs and trees
// in store and returns the root tree (the single top folder stripped) and
// the newest modification time in the archive.
func importTarTree(r io.Reader, store storer.EncodedObjectStorer, warn io.Writer) (plumbing.Hash, time.Time, error) {
	if warn == nil {
		warn = io.Discard
	}
	ti := &treeImporter{store: store, root: &node{children: map[string]*node{}}, warn: warn}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return plumbing.ZeroHash, time.Time{}, fmt.Errorf("read tar: %w", err)
		}
		if err := ti.add(hdr, tr); err != nil {
			return plumbing.ZeroHash, time.Time{}, err
		}
	}
	if ti.entries == 0 {
		return plumbing.ZeroHash, time.Time{}, errors.New("archive holds no files")
	}
	root := ti.root
	if len(root.children) == 1 {
		for _, only := range root.children {
			if only.isDir() {
				root = only
			}
		}
	}
	tree, err := ti.writeTree(root)
	if err != nil {
		return plumbing.ZeroHash, time.Time{}, err
	}
	if tree.IsZero() {
		return plumbing.ZeroHash, time.Time{}, errors.New("archive holds no files, only folders")
	}
	return tree, ti.newest, nil
}

// add handles one archive entry.
func (ti *treeImporter) add(hdr *tar.Header, body io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	ti.entries++
	if ti.entries > maxImportEntries {
		return fmt.Errorf("%w: more than %d entries", ErrUnsafeArchive, maxImportEntries)
	}
	parts, err := archivePath(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		fmt.Fprintf(ti.warn, "source: warning: skipping %s: device nodes and fifos have no place in a source tree\n", hdr.Name)
		return nil
	}
	if hdr.ModTime.After(ti.newest) {
		ti.newest = hdr.ModTime
	}
	if len(parts) == 0 {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the archive's own "./"
		}
		return fmt.Errorf("%w: entry %q has no name", ErrUnsafeArchive, hdr.Name)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		_, err := ti.dir(parts, hdr.Name)
		return err
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		if hdr.Size < 0 || ti.bytes+hdr.Size > maxImportBytes {
			return fmt.Errorf("%w: more than %d bytes of files", ErrUnsafeArchive, int64(maxImportBytes))
		}
		ti.bytes += hdr.Size
		h, err := ti.blob(io.LimitReader(body, hdr.Size), hdr.Size)
		if err != nil {
			return fmt.Errorf("read %s: %w", hdr.Name, err)
		}
		mode := filemode.Regular
		if hdr.Mode&0o100 != 0 { // git keeps only the owner's execute bit
			mode = filemode.Executable
		}
		return ti.put(parts, hdr.Name, &node{mode: mode, blob: h})
	case tar.TypeSymlink:
		// A link stays a link whatever it points at: nothing follows it here.
		if gitSpecialName(parts[len(parts)-1]) {
			return fmt.Errorf("%w: %s is a symbolic link, which git refuses for its own control files", ErrUnsafeArchive, hdr.Name)
		}
		h, err := ti.blob(strings.NewReader(hdr.Linkname), int64(len(hdr.Linkname)))
		if err != nil {
			return err
		}
		return ti.put(parts, hdr.Name, &node{mode: filemode.Symlink, blob: h})
	case tar.TypeLink:
		target, err := archivePath(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link %s: %w", hdr.Name, err)
		}
		t := ti.lookup(target)
		if t == nil || t.isDir() {
			return fmt.Errorf("%w: hard link %s points at %s, which is not an earlier file of the archive", ErrUnsafeArchive, hdr.Name, hdr.Linkname)
		}
		return ti.put(parts, hdr.Name, &node{mode: t.mode, blob: t.blob})
	default:
		return fmt.Errorf("%w: entry %s has unsupported type %q", ErrUnsafeArchive, hdr.Name, hdr.Typeflag)
	}
}

// archivePath splits an archive member name into clean components and
// refuses absolute names, ".." anywhere, and ".git" (git would refuse to
// check such a tree out, and it could smuggle in hooks or config).
func archivePath(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%w: %q is an absolute path", ErrUnsafeArchive, name)
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch {
		case p == "" || p == ".":
			continue
		case p == "..":
			return nil, fmt.Errorf("%w: %q climbs out of the tree with ..", ErrUnsafeArchive, name)
		case strings.EqualFold(p, ".git"):
			return nil, fmt.Errorf("%w: %q holds a .git entry", ErrUnsafeArchive, name)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// gitSpecialName reports the files git reads from a tree and refuses as
// symbolic links (git fsck: gitmodulesSymlink and friends).
func gitSpecialName(name string) bool {
	switch strings.ToLower(name) {
	case ".gitmodules", ".gitattributes", ".gitignore", ".mailmap":
		return true
	}
	return false
}

// dir returns the directory at parts, creating missing ones; it refuses to
// go through a file or symbolic link (a link then a file "through" it).
func (ti *treeImporter) dir(parts []string, name string) (*node, error) {
	cur := ti.root
	for i, p := range parts {
		next, ok := cur.children[p]
		if !ok {
			next = &node{children: map[string]*node{}}
			cur.children[p] = next
		}
		if !next.isDir() {
			return nil, fmt.Errorf("%w: %s goes through %s, which is a %s, not a folder", ErrUnsafeArchive, name, strings.Join(parts[:i+1], "/"), kindName(next))
		}
		cur = next
	}
	return cur, nil
}

// put places a file or link; a later entry for the same file wins, as when
// tar extracts, but a folder and a file may not share a name.
func (ti *treeImporter) put(parts []string, name string, n *node) error {
	parent, err := ti.dir(parts[:len(parts)-1], name)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	if old, ok := parent.children[last]; ok && old.isDir() {
		return fmt.Errorf("%w: %s is both a folder and a %s", ErrUnsafeArchive, name, kindName(n))
	}
	parent.children[last] = n
	return nil
}

func (ti *treeImporter) lookup(parts []string) *node {
	cur := ti.root
	for _, p := range parts {
		if !cur.isDir() {
			return nil
		}
		next, ok := cur.children[p]
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func kindName(n *node) string {
	switch {
	case n.isDir():
		return "folder"
	case n.mode == filemode.Symlink:
		return "symbolic link"
	default:
		return "file"
	}
}

func (ti *treeImporter) blob(r io.Reader, size int64) (plumbing.Hash, error) {
	obj := ti.store.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(size)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if n != size {
		return plumbing.ZeroHash, fmt.Errorf("archive truncated: %d of %d bytes", n, size)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return ti.store.SetEncodedObject(obj)
}

// writeTree stores the tree of a folder bottom-up and returns its id, or the
// zero id for a folder with no files: empty folders vanish, as in git.
func (ti *treeImporter) writeTree(dir *node) (plumbing.Hash, error) {
	tree := &object.Tree{}
	for name, child := range dir.children {
		if !child.isDir() {
			tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: child.mode, Hash: child.blob})
			continue
		}
		h, err := ti.writeTree(child)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h.IsZero() {
			continue
		}
		tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	if len(tree.Entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	// git orders entries by name, comparing a folder as if it ended in "/".
	sortKey := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(tree.Entries, func(i, j int) bool { return sortKey(tree.Entries[i]) < sortKey(tree.Entries[j]) })
	obj := ti.store.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return ti.store.SetEncodedObject(obj)
}
