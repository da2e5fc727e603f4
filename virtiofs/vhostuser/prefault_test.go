package vhostuser

import (
	"encoding/binary"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// TestPrefaultMapsTheResidentPagesOfABlock: the fake front-end makes most
// pages of the first block of its high region resident in the guest-RAM
// memfd (every eighth one left a hole), then sends one chain whose buffers
// lie in that block. Afterwards the backend writes to every other resident
// page of the block through its own mapping without a page fault (it took
// one per page before the prefault: write faults map a single page), the
// next block's resident pages are still unmapped there, and the holes are
// still holes: the memfd holds as many blocks as before and mincore(2)
// reports them absent.
func TestPrefaultMapsTheResidentPagesOfABlock(t *testing.T) {
	b, dev := echoBackend(t, Options{Log: testLogger(t)})
	fe, _ := startedPair(t, b)

	const (
		rbuf = highGPA          // the chain's readable buffer
		wbuf = highGPA + 0x1000 // and its writable one
		cold = highGPA + 0x2000 // the rest of the block starts here
	)
	if highGPA+2*prefaultBlock > ringBase(0) {
		t.Fatalf("the test needs two blocks of %#x below queue 0's rings at %#x", prefaultBlock, ringBase(0))
	}
	coldEnd := uint64(highGPA + prefaultBlock)
	hole := func(gpa uint64) bool { return (gpa/virtio.PageSize)%8 == 5 }
	for gpa := uint64(highGPA); gpa < ringBase(0); gpa += virtio.PageSize {
		if !hole(gpa) {
			fe.ram[gpa] = 0xA5 // the high region's GPA is its memfd offset
		}
	}
	var before unix.Stat_t
	must(t, unix.Fstat(fe.memfd, &before))

	d := fe.drivers[0]
	copy(fe.ram[rbuf:], "in the block")
	r, err := d.AllocDesc()
	must(t, err)
	w, err := d.AllocDesc()
	must(t, err)
	d.SetDesc(r, rbuf, 12, virtio.DescFNext, w)
	d.SetDesc(w, wbuf, 64, virtio.DescFWrite, 0)
	d.PushHead(r)
	d.Publish()
	_, err = unix.Write(fe.kick[0], u64Bytes(1))
	must(t, err)
	fe.waitCall(0)
	if used := d.TakeUsed(); len(used) != 1 || used[0].ID != uint32(r) || string(fe.ram[wbuf:wbuf+12]) != "in the block" {
		t.Fatalf("the chain was not echoed: used %+v, %q", used, fe.ram[wbuf:wbuf+12])
	}

	dev.mu.Lock()
	mem := dev.mem
	dev.mu.Unlock()
	backend, err := mem.Slice(cold, coldEnd-cold)
	must(t, err)
	touched, faults := touchResident(backend, cold, hole)
	if faults > 8 {
		t.Errorf("writing %d resident pages of the block after a chain used it: %d page faults, want ~0", touched, faults)
	}

	// The block and no more: resident pages of the next block, past the
	// 64 KiB a fault-around at the block's last page may also map, are
	// still unmapped in the backend's view.
	next, err := mem.Slice(highGPA+prefaultBlock, prefaultBlock)
	must(t, err)
	if n := mappedPages(t, next[64<<10:]); n != 0 {
		t.Errorf("%d pages of the next block are mapped in the backend; want 0", n)
	}

	var after unix.Stat_t
	must(t, unix.Fstat(fe.memfd, &after))
	if after.Blocks != before.Blocks {
		t.Errorf("memfd blocks %d -> %d: the prefault allocated holes", before.Blocks, after.Blocks)
	}
	vec := make([]byte, (ringBase(0)-highGPA)/virtio.PageSize)
	region := fe.ram[highGPA:ringBase(0)]
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&region[0])), uintptr(len(region)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	for i, v := range vec {
		if gpa := highGPA + uint64(i)*virtio.PageSize; hole(gpa) && v&1 != 0 {
			t.Errorf("hole at GPA %#x is resident after the prefault", gpa)
		}
	}
}

// touchResident writes one byte to each page of b (at GPA gpa) that is not
// a hole, on one locked thread, and returns the pages written and the
// minor faults that thread took meanwhile.
func touchResident(b []byte, gpa uint64, hole func(uint64) bool) (pages int, faults int64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r0, r1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &r0); err != nil {
		panic(err)
	}
	for off := uint64(0); off < uint64(len(b)); off += virtio.PageSize {
		if !hole(gpa + off) {
			b[off] = 0x5A
			pages++
		}
	}
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &r1); err != nil {
		panic(err)
	}
	return pages, r1.Minflt - r0.Minflt
}

// mappedPages counts the pages of b that are present in this process's page
// tables (/proc/self/pagemap). It skips the test where shmem may be mapped
// by huge folios, whose one fault maps more than a page.
func mappedPages(t *testing.T, b []byte) int {
	t.Helper()
	if thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled"); err == nil && !strings.Contains(string(thp), "[never]") && !strings.Contains(string(thp), "[deny]") {
		t.Skipf("shmem transparent huge pages on (%s)", strings.TrimSpace(string(thp)))
	}
	f, err := os.Open("/proc/self/pagemap")
	must(t, err)
	defer f.Close()
	pages := len(b) / int(pageSize)
	entries := make([]byte, 8*pages)
	_, err = f.ReadAt(entries, int64(uintptr(unsafe.Pointer(&b[0]))/uintptr(pageSize))*8)
	must(t, err)
	n := 0
	for i := range pages {
		if binary.LittleEndian.Uint64(entries[8*i:])&(1<<63) != 0 {
			n++
		}
	}
	return n
}
