// Package initlib makes the init payload an explicit input: the Payload
// type, the one set of payload rules every entry point applies (CLI run
// and serve, the workbench, session, vmm/builder, overlay.FS.SetPayload),
// the typed init policy checked in one place, and the library of payloads,
// root filesystems and kernels with their verdicts.
//
// The payload rules: an empty payload is an error everywhere
// (ErrEmptyPayload); one larger than MaxPayloadSize is an error where it
// is served (ErrHugePayload, saying both sizes); a script (#!) is served
// with a lasting /init.krun entry, because its interpreter opens it again
// by name, and anything else with libkrun's one-shot entry; before a VM
// exists its contents are checked against the root filesystem
// (CheckContents: architecture, loader, interpreter), a check callers may
// skip.
//
// Memory: a Payload's bytes belong to the caller. Nothing in krunbench
// copies or writes them; the virtio-fs overlay serves guest reads straight
// from them, so the caller keeps them unchanged while a guest may read.
//
// The default init is not here: it lives in initlib/defaultinit (an
// embedded, committed image), which the VMM and virtio-fs packages never
// import; an embedder passes defaultinit.Payload() or its own bytes.
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

// Payload errors: every entry point's payload errors wrap one of them.
var (
	ErrEmptyPayload = errors.New("init payload is empty")
	ErrHugePayload  = errors.New("init payload is too large")
	// ErrBadPayload says the payload could not run as init in the guest
	// (CheckContents).
	ErrBadPayload = errors.New("init payload cannot run")
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

// CheckNotEmpty is the rule for any payload given: it must have bytes.
func (p Payload) CheckNotEmpty() error {
	if len(p.Bytes) == 0 {
		if p.Name != "" {
			return fmt.Errorf("%w: %s", ErrEmptyPayload, p.Name)
		}
		return ErrEmptyPayload
	}
	return nil
}

// CheckServable is the rule for a payload about to be served: not empty
// and at most MaxPayloadSize bytes.
func CheckServable(b []byte) error {
	if err := (Payload{Bytes: b}).CheckNotEmpty(); err != nil {
		return err
	}
	return checkSize(int64(len(b)), "")
}

func checkSize(n int64, what string) error {
	if n <= MaxPayloadSize {
		return nil
	}
	if what != "" {
		what += " "
	}
	return fmt.Errorf("%w: %sis %d bytes, the limit is %d bytes (%d MiB)", ErrHugePayload, what, n, MaxPayloadSize, MaxPayloadSize>>20)
}

// Lasting reports whether a payload needs a lasting /init.krun entry
// rather than libkrun's one-shot one: scripts do, because the kernel runs
// their interpreter, which opens /init.krun again by name.
func Lasting(b []byte) bool { return IsScript(b) }

// CheckContents checks, before any VM exists, that the payload can run as
// the guest's init on the root filesystem rootfs (a host directory; ""
// checks the payload alone): an x86-64 ELF that is static or whose loader
// rootfs has, or a script whose interpreter rootfs has. Its error wraps
// ErrBadPayload (or ErrEmptyPayload) and reads as one line.
func (p Payload) CheckContents(rootfs string) error {
	if err := p.CheckNotEmpty(); err != nil {
		return err
	}
	f := CheckPayload(p.Bytes, rootfs)
	if f.Verdict != Bad {
		return nil
	}
	name := p.Name
	if name == "" {
		name = "payload"
	}
	if rootfs != "" {
		return fmt.Errorf("%w: %s on %s: %s", ErrBadPayload, name, rootfs, f.Detail)
	}
	return fmt.Errorf("%w: %s: %s", ErrBadPayload, name, f.Detail)
}

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
	}
	if err := checkSize(st.Size(), path); err != nil {
		return Payload{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxPayloadSize+1))
	switch {
	case err != nil:
		return Payload{}, fmt.Errorf("init payload: %w", err)
	case len(b) == 0:
		return Payload{}, fmt.Errorf("%w: %s", ErrEmptyPayload, path)
	}
	if err := checkSize(int64(len(b)), path); err != nil {
		return Payload{}, err
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
