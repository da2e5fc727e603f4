package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseBzImageFixture(t *testing.T) {
	data := fixture(t, "bzImage")
	img, err := ParseBzImage(data)
	if err != nil {
		t.Fatal(err)
	}
	if img.Entry != 0x100200 || img.Segments[0].Addr != 0x100000 {
		t.Errorf("entry %#x load %#x", img.Entry, img.Segments[0].Addr)
	}
	sects := int(data[0x1f1])
	if len(img.Segments[0].File) != len(data)-(sects+1)*512 {
		t.Errorf("protected-mode kernel size %d", len(img.Segments[0].File))
	}
	if !bytes.Equal(img.SetupHeader[0x202-0x1f1:][:4], []byte("HdrS")) {
		t.Error("setup header lacks HdrS")
	}
	mem := newTestMem(t, 64<<20)
	img, err = LoadKernel(mem, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mem, img, Config{Cmdline: "console=ttyS0", VCPUs: 1}); err != nil {
		t.Fatal(err)
	}
	zp, _ := mem.Slice(ZeroPageAddr, ZeroPageSize)
	if zp[hdrTypeOfLoader] != 0xff || zp[hdrLoadFlags]&loadFlagHigh == 0 {
		t.Errorf("type_of_loader %#x loadflags %#x", zp[hdrTypeOfLoader], zp[hdrLoadFlags])
	}
	if v := binary.LittleEndian.Uint16(zp[hdrVersion:]); v < 0x20c {
		t.Errorf("protocol version %#x not copied", v)
	}
	long := string(bytes.Repeat([]byte("x"), 4096))
	if err := Setup(mem, img, Config{Cmdline: long, VCPUs: 1}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("4 KiB cmdline with a bzImage limit: %v, want ErrBadConfig", err)
	}
}

func bzHeader(version uint16, xlf uint16, sects byte, size int) []byte {
	b := make([]byte, size)
	le := binary.LittleEndian
	b[hdrSetupSects] = sects
	le.PutUint16(b[hdrBootFlag:], 0xaa55)
	b[hdrJump+1] = 0x6a
	le.PutUint32(b[hdrMagic:], hdrMagicValue)
	le.PutUint16(b[hdrVersion:], version)
	le.PutUint16(b[hdrXLoadFlags:], xlf)
	le.PutUint32(b[hdrCmdlineSize:], 2047)
	return b
}

func TestParseBzImageMalformed(t *testing.T) {
	if _, err := ParseBzImage(bzHeader(0x20f, 1, 4, 8192)); err != nil {
		t.Fatalf("synthetic bzImage: %v", err)
	}
	noMagic := bzHeader(0x20f, 1, 4, 8192)
	copy(noMagic[hdrMagic:], "XXXX")
	noFlag := bzHeader(0x20f, 1, 4, 8192)
	noFlag[hdrBootFlag] = 0
	cases := map[string][]byte{
		"empty":           nil,
		"truncated":       bzHeader(0x20f, 1, 4, 8192)[:0x250],
		"no HdrS":         noMagic,
		"no boot flag":    noFlag,
		"old protocol":    bzHeader(0x205, 1, 4, 8192),
		"no 64-bit entry": bzHeader(0x20f, 0, 4, 8192),
		"setup too big":   bzHeader(0x20f, 1, 200, 8192),
	}
	for name, data := range cases {
		if _, err := ParseBzImage(data); !errors.Is(err, ErrBadKernel) {
			t.Errorf("%s: err = %v, want ErrBadKernel", name, err)
		}
	}
	if _, err := LoadKernel(newTestMem(t, 4<<20), []byte("garbage, neither ELF nor bzImage")); !errors.Is(err, ErrBadKernel) {
		t.Errorf("garbage: %v", err)
	}
}

func TestE820(t *testing.T) {
	got, err := E820([][2]uint64{{0, 0xd0000000}, {1 << 32, 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	want := []E820Entry{{0, 0x9fc00, E820RAM}, {0x100000, 0xd0000000 - 0x100000, E820RAM}, {1 << 32, 1 << 30, E820RAM}}
	if len(got) != len(want) {
		t.Fatalf("E820 = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := E820([][2]uint64{{0, 0x80000}}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("512 KiB RAM: %v", err)
	}
}

func TestZeroPageVmlinux(t *testing.T) {
	e820 := []E820Entry{{0, 0x9fc00, E820RAM}, {0x100000, 0xff00000, E820RAM}}
	zp, err := ZeroPage(BootParams{CmdlineAddr: CmdlineAddr, CmdlineSize: 14, InitrdAddr: 0x8000000, InitrdSize: 0x1000, E820: e820})
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"boot_flag", uint64(le.Uint16(zp[0x1fe:])), 0xaa55},
		{"header", uint64(le.Uint32(zp[0x202:])), 0x53726448},
		{"type_of_loader", uint64(zp[0x210]), 0xff},
		{"ramdisk_image", uint64(le.Uint32(zp[0x218:])), 0x8000000},
		{"ramdisk_size", uint64(le.Uint32(zp[0x21c:])), 0x1000},
		{"cmd_line_ptr", uint64(le.Uint32(zp[0x228:])), 0x20000},
		{"kernel_alignment", uint64(le.Uint32(zp[0x230:])), 0x1000000},
		{"cmdline_size", uint64(le.Uint32(zp[0x238:])), 14},
		{"e820_entries", uint64(zp[0x1e8]), 2},
		{"sentinel", uint64(zp[0x1ef]), 0},
		{"e820[1].addr", le.Uint64(zp[0x2d0+20:]), 0x100000},
		{"e820[1].size", le.Uint64(zp[0x2d0+28:]), 0xff00000},
		{"e820[1].type", uint64(le.Uint32(zp[0x2d0+36:])), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if _, err := ZeroPage(BootParams{E820: make([]E820Entry, 129)}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("129 e820 entries: %v", err)
	}
}

func TestCmdline(t *testing.T) {
	b, err := Cmdline("console=ttyS0", 0)
	if err != nil || string(b) != "console=ttyS0\x00" {
		t.Fatalf("Cmdline = %q, %v", b, err)
	}
	if _, err := Cmdline("a\x00b", 0); !errors.Is(err, ErrBadConfig) {
		t.Errorf("NUL: %v", err)
	}
	if _, err := Cmdline("abcd", 4); !errors.Is(err, ErrBadConfig) {
		t.Errorf("too long: %v", err)
	}
}

func TestMPTable(t *testing.T) {
	for _, n := range []int{1, 2, 16, MaxVCPUs} {
		b, err := MPTable(EBDAStart, n)
		if err != nil {
			t.Fatalf("%d CPUs: %v", n, err)
		}
		le := binary.LittleEndian
		if string(b[:4]) != "_MP_" || checksum(b[:16]) != 0 {
			t.Fatalf("%d CPUs: bad floating pointer %x", n, b[:16])
		}
		if le.Uint32(b[4:]) != EBDAStart+16 {
			t.Errorf("physptr = %#x", le.Uint32(b[4:]))
		}
		cfg := b[16:]
		length := int(le.Uint16(cfg[4:]))
		if string(cfg[:4]) != "PCMP" || length != len(cfg) || checksum(cfg) != 0 {
			t.Fatalf("%d CPUs: bad config table (len %d of %d, sum %d)", n, length, len(cfg), checksum(cfg))
		}
		if len(b) > 1024 {
			t.Errorf("%d CPUs: %d bytes exceed 1 KiB", n, len(b))
		}
		entries := int(le.Uint16(cfg[34:]))
		if entries != n+1+1+16+2 {
			t.Errorf("%d CPUs: %d entries", n, entries)
		}
		// Walk the entries and check CPUs, IOAPIC and routing.
		p := cfg[44:]
		cpus, irqs := 0, 0
		for len(p) > 0 {
			switch p[0] {
			case 0:
				if int(p[1]) != cpus || p[3]&1 == 0 || (p[3]&2 != 0) != (cpus == 0) {
					t.Errorf("CPU entry %d: %x", cpus, p[:20])
				}
				cpus++
				p = p[20:]
			case 2:
				if int(p[1]) != n || le.Uint32(p[4:]) != IOAPICAddr {
					t.Errorf("IOAPIC entry %x", p[:8])
				}
				p = p[8:]
			case 3:
				if p[5] != p[7] || int(p[5]) != irqs || int(p[6]) != n {
					t.Errorf("IRQ entry %x", p[:8])
				}
				irqs++
				p = p[8:]
			default:
				p = p[8:]
			}
		}
		if cpus != n || irqs != 16 {
			t.Errorf("%d CPUs: walked %d CPUs %d IRQs", n, cpus, irqs)
		}
	}
	for _, n := range []int{0, MaxVCPUs + 1} {
		if _, err := MPTable(EBDAStart, n); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%d CPUs: %v", n, err)
		}
	}
}

func TestPageTablesAndGDT(t *testing.T) {
	pml4, pdpt, pd := PageTables()
	le := binary.LittleEndian
	if le.Uint64(pml4) != 0xa003 || le.Uint64(pdpt) != 0xb003 {
		t.Errorf("pml4[0] %#x pdpt[0] %#x", le.Uint64(pml4), le.Uint64(pdpt))
	}
	if le.Uint64(pd) != 0x83 || le.Uint64(pd[8:]) != 0x200083 || le.Uint64(pd[511*8:]) != 511<<21|0x83 {
		t.Errorf("pd entries %#x %#x", le.Uint64(pd), le.Uint64(pd[8:]))
	}
	gdt := BootGDT()
	want := []uint64{0, 0x00af9b000000ffff, 0x00cf93000000ffff, 0x008f8b000000ffff}
	for i := range want {
		if gdt[i] != want[i] {
			t.Errorf("gdt[%d] = %#016x, want %#016x", i, gdt[i], want[i])
		}
	}
	cs := SegmentFromGDT(gdt[1], 1)
	if cs.Selector != 8 || cs.L != 1 || cs.DB != 0 || cs.Type != 0xb || cs.Present != 1 || cs.S != 1 || cs.G != 1 || cs.Limit != 0xffffffff {
		t.Errorf("code segment %+v", cs)
	}
	tr := SegmentFromGDT(gdt[3], 3)
	if tr.Selector != 0x18 || tr.S != 0 || tr.Type != 0xb {
		t.Errorf("TSS segment %+v", tr)
	}
	if SegmentFromGDT(gdt[0], 0).Unusable != 1 {
		t.Error("null segment is usable")
	}
}
