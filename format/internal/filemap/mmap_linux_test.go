package filemap

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// presentPages counts the pages of data that are mapped in this process's
// page table, from /proc/self/pagemap (bit 63 of each page's entry).
func presentPages(t *testing.T, data []byte) int {
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer f.Close()
	page := os.Getpagesize()
	first := uintptr(unsafe.Pointer(&data[0])) / uintptr(page)
	n := (len(data) + page - 1) / page
	buf := make([]byte, 8*n)
	if _, err := f.ReadAt(buf, int64(first)*8); err != nil {
		t.Skipf("read pagemap: %v", err)
	}
	present := 0
	for i := 0; i < n; i++ {
		if binary.LittleEndian.Uint64(buf[8*i:])>>63 == 1 {
			present++
		}
	}
	return present
}

// TestPrefault maps a 4 MiB file (written, so in the page cache) and checks
// that few of its pages are mapped before Prefault and all of them after,
// with data starting mid-page.
func TestPrefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.bin")
	const size = 4 << 20
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	data, release, err := Map(path)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	pages := size / os.Getpagesize()
	if n := presentPages(t, data); n > pages/2 {
		t.Skipf("%d of %d pages are mapped before any read: nothing to measure", n, pages)
	}
	Prefault(data[1:])
	if n := presentPages(t, data); n != pages {
		t.Errorf("after Prefault %d of %d pages are mapped", n, pages)
	}
}

// TestPrefaultHeap prefaults a small slice of the Go heap (as weights
// quantized at load are) that does not start a page: the page-aligned start
// lies outside its allocation, where -race's checkptr refuses a Go pointer,
// so the start must reach madvise as a number. Run with -race to check.
func TestPrefaultHeap(t *testing.T) {
	page := uintptr(os.Getpagesize())
	var keep [][]byte // the allocations tried, alive until the end
	for range 100 {
		b := make([]byte, 64)
		keep = append(keep, b)
		if uintptr(unsafe.Pointer(&b[0]))%page != 0 {
			Prefault(b)
			return
		}
	}
	t.Skipf("%d small allocations all started a page", len(keep))
}
