package patch

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// objects reads from a repository and keeps new objects in memory until
// they are written out together.
type objects struct {
	repo    storer.EncodedObjectStorer
	pending map[plumbing.Hash]plumbing.EncodedObject
	order   []plumbing.Hash // pending objects, in creation order
	kept    map[plumbing.Hash]plumbing.EncodedObject
}

func newObjects(repo storer.EncodedObjectStorer) *objects {
	return &objects{repo: repo, pending: map[plumbing.Hash]plumbing.EncodedObject{}, kept: map[plumbing.Hash]plumbing.EncodedObject{}}
}

func (s *objects) get(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, ok := s.pending[h]; ok {
		return o, nil
	}
	if o, ok := s.kept[h]; ok {
		return o, nil
	}
	return s.repo.EncodedObject(t, h)
}

// keep reads an object and holds its content in memory, for objects read
// more than once (go-git reads a packed object from the pack every time).
func (s *objects) keep(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := s.get(t, h)
	if err != nil {
		return nil, err
	}
	if _, ok := o.(*plumbing.MemoryObject); ok {
		return o, nil
	}
	data, err := readAll(o)
	if err != nil {
		return nil, err
	}
	m := &plumbing.MemoryObject{}
	m.SetType(o.Type())
	m.Write(data)
	s.kept[h] = m
	return m, nil
}

func (s *objects) readBlob(h plumbing.Hash) ([]byte, error) {
	o, err := s.get(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	r, err := o.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// put stores a new object (once) and returns its id.
func (s *objects) put(t plumbing.ObjectType, content []byte) plumbing.Hash {
	o := &plumbing.MemoryObject{}
	o.SetType(t)
	o.Write(content) // a MemoryObject's Write cannot fail
	h := o.Hash()
	if _, ok := s.pending[h]; !ok {
		s.pending[h] = o
		s.order = append(s.order, h)
	}
	return h
}

// dir is one directory of the tree being edited. It is read from its tree
// object only when first entered, and written back only when changed.
type dir struct {
	hash    plumbing.Hash // the stored tree; valid while !dirty
	entries map[string]*entry
	dirty   bool
}

type entry struct {
	mode filemode.FileMode
	hash plumbing.Hash // blob or gitlink id (unused for directories)
	sub  *dir          // set for directories
}

type tree struct {
	objs *objects
	root *dir
}

func newTree(objs *objects, root plumbing.Hash) *tree {
	return &tree{objs: objs, root: &dir{hash: root}}
}

func (t *tree) load(d *dir) error {
	if d.entries != nil {
		return nil
	}
	o, err := t.objs.get(plumbing.TreeObject, d.hash)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", d.hash, err)
	}
	var tr object.Tree
	if err := tr.Decode(o); err != nil {
		return fmt.Errorf("read tree %s: %w", d.hash, err)
	}
	d.entries = make(map[string]*entry, len(tr.Entries))
	for _, e := range tr.Entries {
		n := &entry{mode: e.Mode, hash: e.Hash}
		if e.Mode == filemode.Dir {
			n.sub = &dir{hash: e.Hash}
		}
		d.entries[e.Name] = n
	}
	return nil
}

// lookup returns the entry at path, or nil when there is none.
func (t *tree) lookup(path string) (*entry, error) {
	d := t.root
	parts := strings.Split(path, "/")
	for i, name := range parts {
		if err := t.load(d); err != nil {
			return nil, err
		}
		e := d.entries[name]
		if e == nil || i == len(parts)-1 {
			return e, nil
		}
		if e.sub == nil {
			return nil, nil
		}
		d = e.sub
	}
	return nil, nil
}

// set puts a file at path, creating directories on the way.
func (t *tree) set(path string, mode filemode.FileMode, h plumbing.Hash) error {
	d := t.root
	parts := strings.Split(path, "/")
	for i, name := range parts {
		if err := t.load(d); err != nil {
			return err
		}
		d.dirty = true
		e := d.entries[name]
		if i == len(parts)-1 {
			if e != nil && e.sub != nil {
				return fmt.Errorf("%s is a directory", path)
			}
			d.entries[name] = &entry{mode: mode, hash: h}
			return nil
		}
		if e == nil {
			e = &entry{mode: filemode.Dir, sub: &dir{entries: map[string]*entry{}}}
			d.entries[name] = e
		}
		if e.sub == nil {
			return fmt.Errorf("%s is a file", strings.Join(parts[:i+1], "/"))
		}
		d = e.sub
	}
	return nil
}

// remove deletes the file at path and the directories it leaves empty.
func (t *tree) remove(path string) error {
	parts := strings.Split(path, "/")
	chain := []*dir{t.root}
	d := t.root
	for i, name := range parts {
		if err := t.load(d); err != nil {
			return err
		}
		e := d.entries[name]
		if e == nil {
			return fmt.Errorf("%s does not exist", path)
		}
		if i == len(parts)-1 {
			break
		}
		if e.sub == nil {
			return fmt.Errorf("%s is a file", strings.Join(parts[:i+1], "/"))
		}
		d = e.sub
		chain = append(chain, d)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		chain[i].dirty = true
		delete(chain[i].entries, parts[i])
		if len(chain[i].entries) > 0 {
			for _, up := range chain[:i] {
				up.dirty = true
			}
			break
		}
	}
	return nil
}

// write stores every changed directory and returns the root tree's id.
func (t *tree) write() plumbing.Hash {
	return t.writeDir(t.root)
}

func (t *tree) writeDir(d *dir) plumbing.Hash {
	if !d.dirty {
		return d.hash
	}
	names := make([]string, 0, len(d.entries))
	for name := range d.entries {
		names = append(names, name)
	}
	// git orders a directory as if its name ended in "/".
	key := func(name string) string {
		if d.entries[name].sub != nil {
			return name + "/"
		}
		return name
	}
	sort.Slice(names, func(i, j int) bool { return key(names[i]) < key(names[j]) })
	var buf bytes.Buffer
	for _, name := range names {
		e := d.entries[name]
		h := e.hash
		if e.sub != nil {
			h = t.writeDir(e.sub)
		}
		fmt.Fprintf(&buf, "%o %s\x00", uint32(e.mode), name)
		buf.Write(h[:])
	}
	d.hash = t.objs.put(plumbing.TreeObject, buf.Bytes())
	d.dirty = false
	return d.hash
}
