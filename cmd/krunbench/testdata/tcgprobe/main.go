// Command tcgprobe is the guest workload of the tests for issue 16
// (programs run from virtio-fs crashing under TCG).
//
// "tcgprobe dma FILE ROUNDS" executes code in a page, lets the virtio-fs backend
// overwrite that page with new code (an O_DIRECT read, which the guest
// kernel's virtio-fs driver hands to the device as the page itself), and
// executes the page again. On real hardware, and under TCG when the new
// bytes arrive through a guest CPU store, the second call runs the new
// code; under TCG with the backend writing guest memory behind QEMU's back,
// it runs the code QEMU translated from the page's old contents.
//
// FILE holds one 4 KiB page per round, page k being "mov eax, k; ret"
// (the host writes it with code's layout). It prints one summary line and
// exits 0 when every round ran the new code.
//
// "tcgprobe stat PATH" prints PATH's mode: a small static program for the
// exec loop, executed from virtio-fs over and over beside busybox.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

const pageSize = 4096

// code returns the page that makes a function return v: mov eax, v; ret,
// padded with int3.
func code(v uint32) []byte {
	p := bytes.Repeat([]byte{0xcc}, pageSize)
	p[0] = 0xb8
	binary.LittleEndian.PutUint32(p[1:], v)
	p[5] = 0xc3
	return p
}

// call runs the code at the start of page as a Go func() int64: a func
// value is a pointer to a word holding the entry PC, and the register ABI
// returns the result in RAX.
func call(page []byte) int64 {
	fv := &struct{ pc uintptr }{uintptr(unsafe.Pointer(&page[0]))}
	f := *(*func() int64)(unsafe.Pointer(&fv))
	return f()
}

func main() {
	switch {
	case len(os.Args) == 4 && os.Args[1] == "dma":
		os.Exit(dma(os.Args[2], os.Args[3]))
	case len(os.Args) == 3 && os.Args[1] == "stat":
		st, err := os.Stat(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "tcgprobe:", err)
			os.Exit(1)
		}
		fmt.Printf("%o\n", st.Mode())
	default:
		fmt.Fprintln(os.Stderr, "usage: tcgprobe dma FILE ROUNDS | tcgprobe stat PATH")
		os.Exit(2)
	}
}

// dma runs the rounds and returns the exit code.
func dma(file, roundsArg string) int {
	rounds, err := strconv.Atoi(roundsArg)
	if err != nil || rounds < 1 {
		fmt.Fprintln(os.Stderr, "tcgprobe: ROUNDS must be a positive number")
		return 2
	}
	page, err := unix.Mmap(-1, 0, pageSize, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcgprobe: mmap:", err)
		return 2
	}
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcgprobe: open:", err)
		return 2
	}
	defer unix.Close(fd)
	stale, wrong := 0, 0
	for k := 1; k <= rounds; k++ {
		old := uint32(1000000 + k)
		copy(page, code(old)) // a CPU store: QEMU drops what it translated
		if got := call(page); got != int64(old) {
			fmt.Fprintf(os.Stderr, "tcgprobe: round %d: CPU-written code returned %d, want %d\n", k, got, old)
			return 2
		}
		n, err := unix.Pread(fd, page, int64(k-1)*pageSize)
		if err != nil || n != pageSize {
			fmt.Fprintf(os.Stderr, "tcgprobe: round %d: O_DIRECT read: %d bytes, %v\n", k, n, err)
			return 2
		}
		if !bytes.Equal(page, code(uint32(k))) {
			wrong++ // the data itself is wrong: a different bug
			continue
		}
		switch got := call(page); got {
		case int64(k):
		case int64(old):
			stale++
		default:
			wrong++
		}
	}
	fmt.Printf("tcgprobe: rounds %d stale %d wrong %d\n", rounds, stale, wrong)
	if stale+wrong > 0 {
		return 1
	}
	return 0
}
