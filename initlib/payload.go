// Package initlib makes the init payload an explicit input: the Payload
// type (caller-owned bytes, never copied), the typed init policy checked in
// one place by every engine's builder, and the library of payloads, root
// filesystems and kernels with their verdicts. The default init is not
// here: it lives in initlib/defaultinit, which only the CLI imports.
package initlib

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxPayloadSize bounds an init payload (the kernel reads it whole into
// the page cache, and krunbench serves it from memory).
const MaxPayloadSize = 256 << 20

// Payload errors.
var (
	ErrEmptyPayload = errors.New("init payload is empty")
	ErrHugePayload  = fmt.Errorf("init payload is larger than %d MiB", MaxPayloadSize>>20)
)

// Payload is an init program served to the guest as /init.krun.
//
// Lifetime rule: Bytes is owned by whoever built the Payload. krunbench
// never copies it and never writes to it; the virtio-fs overlay serves
// reads straight from it. The owner must keep the slice unchanged for as
// long as any session using the payload runs (built-in payloads live in
// read-only memory for the life of the process).
type Payload struct {
	// Name is what the library and the UI call it.
	Name string
	// Origin says where it came from: "builtin", or a file path.
	Origin string
	// Bytes is the program image.
	Bytes []byte
}

// Size returns the payload's length in bytes.
func (p Payload) Size() int { return len(p.Bytes) }

// Set reports whether the payload has bytes to serve.
func (p Payload) Set() bool { return len(p.Bytes) > 0 }

// FromFile reads a payload from a file. The returned bytes belong to the
// caller (the returned Payload), like any other payload's.
func FromFile(path string) (Payload, error) {
	f, err := os.Open(path)
	if err != nil {
		return Payload{}, fmt.Errorf("init payload: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return Payload{}, fmt.Errorf("init payload: %w", err)
	case st.IsDir():
		return Payload{}, fmt.Errorf("init payload: %s is a directory", path)
	case st.Size() > MaxPayloadSize:
		return Payload{}, fmt.Errorf("%w: %s is %d MiB", ErrHugePayload, path, st.Size()>>20)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxPayloadSize+1))
	switch {
	case err != nil:
		return Payload{}, fmt.Errorf("init payload: %w", err)
	case len(b) == 0:
		return Payload{}, fmt.Errorf("%w: %s", ErrEmptyPayload, path)
	case len(b) > MaxPayloadSize:
		return Payload{}, fmt.Errorf("%w: %s", ErrHugePayload, path)
	}
	return Payload{Name: baseName(path), Origin: path, Bytes: b}, nil
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}
