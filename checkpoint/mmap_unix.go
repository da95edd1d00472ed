//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"fmt"
	"math"
	"os"
	"syscall"
)

// mapping is a read-only view of a whole file.
type mapping struct {
	name   string
	data   []byte
	mapped bool
}

// mapFile maps the file read-only into memory.
func mapFile(name string) (*mapping, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint: %s: not a regular file", name)
	}
	size := fi.Size()
	if size == 0 {
		return &mapping{name: name, data: []byte{}}, nil
	}
	if size < 0 || uint64(size) > uint64(math.MaxInt) {
		return nil, fmt.Errorf("checkpoint: %s: file of %d bytes is too large to map", name, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: mmap %s: %w", name, err)
	}
	return &mapping{name: name, data: data, mapped: true}, nil
}

func (m *mapping) close() error {
	if !m.mapped {
		m.data = nil
		return nil
	}
	m.mapped = false
	data := m.data
	m.data = nil
	if err := syscall.Munmap(data); err != nil {
		return fmt.Errorf("checkpoint: munmap %s: %w", m.name, err)
	}
	return nil
}
