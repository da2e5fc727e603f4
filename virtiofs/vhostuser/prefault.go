package vhostuser

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// prefaultBlock is the block of guest RAM whose resident pages are mapped
// at once the first time a chain's buffer or indirect table lies in it
// (virtio.FirstUse). Guest RAM comes from the front-end's file (a memfd),
// so a fresh mapping here faults on every page the device first touches:
// one minor fault per 64 KiB read (fault-around) and one per page first
// written, and the guest's swiotlb=force bounce pool (64 MiB; every
// request's buffers and indirect tables move through it) is swept once
// per boot. Mapping a block costs one mincore(2) and one
// MADV_POPULATE_READ per run of resident pages. Only pages already
// resident are mapped: RSS grows by what the device would have touched
// anyway, plus resident pages it never touches in the blocks at the
// edges of what it does (the pool's ends), at most a block each.
//
// Measured (guestbench, TCG guest, swiotlb=force, default settings,
// ab4e5e5 against this, 20:58-21:34 UTC; faults from perf stat, one
// profile boot per side): page faults per 1,000 stat requests 128 -> 59
// (virtiofsd 108), "kernel: page faults" 2.5 -> 1.1 ms per 1,000, mincore
// and madvise 34 more system calls per 1,000; read and create take almost
// no faults either way (4-5 -> 2-3, 5 -> 4-5). CPU per 1,000 requests new
// over old, 10 boot pairs: stat 0.97 [0.83-1.14], read 1.05 [0.66-1.37],
// create 0.96 [0.71-1.36], memory 0.97 [0.64-1.47]: inside the noise, no
// loss. RssShmem after the 15,000-file walk 65,600 KiB both. 2 MiB blocks
// (4 pairs, 2 profile boots): faults 128 -> 58, CPU also noise (stat
// 1.02, read 1.00), but RssShmem 66,624 KiB in every boot, 1 MiB more:
// the blocks at the pool's edges.
const prefaultBlock = 256 << 10

// pageSize is the host's page size: the unit of mmap offsets and of mincore(2).
var pageSize = uint64(unix.Getpagesize())

// noPopulate is set once MADV_POPULATE_READ is refused (Linux before
// 5.14): the prefault is then skipped for good.
var noPopulate atomic.Bool

// newPrefault returns the FirstUse that maps the resident pages of each
// block of data, a region mapped from the front-end's file; nil where it
// cannot (data not page aligned).
func newPrefault(data []byte) *virtio.FirstUse {
	if len(data) == 0 || uint64(uintptr(unsafe.Pointer(&data[0])))%pageSize != 0 || pageSize > prefaultBlock {
		return nil
	}
	f, err := virtio.NewFirstUse(uint64(len(data)), prefaultBlock, mapResident)
	if err != nil {
		return nil
	}
	return f
}

// mapResident maps into this process the pages of block (page aligned, at
// most prefaultBlock long) that are resident in the file behind it, and
// nothing else: MADV_POPULATE_READ on a hole of a shmem file would
// allocate a page, so holes are skipped. What the guest can make this cost
// is bounded: one call per block for the life of the mapping, populating
// at most the guest's own resident RAM; a page the front-end punches out
// between mincore and madvise is the one page that can be allocated (as a
// touch would), and a block past the end of a file that shrank is neither
// resident nor populated (madvise fails with EFAULT where a touch would
// raise SIGBUS). Errors only leave the pages to be faulted as before.
func mapResident(block []byte) {
	if noPopulate.Load() {
		return
	}
	var vec [prefaultBlock / 4096]byte
	block = block[:min(len(block), prefaultBlock)] // vec's size
	pages := (uint64(len(block)) + pageSize - 1) / pageSize
	base := uintptr(unsafe.Pointer(&block[0]))
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, base, uintptr(len(block)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return
	}
	for i := uint64(0); i < pages; {
		if vec[i]&1 == 0 {
			i++
			continue
		}
		j := i + 1
		for j < pages && vec[j]&1 != 0 {
			j++
		}
		_, _, e := unix.Syscall(unix.SYS_MADVISE, base+uintptr(i*pageSize), uintptr((j-i)*pageSize), unix.MADV_POPULATE_READ)
		if e == unix.EINVAL {
			noPopulate.Store(true)
			return
		}
		i = j
	}
}
