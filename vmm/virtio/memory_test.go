package virtio_test

import (
	"errors"
	"math"
	"testing"

	"github.com/krunbench/krunbench/vmm/virtio"
)

func newMem(t *testing.T, regions ...virtio.Region) *virtio.Memory {
	t.Helper()
	m, err := virtio.NewMemory(regions...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewMemoryRejects(t *testing.T) {
	page := func() []byte { return make([]byte, virtio.PageSize) }
	cases := map[string][]virtio.Region{
		"empty":          {{GPA: 0, Data: nil}},
		"gpa unaligned":  {{GPA: 0x800, Data: page()}},
		"len unaligned":  {{GPA: 0, Data: make([]byte, 100)}},
		"wraps":          {{GPA: math.MaxUint64 - virtio.PageSize + 1, Data: page()}},
		"host unaligned": {{GPA: 0, Data: make([]byte, 2*virtio.PageSize)[1 : virtio.PageSize+1]}},
		"overlap":        {{GPA: 0, Data: make([]byte, 2*virtio.PageSize)}, {GPA: virtio.PageSize, Data: page()}},
	}
	for name, rs := range cases {
		if _, err := virtio.NewMemory(rs...); !errors.Is(err, virtio.ErrBadRegion) {
			t.Errorf("%s: got %v, want ErrBadRegion", name, err)
		}
	}
}

func TestMemorySlice(t *testing.T) {
	a := make([]byte, 2*virtio.PageSize)
	b := make([]byte, virtio.PageSize)
	c := make([]byte, virtio.PageSize)
	// b directly follows a; c is after a hole. Given out of order on purpose.
	m := newMem(t, virtio.Region{GPA: 0x10000, Data: c}, virtio.Region{GPA: 0x1000, Data: a}, virtio.Region{GPA: 0x3000, Data: b})

	s, err := m.Slice(0x1010, 16)
	if err != nil || len(s) != 16 || cap(s) != 16 {
		t.Fatalf("Slice: %v len %d cap %d", err, len(s), cap(s))
	}
	s[0] = 0xAB
	if a[0x10] != 0xAB {
		t.Fatal("slice does not alias region memory")
	}
	s, err = m.Slice(0x10000+virtio.PageSize-1, 1)
	if err != nil || &s[0] != &c[virtio.PageSize-1] {
		t.Fatalf("last byte of c: %v", err)
	}
	bad := []struct{ gpa, n uint64 }{
		{0, 1},                          // below all regions
		{0x2ff0, 0x20},                  // crosses a->b (Slice needs one region)
		{0x3000 + virtio.PageSize, 1},   // in the hole
		{0x1000, 3*virtio.PageSize + 1}, // runs past b
		{0x10000, math.MaxUint64},       // huge
		{math.MaxUint64, 2},             // overflow
		{0x10000 + virtio.PageSize, 0},  // zero length outside
	}
	for _, c := range bad {
		if _, err := m.Slice(c.gpa, c.n); !errors.Is(err, virtio.ErrOutOfBounds) {
			t.Errorf("Slice(%#x, %#x) = %v, want ErrOutOfBounds", c.gpa, c.n, err)
		}
	}

	parts, err := m.AppendSlices(nil, 0x2ff0, 0x20)
	if err != nil || len(parts) != 2 || len(parts[0]) != 0x10 || len(parts[1]) != 0x10 {
		t.Fatalf("AppendSlices across contiguous regions: %v %d", err, len(parts))
	}
	if &parts[1][0] != &b[0] {
		t.Fatal("second part does not alias b")
	}
	for _, c := range []struct{ gpa, n uint64 }{
		{0x3ff0, 0x20},          // b -> hole
		{math.MaxUint64 - 1, 4}, // overflow
		{0x1000, math.MaxUint64},
	} {
		if _, err := m.AppendSlices(nil, c.gpa, c.n); !errors.Is(err, virtio.ErrOutOfBounds) {
			t.Errorf("AppendSlices(%#x, %#x) = %v, want ErrOutOfBounds", c.gpa, c.n, err)
		}
	}
	if parts, err := m.AppendSlices(nil, 0, 0); err != nil || len(parts) != 0 {
		t.Errorf("zero-length AppendSlices: %v %d", err, len(parts))
	}
}

func TestMemoryIntegers(t *testing.T) {
	buf := make([]byte, virtio.PageSize)
	m := newMem(t, virtio.Region{GPA: 0x4000, Data: buf})
	for i := range buf[:16] {
		buf[i] = 0x11 * byte(i)
	}
	if err := m.StoreU16(0x4002, 0xBEEF); err != nil {
		t.Fatal(err)
	}
	want := []byte{0x00, 0x11, 0xEF, 0xBE, 0x44}
	if string(buf[:5]) != string(want) {
		t.Fatalf("StoreU16 at +2 wrote % x, want % x (neighbours preserved)", buf[:5], want)
	}
	if err := m.StoreU16(0x4000, 0x1234); err != nil || buf[0] != 0x34 || buf[1] != 0x12 || buf[2] != 0xEF {
		t.Fatalf("StoreU16 at +0: %v % x", err, buf[:4])
	}
	if v, _ := m.LoadU16(0x4002); v != 0xBEEF {
		t.Fatalf("LoadU16 = %#x", v)
	}
	if err := m.StoreU32(0x4008, 0xA1B2C3D4); err != nil || buf[8] != 0xD4 || buf[11] != 0xA1 {
		t.Fatalf("StoreU32: %v % x", err, buf[8:12])
	}
	if v, _ := m.LoadU32(0x4008); v != 0xA1B2C3D4 {
		t.Fatalf("LoadU32 = %#x", v)
	}
	if err := m.StoreU64(0x4010, 0x0102030405060708); err != nil || buf[0x10] != 8 || buf[0x17] != 1 {
		t.Fatalf("StoreU64: %v", err)
	}
	if v, _ := m.LoadU64(0x4010); v != 0x0102030405060708 {
		t.Fatalf("LoadU64 = %#x", v)
	}
	if v, _ := m.LoadU16(0x4000 + virtio.PageSize - 2); v != 0 {
		t.Fatalf("LoadU16 at end = %#x", v)
	}
	if _, err := m.LoadU16(0x4001); !errors.Is(err, virtio.ErrMisaligned) {
		t.Errorf("LoadU16 misaligned: %v", err)
	}
	if err := m.StoreU32(0x4002, 0); !errors.Is(err, virtio.ErrMisaligned) {
		t.Errorf("StoreU32 misaligned: %v", err)
	}
	if _, err := m.LoadU64(0x4004); !errors.Is(err, virtio.ErrMisaligned) {
		t.Errorf("LoadU64 misaligned: %v", err)
	}
	if _, err := m.LoadU16(0x4000 + virtio.PageSize); !errors.Is(err, virtio.ErrOutOfBounds) {
		t.Errorf("LoadU16 past end: %v", err)
	}
	if err := m.StoreU64(0x3ff8, 0); !errors.Is(err, virtio.ErrOutOfBounds) {
		t.Errorf("StoreU64 before start: %v", err)
	}
}
