package patch

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// packSource yields object i of a pack. Worker w of writePack's workers
// calls it for its share of the objects, so a source that is not safe for
// concurrent use keeps one reader per worker.
type packSource func(w, i int) (plumbing.Hash, plumbing.ObjectType, []byte, error)

// packWorkers is how many goroutines read and compress a pack.
func packWorkers() int { return runtime.GOMAXPROCS(0) }

// writePack writes n objects as one pack and its index into packDir. The
// objects are read and compressed (at the zlib level chosen per object
// type) by packWorkers goroutines, and each object's content is also handed
// to use, when use is not nil, from one goroutine of its own: creating
// files from several threads at once was slower, not faster, on the ext4
// machines measured (the kernel serialises them and burns CPU waiting).
// Pack and index are written aside and renamed into place, pack first, so
// a reader never sees an index without its pack. The pack has no deltas.
func writePack(packDir string, level func(plumbing.ObjectType) int, n int, read packSource, use func(plumbing.Hash, plumbing.ObjectType, []byte) error) error {
	type job struct {
		h    plumbing.Hash
		t    plumbing.ObjectType
		data []byte
	}
	entries := make([][]byte, n)
	hashes := make([]plumbing.Hash, n)
	workers := packWorkers()
	errs := make([]error, workers+1)
	var uses chan job
	var useDone sync.WaitGroup
	if use != nil {
		uses = make(chan job, 256)
		useDone.Add(1)
		go func() {
			defer useDone.Done()
			for j := range uses {
				if errs[workers] == nil {
					errs[workers] = use(j.h, j.t, j.data)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var buf bytes.Buffer
			writers := map[int]*zlib.Writer{}
			for i := w; i < n; i += workers {
				h, t, data, err := read(w, i)
				if err != nil {
					errs[w] = err
					return
				}
				hashes[i] = h
				if uses != nil {
					uses <- job{h, t, data}
				}
				lvl := level(t)
				zw := writers[lvl]
				if zw == nil {
					if zw, err = zlib.NewWriterLevel(&buf, lvl); err != nil {
						errs[w] = err
						return
					}
					writers[lvl] = zw
				}
				buf.Reset()
				writeObjectHeader(&buf, t, len(data))
				zw.Reset(&buf)
				zw.Write(data)
				if errs[w] = zw.Close(); errs[w] != nil {
					return
				}
				entries[i] = bytes.Clone(buf.Bytes())
			}
		}(w)
	}
	wg.Wait()
	if uses != nil {
		close(uses)
	}
	useDone.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	var pack bytes.Buffer
	var header [12]byte
	copy(header[:], "PACK")
	binary.BigEndian.PutUint32(header[4:], 2)
	binary.BigEndian.PutUint32(header[8:], uint32(n))
	pack.Write(header[:])
	idx := &idxfile.Writer{}
	idx.OnHeader(uint32(n))
	for i, e := range entries {
		idx.OnInflatedObjectContent(hashes[i], int64(pack.Len()), crc32.ChecksumIEEE(e), nil)
		pack.Write(e)
	}
	sum := sha1.Sum(pack.Bytes())
	pack.Write(sum[:])
	packHash := plumbing.Hash(sum)
	if err := idx.OnFooter(packHash); err != nil {
		return err
	}
	mi, err := idx.Index()
	if err != nil {
		return err
	}
	base := filepath.Join(packDir, "pack-"+packHash.String())
	if err := fsutil.WriteFileAtomic(base+".pack", pack.Bytes(), 0o444); err != nil {
		return err
	}
	return fsutil.WriteAtomic(base+".idx", 0o444, func(w io.Writer) error {
		_, err := idxfile.NewEncoder(w).Encode(mi)
		return err
	})
}

// writeObjectHeader writes a pack entry's type and size header.
func writeObjectHeader(w *bytes.Buffer, t plumbing.ObjectType, size int) {
	b := byte(t)<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		w.WriteByte(b | 0x80)
		b = byte(size & 0x7f)
		size >>= 7
	}
	w.WriteByte(b)
}

// objectPackDir is the pack directory of a git directory.
func objectPackDir(gitDir string) (string, error) {
	dir := filepath.Join(gitDir, "objects", "pack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	return dir, nil
}
