// Package fsutil holds the few file-system primitives every stage needs to
// lose nothing on a crash or a concurrent run: atomic writes and renames,
// advisory locks, and path joins that cannot escape their root.
package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it and renames it into place, so a reader sees either
// the old content or the new, never a partial file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content produced by a writer function.
func WriteAtomic(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that a rename inside it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Lock is an advisory, process-wide lock on a file. The lock file itself is
// never removed: removing it would let two processes lock different inodes.
type Lock struct{ fl *flock.Flock }

// LockPollInterval is how often Acquire retries a held lock.
const LockPollInterval = 100 * time.Millisecond

// Acquire takes an exclusive lock on path, waiting until ctx is done. The
// error for a lock still held when ctx ends names the lock file, so the user
// knows which other process to look for.
func Acquire(ctx context.Context, path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fl := flock.New(path)
	ok, err := fl.TryLockContext(ctx, LockPollInterval)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lock %s: still held by another criu-forge process: %w", path, ctx.Err())
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: still held by another criu-forge process", path)
	}
	return &Lock{fl: fl}, nil
}

// TryAcquire takes the lock if it is free and reports false when another
// process holds it.
func TryAcquire(path string) (*Lock, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	fl := flock.New(path)
	ok, err := fl.TryLock()
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, false, nil
	}
	return &Lock{fl: fl}, true, nil
}

// Release drops the lock.
func (l *Lock) Release() error {
	if l == nil || l.fl == nil {
		return nil
	}
	return l.fl.Unlock()
}

// ErrEscapes reports a path, taken from untrusted input, that would resolve
// outside the directory it must stay in.
var ErrEscapes = errors.New("path escapes its root")

// SafeJoin joins an untrusted relative path onto root lexically and refuses
// absolute paths and any ".." that climbs out of root. It does not follow
// symbolic links; callers that write through existing directories must also
// refuse links on the way (see InsideRoot).
func SafeJoin(root, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty path", ErrEscapes)
	}
	if filepath.IsAbs(name) || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q is absolute", ErrEscapes, name)
	}
	clean := filepath.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%w: %q", ErrEscapes, name)
	}
	return filepath.Join(root, clean), nil
}

// InsideRoot checks that no existing component of path below root is a
// symbolic link, so that writing to path cannot be redirected outside root
// through a link planted earlier (for example by an archive entry).
func InsideRoot(root, path string) error {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%w: %s is not below %s", ErrEscapes, path, root)
	}
	cur := root
	parts := strings.Split(rel, string(filepath.Separator))
	for _, p := range parts[:len(parts)-1] {
		if p == "." {
			continue
		}
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s goes through the symbolic link %s", ErrEscapes, rel, cur)
		}
	}
	return nil
}

// ReplaceDir moves the finished directory src to dst. When dst exists it is
// first moved aside and removed only after the switch, so dst is at every
// moment either the old tree or the new one.
func ReplaceDir(src, dst string) error {
	old := ""
	if _, err := os.Lstat(dst); err == nil {
		old = dst + ".old-" + fmt.Sprint(time.Now().UnixNano())
		if err := os.Rename(dst, old); err != nil {
			return fmt.Errorf("move aside %s: %w", dst, err)
		}
	}
	if err := os.Rename(src, dst); err != nil {
		if old != "" {
			_ = os.Rename(old, dst)
		}
		return fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
