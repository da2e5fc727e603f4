package fuse

// DirList accumulates READDIR / READDIRPLUS entries into a buffer of at most
// the size the client asked for. Entries are 8-byte aligned, as fuse.h says.
type DirList struct {
	buf  []byte
	max  int
	plus bool
}

// NewDirList returns a list that holds at most max bytes.
func NewDirList(buf []byte, max int, plus bool) *DirList {
	if cap(buf) < max {
		buf = make([]byte, 0, max)
	}
	return &DirList{buf: buf[:0], max: max, plus: plus}
}

// Plus reports whether entries must carry an EntryOut.
func (l *DirList) Plus() bool { return l.plus }

// Bytes returns the encoded entries.
func (l *DirList) Bytes() []byte { return l.buf }

// Len returns the number of encoded bytes.
func (l *DirList) Len() int { return len(l.buf) }

func align8(n int) int { return (n + 7) &^ 7 }

// Fits reports whether an entry with this name still fits.
func (l *DirList) Fits(name string) bool {
	return len(l.buf)+l.EntrySize(name) <= l.max
}

// EntrySize is the number of bytes an entry with this name takes in the
// list, padding included.
func (l *DirList) EntrySize(name string) int {
	n := direntSize + len(name)
	if l.plus {
		n += EntryOutSize
	}
	return align8(n)
}

// Room is the number of bytes still free in the list.
func (l *DirList) Room() int { return l.max - len(l.buf) }

// Add appends a READDIR entry; it returns false, adding nothing, when the
// entry does not fit. off is the cookie the client passes to continue after it.
func (l *DirList) Add(ino, off uint64, typ uint32, name string) bool {
	if l.plus {
		var zero EntryOut
		return l.AddPlus(&zero, ino, off, typ, name)
	}
	return l.add(nil, ino, off, typ, name)
}

// AddPlus appends a READDIRPLUS entry. A zero entry.Nodeid tells the client
// no lookup was done for it (used for "." and "..").
func (l *DirList) AddPlus(entry *EntryOut, ino, off uint64, typ uint32, name string) bool {
	return l.add(entry, ino, off, typ, name)
}

func (l *DirList) add(entry *EntryOut, ino, off uint64, typ uint32, name string) bool {
	if !l.Fits(name) {
		return false
	}
	if l.plus {
		if entry == nil {
			entry = &EntryOut{}
		}
		l.buf = append(l.buf, asBytes(entry)...)
	}
	h := direntHeader{Ino: ino, Off: off, Namelen: uint32(len(name)), Type: typ}
	l.buf = append(l.buf, asBytes(&h)...)
	l.buf = append(l.buf, name...)
	for len(l.buf)%8 != 0 {
		l.buf = append(l.buf, 0)
	}
	return true
}
