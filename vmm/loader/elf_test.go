package loader

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"unsafe"

	"github.com/krunbench/krunbench/vmm/virtio"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	for _, p := range []string{os.Getenv("KRUNBENCH_GUEST_DIR") + "/" + name, "../../shared/guest/" + name, "/work/shared/guest/" + name} {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	t.Skipf("guest fixture %s not found (set KRUNBENCH_GUEST_DIR)", name)
	return nil
}

// testMem is guest RAM backed by a Go slice: one region at 0.
type testMem struct{ *virtio.Memory }

func newTestMem(t *testing.T, size int) testMem {
	t.Helper()
	buf := make([]uint64, size/8)
	b := unsafeBytes(buf)
	m, err := virtio.NewMemory(virtio.Region{GPA: 0, Data: b})
	if err != nil {
		t.Fatal(err)
	}
	return testMem{m}
}

// minimalELF builds a one-segment x86-64 ELF executable.
func minimalELF(class, machine byte, paddr, entry uint64, payload []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, 64+56)
	copy(b, []byte{0x7f, 'E', 'L', 'F', class, 1, 1})
	le.PutUint16(b[16:], 2)
	le.PutUint16(b[18:], uint16(machine))
	le.PutUint64(b[24:], entry)
	le.PutUint64(b[32:], 64)
	le.PutUint16(b[52:], 64)
	le.PutUint16(b[54:], 56)
	le.PutUint16(b[56:], 1)
	ph := b[64:]
	le.PutUint32(ph[0:], 1)
	le.PutUint64(ph[8:], uint64(len(b)))
	le.PutUint64(ph[16:], paddr)
	le.PutUint64(ph[24:], paddr)
	le.PutUint64(ph[32:], uint64(len(payload)))
	le.PutUint64(ph[40:], uint64(len(payload))+16)
	return append(b, payload...)
}

func TestParseELFFixture(t *testing.T) {
	data := fixture(t, "vmlinux")
	img, err := ParseELF(data)
	if err != nil {
		t.Fatal(err)
	}
	if img.Entry != 0x1000000 {
		t.Errorf("entry = %#x, want 0x1000000", img.Entry)
	}
	if img.SetupHeader != nil {
		t.Error("vmlinux has a setup header")
	}
	for _, s := range img.Segments {
		if s.Addr < 0x1000000 {
			t.Errorf("segment at %#x below 16 MiB", s.Addr)
		}
	}
	mem := newTestMem(t, 64<<20)
	if _, err := LoadKernel(mem, data); err != nil {
		t.Fatal(err)
	}
	small := newTestMem(t, 8<<20)
	if _, err := LoadKernel(small, data); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("loading into 8 MiB: %v, want ErrNoRoom", err)
	}
}

func TestParseELFMalformed(t *testing.T) {
	good := minimalELF(2, 62, 0x200000, 0x200000, []byte{0xf4})
	if _, err := ParseELF(good); err != nil {
		t.Fatalf("minimal ELF: %v", err)
	}
	mut := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	cases := map[string][]byte{
		"empty":         {},
		"not ELF":       []byte("MZ this is not an ELF file at all, but long enough to have a header......"),
		"32-bit":        minimalELF(1, 62, 0x200000, 0x200000, []byte{0xf4}),
		"aarch64":       minimalELF(2, 183, 0x200000, 0x200000, []byte{0xf4}),
		"truncated hdr": good[:40],
		"truncated ph":  good[:64+20],
		"entry outside": minimalELF(2, 62, 0x200000, 0x900000, []byte{0xf4}),
		"big-endian":    mut(func(b []byte) []byte { b[5] = 2; return b }),
		"huge phnum":    mut(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[56:], 0xffff); return b }),
		"bad phentsize": mut(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[54:], 32); return b }),
		"phoff beyond":  mut(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[32:], 1<<62); return b }),
		"filesz beyond": mut(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[64+32:], 1<<40); return b }),
		"memsz<filesz":  mut(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[64+40:], 0); return b }),
		"wrapping":      mut(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[64+24:], ^uint64(0)); return b }),
		"no PT_LOAD":    mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[64:], 4); return b }),
	}
	for name, data := range cases {
		if _, err := ParseELF(data); !errors.Is(err, ErrBadKernel) {
			t.Errorf("%s: err = %v, want ErrBadKernel", name, err)
		}
	}
}

func TestLoadOutsideRAM(t *testing.T) {
	mem := newTestMem(t, 4<<20)
	low := minimalELF(2, 62, 0x1000, 0x1000, []byte{0xf4})
	if _, err := LoadKernel(mem, low); !errors.Is(err, ErrBadKernel) {
		t.Errorf("segment below 1 MiB: %v, want ErrBadKernel", err)
	}
	high := minimalELF(2, 62, 0x10000000, 0x10000000, []byte{0xf4})
	if _, err := LoadKernel(mem, high); !errors.Is(err, ErrNoRoom) {
		t.Errorf("segment beyond RAM: %v, want ErrNoRoom", err)
	}
	img, err := LoadKernel(mem, minimalELF(2, 62, 0x200000, 0x200000, []byte{0xf4}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := mem.Slice(0x200000, 17)
	if b[0] != 0xf4 || b[16] != 0 || img.Entry != 0x200000 {
		t.Errorf("loaded bytes %x entry %#x", b, img.Entry)
	}
}

func FuzzParseKernel(f *testing.F) {
	f.Add(minimalELF(2, 62, 0x200000, 0x200000, []byte{0xf4}))
	f.Add(make([]byte, 0x300))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseELF(data)
		ParseBzImage(data)
	})
}

// unsafeBytes views an 8-byte aligned []uint64 as bytes (virtio.NewMemory
// requires 8-byte aligned regions).
func unsafeBytes(b []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), len(b)*8)
}
