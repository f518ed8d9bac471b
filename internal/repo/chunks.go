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
// compressed from the previous generation's cache
// (.gen/<n>/chunks/<sha256>.<ext>).

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

// chunkCache holds the compressed chunks a generation uses: found in the
// previous generation or made now.
type chunkCache struct {
	prev string // previous generation's chunks/, "" when none
	mu   sync.Mutex
	used map[string]cachedChunk
}

type cachedChunk struct {
	data []byte
	from string // file in the previous generation, to hard-link
}

func newChunkCache(prevGen string) *chunkCache {
	c := &chunkCache{used: map[string]cachedChunk{}}
	if prevGen != "" {
		c.prev = filepath.Join(prevGen, chunksDir)
	}
	return c
}

func (c *chunkCache) get(name string, raw []byte, compress func([]byte) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	cc, ok := c.used[name]
	c.mu.Unlock()
	if ok {
		return cc.data, nil
	}
	if c.prev != "" {
		p := filepath.Join(c.prev, name)
		if data, err := os.ReadFile(p); err == nil {
			cc = cachedChunk{data: data, from: p}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if cc.data == nil {
		data, err := compress(raw)
		if err != nil {
			return nil, err
		}
		cc = cachedChunk{data: data}
	}
	c.mu.Lock()
	c.used[name] = cc
	c.mu.Unlock()
	return cc.data, nil
}

// keep carries chunks of an unchanged suite into this generation's cache.
func (c *chunkCache) keep(names []string) {
	if c.prev == "" {
		return
	}
	for _, name := range names {
		p := filepath.Join(c.prev, name)
		if data, err := os.ReadFile(p); err == nil {
			c.used[name] = cachedChunk{data: data, from: p}
		}
	}
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

// save puts the chunks this generation used into it, for the next one.
func (c *chunkCache) save(g *generationWriter) error {
	for name, cc := range c.used {
		rel := chunksDir + "/" + name
		if cc.from != "" {
			if err := g.linkFrom(cc.from, rel); err == nil {
				continue
			}
		}
		if err := g.write(rel, cc.data); err != nil {
			return err
		}
	}
	return nil
}
