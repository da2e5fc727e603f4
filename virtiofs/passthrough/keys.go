package passthrough

import (
	"hash/maphash"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// keyTable finds an inode again from a stat: an open-addressed table
// (linear probing) of slot numbers, keyed by the (dev, ino) stored in the
// slot's own record, so an entry costs 4 bytes instead of a map's 24-byte
// key and 8-byte pointer. Slot 0 marks an empty entry (slots 0 and 2 are
// never handed out), fuse.RootID (slot 1, whose slab record is a
// placeholder) is the root.
//
// Invariant, under inodeTable.mu: every entry names a record that is in
// the table (not gone) and no two entries share a key. A record's key
// never changes while it has an entry: removeLocked and the replacement
// of a reused host inode number drop the entry first, and freeLocked
// (which clears the record) runs only after that.
//
// It replaced map[inodeKey]*inode: live heap after a GC of such a map
// alone (Go 1.26) was 853 KiB at 15,016 entries (58 B each) and 3,413 KiB
// at 100,101 (35 B each); this table holds 32,768 and 262,144 entries
// there, 128 KiB and 1,024 KiB (it doubles at 3/4 full). TestInodeMemory
// (4,000 lookups): 168 bytes of live heap and 1.02 allocations per new
// inode with the map, 117 and 0.01 with this table.
type keyTable struct {
	slots []uint32
	n     int
	seed  uint64
}

// keyTableMin is the first capacity, a power of two.
const keyTableMin = 64

// hash mixes a key with the table's random seed (murmur3's finalizer), so
// that a guest that can choose inode numbers (on a filesystem that lets
// it) cannot make every key probe the same run.
func (k inodeKey) hash(seed uint64) uint64 {
	h := k.ino ^ seed
	h ^= (k.dev + seed) * 0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// record returns the inode slot names: the root for fuse.RootID.
func (t *inodeTable) record(slot uint32) *inode {
	if slot == fuse.RootID {
		return t.root
	}
	return &t.slabs[slot/slabSize][slot%slabSize]
}

// keyGetLocked returns the inode in the table with key, or nil.
func (t *inodeTable) keyGetLocked(key inodeKey) *inode {
	k := &t.keys
	if k.n == 0 {
		return nil
	}
	mask := uint64(len(k.slots) - 1)
	for i := key.hash(k.seed) & mask; ; i = (i + 1) & mask {
		s := k.slots[i]
		if s == 0 {
			return nil
		}
		if in := t.record(s); in.key == key {
			return in
		}
	}
}

// keySetLocked enters in, whose key the table must not hold yet.
func (t *inodeTable) keySetLocked(in *inode) {
	k := &t.keys
	if k.slots == nil {
		// A random seed without crypto/rand, which would add 230 KB to
		// the binary (and ~280 KiB of file RSS after a walk, measured).
		k.seed = maphash.Comparable(maphash.MakeSeed(), uint64(0))
		k.slots = make([]uint32, keyTableMin)
	}
	if (k.n+1)*4 > len(k.slots)*3 {
		old := k.slots
		k.slots = make([]uint32, 2*len(old))
		for _, s := range old {
			if s != 0 {
				t.keyPlace(s)
			}
		}
	}
	t.keyPlace(uint32(in.nodeid))
	k.n++
}

// keyPlace puts slot at the first free entry of its probe run.
func (t *inodeTable) keyPlace(slot uint32) {
	k := &t.keys
	mask := uint64(len(k.slots) - 1)
	i := t.record(slot).key.hash(k.seed) & mask
	for k.slots[i] != 0 {
		i = (i + 1) & mask
	}
	k.slots[i] = slot
}

// keyDeleteLocked removes in's entry if it has one (another inode with
// the same key may hold it: a reused host inode number). The entries after
// it in its run move back over the hole (no tombstones), each as far as
// its home position allows.
func (t *inodeTable) keyDeleteLocked(in *inode) {
	k := &t.keys
	if k.n == 0 {
		return
	}
	slot := uint32(in.nodeid)
	mask := uint64(len(k.slots) - 1)
	i := in.key.hash(k.seed) & mask
	for k.slots[i] != slot {
		if k.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; k.slots[j] != 0; j = (j + 1) & mask {
		home := t.record(k.slots[j]).key.hash(k.seed) & mask
		// The entry at j may fill the hole at i unless its home lies in
		// (i, j], cyclically.
		if (j-home)&mask >= (j-i)&mask {
			k.slots[i] = k.slots[j]
			i = j
		}
	}
	k.slots[i] = 0
	k.n--
}

// keyCountLocked is the number of entries (for tests).
func (t *inodeTable) keyCountLocked() int { return t.keys.n }
