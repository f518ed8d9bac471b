package rpmmd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The on-disk layout of an .rpm: a 96-byte lead, the signature header
// (padded to 8 bytes), the main header, then the compressed payload. Both
// headers share one structure: a 16-byte intro, an index of 16-byte
// entries, and a data store the entries point into.
const (
	leadSize      = 96
	introSize     = 16
	indexSize     = 16
	leadMagic     = 0xedabeedb
	headerMagic   = 0x8eade8 // followed by the header version byte, 1
	maxIndexCount = 0xffff   // rpm's own limits (hdrchkTags, hdrchkData)
	maxDataSize   = 0x0fffffff
)

// Header entry types (rpmTagType).
const (
	typeNull = iota
	typeChar
	typeInt8
	typeInt16
	typeInt32
	typeInt64
	typeString
	typeBin
	typeStringArray
	typeI18NString
)

var fixedTypeSize = map[uint32]uint32{typeChar: 1, typeInt8: 1, typeInt16: 2, typeInt32: 4, typeInt64: 8, typeBin: 1}

// errNotRPM marks input that is not an rpm package at all.
var errNotRPM = errors.New("not an rpm package")

type entry struct {
	typ   uint32
	count uint32
	data  []byte // exactly the entry's bytes, bounds-checked
}

// header is one parsed, validated rpm header: every entry's data is known
// to lie inside the store, so accessors need no further checks.
type header struct {
	entries map[uint32]entry
}

// readHeader reads one header from r, of which at most limit bytes remain
// (so a forged size cannot make us allocate more than the file holds). It
// returns the header and the number of bytes it took, padding included.
func readHeader(r *bufio.Reader, limit int64, padTo8 bool) (*header, int64, error) {
	var intro [introSize]byte
	if _, err := io.ReadFull(r, intro[:]); err != nil {
		return nil, 0, fmt.Errorf("header intro: %w", unexpectedEOF(err))
	}
	magic := binary.BigEndian.Uint32(intro[0:4])
	if magic>>8 != headerMagic || magic&0xff != 1 {
		return nil, 0, fmt.Errorf("header: bad magic %08x", magic)
	}
	count := binary.BigEndian.Uint32(intro[8:12])
	size := binary.BigEndian.Uint32(intro[12:16])
	if count == 0 || count > maxIndexCount {
		return nil, 0, fmt.Errorf("header: %d index entries (want 1..%d)", count, maxIndexCount)
	}
	if size > maxDataSize {
		return nil, 0, fmt.Errorf("header: data store of %d bytes is too large", size)
	}
	total := int64(introSize) + int64(count)*indexSize + int64(size)
	pad := int64(0)
	if padTo8 {
		pad = (8 - total%8) % 8
	}
	if total+pad > limit {
		return nil, 0, fmt.Errorf("header: claims %d bytes but only %d remain in the file", total+pad, limit)
	}
	buf := make([]byte, total-introSize+pad)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, 0, fmt.Errorf("header: %w", unexpectedEOF(err))
	}
	index, store := buf[:count*indexSize], buf[count*indexSize:count*indexSize+size]
	h := &header{entries: make(map[uint32]entry, count)}
	for i := uint32(0); i < count; i++ {
		e := index[i*indexSize:]
		tag := binary.BigEndian.Uint32(e[0:4])
		typ := binary.BigEndian.Uint32(e[4:8])
		off := binary.BigEndian.Uint32(e[8:12])
		n := binary.BigEndian.Uint32(e[12:16])
		data, err := entryData(store, typ, off, n)
		if err != nil {
			return nil, 0, fmt.Errorf("header tag %d: %w", tag, err)
		}
		if _, dup := h.entries[tag]; dup {
			return nil, 0, fmt.Errorf("header tag %d appears twice", tag)
		}
		h.entries[tag] = entry{typ: typ, count: n, data: data}
	}
	return h, total + pad, nil
}

// entryData returns the bytes of one entry after checking that they lie
// inside the store and, for strings, that each is NUL-terminated there.
func entryData(store []byte, typ, off, n uint32) ([]byte, error) {
	if uint64(off) > uint64(len(store)) {
		return nil, fmt.Errorf("offset %d outside the %d-byte data store", off, len(store))
	}
	rest := store[off:]
	if typ == typeNull {
		return nil, nil
	}
	if n == 0 {
		return nil, errors.New("zero count")
	}
	if size, ok := fixedTypeSize[typ]; ok {
		end := uint64(size) * uint64(n)
		if end > uint64(len(rest)) {
			return nil, fmt.Errorf("%d items of %d bytes overrun the data store", n, size)
		}
		return rest[:end], nil
	}
	switch typ {
	case typeString, typeStringArray, typeI18NString:
	default:
		return nil, fmt.Errorf("unknown type %d", typ)
	}
	if typ == typeString && n != 1 {
		return nil, fmt.Errorf("string with count %d", n)
	}
	if uint64(n) > uint64(len(rest)) { // every string takes at least its NUL
		return nil, fmt.Errorf("%d strings overrun the data store", n)
	}
	end := 0
	for i := uint32(0); i < n; i++ {
		j := bytes.IndexByte(rest[end:], 0)
		if j < 0 {
			return nil, errors.New("string not terminated inside the data store")
		}
		end += j + 1
	}
	return rest[:end], nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// strings returns a string-typed entry's values (nil when absent).
func (h *header) strings(tag uint32) ([]string, error) {
	e, ok := h.entries[tag]
	if !ok {
		return nil, nil
	}
	switch e.typ {
	case typeString, typeStringArray, typeI18NString:
	default:
		return nil, fmt.Errorf("tag %d has type %d, want a string", tag, e.typ)
	}
	out := make([]string, 0, e.count)
	d := e.data
	for i := uint32(0); i < e.count; i++ {
		j := bytes.IndexByte(d, 0) // always found: checked by entryData
		out = append(out, string(d[:j]))
		d = d[j+1:]
	}
	return out, nil
}

// string returns the first value of a string entry: for I18N strings that
// is the untranslated (C locale) text, as createrepo_c uses.
func (h *header) string(tag uint32) (string, error) {
	s, err := h.strings(tag)
	if err != nil || len(s) == 0 {
		return "", err
	}
	return s[0], nil
}

// ints returns an integer entry's values (nil when absent).
func (h *header) ints(tag uint32) ([]uint64, error) {
	e, ok := h.entries[tag]
	if !ok {
		return nil, nil
	}
	out := make([]uint64, e.count)
	d := e.data
	for i := range out {
		switch e.typ {
		case typeChar, typeInt8:
			out[i] = uint64(d[i])
		case typeInt16:
			out[i] = uint64(binary.BigEndian.Uint16(d[2*i:]))
		case typeInt32:
			out[i] = uint64(binary.BigEndian.Uint32(d[4*i:]))
		case typeInt64:
			out[i] = binary.BigEndian.Uint64(d[8*i:])
		default:
			return nil, fmt.Errorf("tag %d has type %d, want an integer", tag, e.typ)
		}
	}
	return out, nil
}

// int returns the first value of an integer entry and whether it exists.
func (h *header) int(tag uint32) (uint64, bool, error) {
	v, err := h.ints(tag)
	if err != nil || len(v) == 0 {
		return 0, false, err
	}
	return v[0], true, nil
}
