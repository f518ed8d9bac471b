package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// apt reads only the first stream of a concatenated .xz, so the compressed
// chunks of Packages.xz are joined into one stream instead: an xz stream is
// a header, independent blocks, an index of the blocks' sizes and a footer,
// so the blocks of each chunk's own stream are copied and a new index is
// written over all of them (xz file format 1.0.4, sections 2 and 4).

var (
	xzMagic       = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	xzFooterMagic = []byte{'Y', 'Z'}
)

type xzRecord struct{ unpadded, uncompressed uint64 }

// xzSplit returns the stream flags, the blocks and the index records of a
// single-stream .xz.
func xzSplit(s []byte) (flags, blocks []byte, recs []xzRecord, err error) {
	if len(s) < 24 || !bytes.HasPrefix(s, xzMagic) || !bytes.HasSuffix(s, xzFooterMagic) {
		return nil, nil, nil, errors.New("not a single xz stream")
	}
	footer := s[len(s)-12:]
	indexSize := (int(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
	start := len(s) - 12 - indexSize
	if start < 12 || !bytes.Equal(footer[8:10], s[6:8]) {
		return nil, nil, nil, errors.New("xz footer does not match the stream")
	}
	index := s[start : len(s)-12]
	if index[0] != 0 {
		return nil, nil, nil, errors.New("xz index indicator missing")
	}
	r := bytes.NewReader(index[1:])
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("xz index: %w", err)
	}
	for range n {
		var rec xzRecord
		if rec.unpadded, err = binary.ReadUvarint(r); err != nil {
			return nil, nil, nil, fmt.Errorf("xz index: %w", err)
		}
		if rec.uncompressed, err = binary.ReadUvarint(r); err != nil {
			return nil, nil, nil, fmt.Errorf("xz index: %w", err)
		}
		recs = append(recs, rec)
	}
	return s[6:8], s[12:start], recs, nil
}

// xzJoin joins single-stream .xz files into one stream with all their blocks.
func xzJoin(parts [][]byte) ([]byte, error) {
	if len(parts) == 0 {
		return nil, errors.New("nothing to join")
	}
	var out bytes.Buffer
	var recs []xzRecord
	var flags []byte
	for i, p := range parts {
		f, blocks, r, err := xzSplit(p)
		if err != nil {
			return nil, fmt.Errorf("xz chunk %d: %w", i, err)
		}
		if i == 0 {
			flags = f
			out.Write(p[:12]) // stream header: magic, flags, CRC32
		} else if !bytes.Equal(f, flags) {
			return nil, fmt.Errorf("xz chunk %d: other stream flags", i)
		}
		out.Write(blocks)
		recs = append(recs, r...)
	}
	index := []byte{0}
	index = binary.AppendUvarint(index, uint64(len(recs)))
	for _, r := range recs {
		index = binary.AppendUvarint(index, r.unpadded)
		index = binary.AppendUvarint(index, r.uncompressed)
	}
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = binary.LittleEndian.AppendUint32(index, crc32.ChecksumIEEE(index))
	out.Write(index)
	tail := binary.LittleEndian.AppendUint32(nil, uint32(len(index)/4-1))
	tail = append(tail, flags...)
	out.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(tail)))
	out.Write(tail)
	out.Write(xzFooterMagic)
	return out.Bytes(), nil
}
