package filemap

import (
	"os"
	"runtime"
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
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(&data[0]))
	off := start % page // madvise wants a page-aligned start; the page holding data[0] is mapped too
	// The aligned start goes to the kernel as a number, not as a Go
	// pointer: before data[0] it may lie outside data's allocation (data
	// on the heap, e.g. weights quantized at load), which -race's checkptr
	// refuses.
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, start-off, uintptr(len(data))+off, unix.MADV_POPULATE_READ)
	runtime.KeepAlive(data)
	if errno == 0 {
		return
	}
	var sum byte
	for i := 0; i < len(data); i += int(page - (start+uintptr(i))%page) { // data[0], then the first byte of each later page
		sum += data[i]
	}
	prefaultSink = sum
}

// prefaultSink keeps Prefault's page reads from being optimised away.
var prefaultSink byte
