//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"fmt"
	"os"
)

// mapping is a read-only view of a whole file. On this OS the file is read
// into memory instead of being memory-mapped.
type mapping struct {
	name string
	data []byte
}

// mapFile reads the whole file into memory.
func mapFile(name string) (*mapping, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint: %s: not a regular file", name)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &mapping{name: name, data: data}, nil
}

func (m *mapping) close() error {
	m.data = nil
	return nil
}
