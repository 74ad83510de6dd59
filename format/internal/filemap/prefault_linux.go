package filemap

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prefault maps every page of data, a view into a mapped file (or any
// memory), into the process now, so that later reads do not fault one page
// at a time: MADV_POPULATE_READ (Linux 5.14+), else a read of one byte per
// page. It reads the file from disk if the page cache does not hold it.
func Prefault(data []byte) {
	if len(data) == 0 {
		return
	}
	page := os.Getpagesize()
	off := int(uintptr(unsafe.Pointer(&data[0])) % uintptr(page)) // madvise wants a page-aligned start; the page holding data[0] is mapped too
	whole := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(&data[0]), -off)), len(data)+off)
	if unix.Madvise(whole, unix.MADV_POPULATE_READ) == nil {
		return
	}
	var sum byte
	for i := 0; i < len(whole); i += page {
		sum += whole[i]
	}
	prefaultSink = sum
}

// prefaultSink keeps Prefault's page reads from being optimised away.
var prefaultSink byte
