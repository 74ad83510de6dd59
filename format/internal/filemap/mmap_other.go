//go:build !unix

package filemap

import (
	"io"
	"os"
)

// mapFile reads size bytes of f into memory: the fallback for systems without
// mmap support in golang.org/x/sys/unix. The release function lets the
// garbage collector reclaim the buffer.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
