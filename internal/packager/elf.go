package packager

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
)

// ELFInfo is what dependency resolution needs from one ELF file.
type ELFInfo struct {
	Needed []string // DT_NEEDED sonames, in file order
	Soname string   // DT_SONAME, for shared libraries that have one
	Class  elf.Class
}

// isELF reports whether the file starts with the ELF magic.
func isELF(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return false, nil // shorter than a magic number: not ELF
	}
	return bytes.Equal(magic[:], []byte(elf.ELFMAG)), nil
}

// ReadELF reads the dynamic section of an ELF file. The file is untrusted
// (it comes out of a build): debug/elf is documented as not hardened
// against hostile input, so a panic inside it becomes an error naming the
// file instead of taking the process down.
func ReadELF(r io.ReaderAt, name string) (info ELFInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read ELF %s: malformed file (%v)", name, p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return ELFInfo{}, fmt.Errorf("read ELF %s: %w", name, err)
	}
	defer f.Close()
	info.Class = f.Class
	if info.Needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return ELFInfo{}, fmt.Errorf("read DT_NEEDED of %s: %w", name, err)
	}
	sonames, err := f.DynString(elf.DT_SONAME)
	if err != nil {
		return ELFInfo{}, fmt.Errorf("read DT_SONAME of %s: %w", name, err)
	}
	if len(sonames) > 0 {
		info.Soname = sonames[0]
	}
	return info, nil
}

// readELFFile is ReadELF on a file of the staged tree.
func readELFFile(path string) (ELFInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return ELFInfo{}, err
	}
	defer f.Close()
	return ReadELF(f, path)
}
