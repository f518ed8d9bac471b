package packager

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// compressManPages gzips the staged man pages into dir, as dh_compress and
// rpm's brp-compress do: both families install them compressed. The gzip
// header carries no name and no time, so the output is reproducible. A
// symbolic link to a man page is renamed and retargeted the same way. The
// staged tree itself is not changed: it is a build's cached output.
func compressManPages(stage, dir string, staged []stagedFile) ([]stagedFile, error) {
	out := make([]stagedFile, 0, len(staged))
	for _, f := range staged {
		if !strings.HasPrefix(f.Rel, "usr/share/man/") || f.Mode.IsDir() || strings.HasSuffix(f.Rel, ".gz") {
			out = append(out, f)
			continue
		}
		if f.Mode&os.ModeSymlink != 0 {
			if !strings.HasSuffix(f.Target, ".gz") {
				f.Target += ".gz"
			}
			f.Rel += ".gz"
			out = append(out, f)
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Rel)+".gz")
		size, err := gzipFile(filepath.Join(stage, filepath.FromSlash(f.Rel)), dst)
		if err != nil {
			return nil, fmt.Errorf("compress man page %s: %w", f.Rel, err)
		}
		f.Rel, f.Src, f.Size = f.Rel+".gz", dst, size
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

func gzipFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	zw, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	if err != nil {
		out.Close()
		return 0, err
	}
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return 0, err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return 0, err
	}
	fi, err := out.Stat()
	if err != nil {
		out.Close()
		return 0, err
	}
	return fi.Size(), out.Close()
}
