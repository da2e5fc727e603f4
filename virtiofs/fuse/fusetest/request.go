// Package fusetest builds FUSE requests for tests the way a kernel sends
// them: wire structs encoded with encoding/binary, independently of the
// server's unsafe views of the same structs, so a test also checks their
// layout.
package fusetest

import (
	"bytes"
	"encoding/binary"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Encode writes parts little-endian one after another: a string as its
// bytes and a NUL (a name on the wire), a []byte as it is, anything else
// with encoding/binary (it must be a fixed-size value; panics otherwise).
func Encode(parts ...any) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			b.WriteString(v)
			b.WriteByte(0)
		case []byte:
			b.Write(v)
		default:
			if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
				panic(err)
			}
		}
	}
	return b.Bytes()
}

// Request is a whole request: an InHeader whose Len counts the body,
// then the body encoded as Encode does.
func Request(op uint32, unique, nodeid uint64, body ...any) []byte {
	payload := Encode(body...)
	h := fuse.InHeader{Len: uint32(fuse.InHeaderSize + len(payload)), Opcode: op, Unique: unique, Nodeid: nodeid}
	return append(Encode(h), payload...)
}
