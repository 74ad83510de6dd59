// Package filemap holds what the checkpoint file formats share about files:
// mapping one read-only with its checks, pre-faulting a mapped range, and
// committing a file written under a temporary name atomically.
package filemap

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Map maps the regular file at path read-only and returns its bytes and the
// function that releases them. An empty file gives no bytes and a no-op
// release (an empty mapping is not possible; the format parsers report the
// file as too short). Errors name the path.
func Map(path string) (data []byte, release func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > math.MaxInt {
		return nil, nil, fmt.Errorf("%s: %d bytes is too large to map on this platform", path, st.Size())
	}
	release = func() error { return nil }
	if size := int(st.Size()); size > 0 {
		if data, release, err = mapFile(f, size); err != nil {
			return nil, nil, fmt.Errorf("map %s: %w", path, err)
		}
	}
	return data, release, nil
}

// CreateTemp creates the temporary file that Commit later renames to path,
// hidden in path's folder (so the rename stays on one file system).
func CreateTemp(path string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
}

// Commit makes the temporary file f the file at path: it sets the usual
// permissions, syncs and closes f, renames it, then syncs the folder so the
// rename itself is durable. It removes f on failure.
func Commit(f *os.File, path string) error {
	err := f.Chmod(0o644) // CreateTemp makes 0600 files
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // best effort: not every system can sync a folder
		d.Close()
	}
	return nil
}
