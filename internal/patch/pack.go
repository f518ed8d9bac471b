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

// packSource yields the objects of a pack, one at a time, in order.
type packSource func(i int) (plumbing.Hash, plumbing.ObjectType, []byte, error)

// writePack writes n objects as one pack and its index into packDir:
// objects are read in order by read, compressed in parallel at the zlib
// level chosen per object type, and each object's content is also handed
// to use, when use is not nil, from one goroutine of its own: creating
// files from several threads at once was slower, not faster, on the ext4
// machines measured (the kernel serialises them and burns CPU waiting).
// Pack and index are written aside and renamed into place, pack first, so
// a reader never sees an index without its pack. The pack has no deltas.
func writePack(packDir string, level func(plumbing.ObjectType) int, n int, read packSource, use func(plumbing.Hash, plumbing.ObjectType, []byte) error) error {
	type job struct {
		i    int
		h    plumbing.Hash
		t    plumbing.ObjectType
		data []byte
	}
	entries := make([][]byte, n)
	hashes := make([]plumbing.Hash, n)
	jobs := make(chan job, 64)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers+2)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var buf bytes.Buffer
			writers := map[int]*zlib.Writer{}
			for j := range jobs {
				if errs[w] != nil {
					continue
				}
				lvl := level(j.t)
				zw := writers[lvl]
				if zw == nil {
					if zw, errs[w] = zlib.NewWriterLevel(&buf, lvl); errs[w] != nil {
						continue
					}
					writers[lvl] = zw
				}
				buf.Reset()
				writeObjectHeader(&buf, j.t, len(j.data))
				zw.Reset(&buf)
				zw.Write(j.data)
				if errs[w] = zw.Close(); errs[w] == nil {
					entries[j.i] = bytes.Clone(buf.Bytes())
				}
			}
		}(w)
	}
	var uses chan job
	if use != nil {
		uses = make(chan job, 256)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range uses {
				if errs[workers] == nil {
					errs[workers] = use(j.h, j.t, j.data)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		h, t, data, err := read(i)
		if err != nil {
			errs[workers+1] = err
			break
		}
		hashes[i] = h
		jobs <- job{i, h, t, data}
		if uses != nil {
			uses <- job{i, h, t, data}
		}
	}
	close(jobs)
	if uses != nil {
		close(uses)
	}
	wg.Wait()
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
