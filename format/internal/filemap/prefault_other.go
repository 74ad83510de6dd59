//go:build !linux

package filemap

import (
	"os"
	"unsafe"
)

// Prefault maps every page of data into the process now by reading one byte
// per page (Linux asks the kernel instead, in prefault_linux.go).
func Prefault(data []byte) {
	if len(data) == 0 {
		return
	}
	page := os.Getpagesize()
	off := int(uintptr(unsafe.Pointer(&data[0])) % uintptr(page))
	whole := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(&data[0]), -off)), len(data)+off)
	var sum byte
	for i := 0; i < len(whole); i += page {
		sum += whole[i]
	}
	prefaultSink = sum
}

// prefaultSink keeps Prefault's page reads from being optimised away.
var prefaultSink byte
