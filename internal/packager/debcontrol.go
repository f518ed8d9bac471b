package packager

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/blakesmith/ar"
)

// addDebControlFiles adds files to the control archive of a .deb that nfpm
// wrote. nfpm has no way to ship a shlibs file, which every package
// carrying a public shared library needs (lintian's no-shlibs error; and
// without it dpkg-shlibdeps cannot compute dependencies on the library).
// The rewrite keeps the member order, times and owners, so the result
// stays reproducible.
func addDebControlFiles(deb []byte, extra map[string][]byte, mtime time.Time) ([]byte, error) {
	rd := ar.NewReader(bytes.NewReader(deb))
	var out bytes.Buffer
	w := ar.NewWriter(&out)
	if err := w.WriteGlobalHeader(); err != nil {
		return nil, err
	}
	found := false
	for {
		hdr, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read deb: %w", err)
		}
		body, err := io.ReadAll(rd)
		if err != nil {
			return nil, fmt.Errorf("read deb member %s: %w", hdr.Name, err)
		}
		if hdr.Name == "control.tar.gz" {
			if body, err = appendToTarGz(body, extra, mtime); err != nil {
				return nil, fmt.Errorf("deb control archive: %w", err)
			}
			hdr.Size = int64(len(body))
			found = true
		}
		if err := w.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, errors.New("deb has no control.tar.gz")
	}
	return out.Bytes(), nil
}

func appendToTarGz(tgz []byte, extra map[string][]byte, mtime time.Time) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, err
		}
	}
	for _, name := range sortedKeys(extra) {
		hdr := &tar.Header{Name: "./" + name, Mode: 0o644, Size: int64(len(extra[name])), ModTime: mtime,
			Typeflag: tar.TypeReg, Uname: "root", Gname: "root", Format: tar.FormatGNU}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(extra[name]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
