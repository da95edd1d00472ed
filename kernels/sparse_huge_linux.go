//go:build linux

package kernels

import (
	"syscall"
	"unsafe"
)

// madvHugepage is Linux's MADV_HUGEPAGE.
const madvHugepage = 14

// hugePage is the size of an x86-64 (and arm64 4K-granule) huge page.
const hugePage = 2 << 20

// HugeBytes returns n zeroed bytes from the Go heap, starting on a 2 MiB
// boundary and marked MADV_HUGEPAGE, so that where transparent huge pages
// are in "madvise" mode the kernel backs them with 2 MiB pages as they are
// first touched. Sparse decode reads one scattered row after another; on
// 4 KiB pages each row costs a TLB miss. Buffers under 2 MiB, and
// madvise failures, give plain heap memory. The buffer is ordinary Go
// memory (collected when unreferenced); its slack (up to 2 MiB) is wasted.
func HugeBytes(n int) []byte {
	if n < hugePage {
		return make([]byte, n)
	}
	b := make([]byte, n+hugePage)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	off := int((hugePage - p%hugePage) % hugePage)
	b = b[off : off+n : off+n]
	_ = syscall.Madvise(b[:n&^(hugePage-1)], madvHugepage)
	return b
}
