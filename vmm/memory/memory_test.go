package memory

import (
	"errors"
	"testing"

	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/virtio"
)

var _ virtio.GuestMemory = (*Memory)(nil)

func TestLayout(t *testing.T) {
	cases := []struct {
		size uint64
		want [][2]uint64
	}{
		{256 << 20, [][2]uint64{{0, 256 << 20}}},
		{MMIOGapStart, [][2]uint64{{0, MMIOGapStart}}},
		{4 << 30, [][2]uint64{{0, MMIOGapStart}, {1 << 32, 4<<30 - MMIOGapStart}}},
	}
	for _, c := range cases {
		got := Layout(c.size)
		if len(got) != len(c.want) {
			t.Fatalf("Layout(%#x) = %v, want %v", c.size, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Layout(%#x) = %v, want %v", c.size, got, c.want)
			}
		}
	}
}

func TestNewAndAccess(t *testing.T) {
	m, err := New(MMIOGapStart + 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rs := m.Regions()
	if len(rs) != 2 || rs[1].GPA != MMIOGapEnd || uint64(len(rs[1].Data)) != 8<<20 {
		t.Fatalf("regions: %d, high %#x", len(rs), rs[len(rs)-1].GPA)
	}
	if err := m.StoreU64(MMIOGapEnd+8, 0xdeadbeef); err != nil {
		t.Fatal(err)
	}
	if v, err := m.LoadU64(MMIOGapEnd + 8); err != nil || v != 0xdeadbeef {
		t.Fatalf("LoadU64 = %#x, %v", v, err)
	}
	if _, err := m.Slice(MMIOGapStart, 1); !errors.Is(err, virtio.ErrOutOfBounds) {
		t.Fatalf("access in MMIO gap: %v, want ErrOutOfBounds", err)
	}
}

func TestBadSize(t *testing.T) {
	for _, s := range []uint64{0, 4096, MinSize + 1} {
		if _, err := New(s); !errors.Is(err, ErrBadSize) {
			t.Errorf("New(%#x) = %v, want ErrBadSize", s, err)
		}
	}
}

type fakeVM struct{ slots []uint32 }

func (f *fakeVM) SetUserMemoryRegion(slot uint32, gpa uint64, mem []byte) error {
	f.slots = append(f.slots, slot)
	return nil
}

func TestRegister(t *testing.T) {
	m, err := New(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var f fakeVM
	if err := m.Register(&f); err != nil || len(f.slots) != 1 {
		t.Fatalf("Register: %v, slots %v", err, f.slots)
	}
	if err := kvm.KVMUsable(); err != nil {
		t.Skipf("KVM not usable on this machine, skipping the KVM part: %v", err)
	}
	sys, err := kvm.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := m.Register(vm); err != nil {
		t.Fatal(err)
	}
}
