package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// Compressing a whole Packages index again for every added package costs
// far more than the rest of a publish (xz of a 1,000-package index: about
// half a second). So an index is compressed in chunks cut at
// content-defined points, and the compressed chunks joined: gzip members
// concatenated (apt, gzip and Go read them as one file), xz blocks gathered
// into one stream (apt reads only the first of concatenated xz streams; see
// xzjoin.go). Adding a package changes one chunk; the others come
// compressed from the cache (.gen/chunks/<sha256>.<ext>).

const (
	chunkAverage = 32  // stanzas per chunk, on average
	chunkMax     = 128 // stanzas per chunk at most
	chunksDir    = "chunks"
)

// chunkBoundary says whether a chunk ends after this package's stanza; it
// depends only on the package, so a new package moves no other boundary.
func chunkBoundary(d *debInfo, inChunk int) bool {
	h := fnv.New32a()
	h.Write([]byte(d.Package + "\x00" + d.Version + "\x00" + d.Arch))
	return h.Sum32()%chunkAverage == 0 || inChunk >= chunkMax
}

// chunkCache is the directory of compressed chunks, shared by the
// generations (.gen/chunks/<sha256 of the raw chunk>.<ext>): a chunk file
// never changes once renamed into place, and those no live suite uses are
// deleted after each switch.
type chunkCache struct {
	dir   string
	mu    sync.Mutex
	used  map[string][]byte
	fresh []string // names made by this publish, to write
}

func newChunkCache(dir string) *chunkCache {
	return &chunkCache{dir: dir, used: map[string][]byte{}}
}

func (c *chunkCache) get(name string, raw []byte, compress func([]byte) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	data, ok := c.used[name]
	c.mu.Unlock()
	if ok {
		return data, nil
	}
	data, err := os.ReadFile(filepath.Join(c.dir, name))
	fresh := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if data, err = compress(raw); err != nil {
			return nil, err
		}
		fresh = true
	case err != nil:
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.used[name]; !ok {
		c.used[name] = data
		if fresh {
			c.fresh = append(c.fresh, name)
		}
	}
	return data, nil
}

// compressChunks compresses every chunk (in parallel) and concatenates
// them; it returns the chunks' cache names too.
func (c *chunkCache) compressChunks(chunks [][]byte, ext string, compress func([]byte) ([]byte, error), join func([][]byte) ([]byte, error)) ([]byte, []string, error) {
	names := make([]string, len(chunks))
	for i, raw := range chunks {
		sum := sha256.Sum256(raw)
		names[i] = hex.EncodeToString(sum[:]) + ext
	}
	parts := make([][]byte, len(chunks))
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, raw := range chunks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			parts[i], errs[i] = c.get(names[i], raw, compress)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	out, err := join(parts)
	if err != nil {
		return nil, nil, err
	}
	return out, names, nil
}

// concat joins gzip members: apt, gzip and Go read them as one file.
func concat(parts [][]byte) ([]byte, error) { return bytes.Join(parts, nil), nil }

// save writes the chunks this publish made (aside, then renamed) and hands
// them to g for the fsync before the switch.
func (c *chunkCache) save(g *generationWriter) error {
	if len(c.fresh) == 0 {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	for _, name := range c.fresh {
		p := filepath.Join(c.dir, name)
		if err := os.WriteFile(p+".tmp", c.used[name], 0o644); err != nil {
			return err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return err
		}
		g.files = append(g.files, p)
	}
	g.dirs[c.dir] = true
	return nil
}

// pruneChunks deletes the chunks (and temporary files) no suite of st uses.
func pruneChunks(dir string, st *state) error {
	keep := map[string]bool{}
	for _, s := range st.Suites {
		for _, c := range s.Chunks {
			keep[c] = true
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
