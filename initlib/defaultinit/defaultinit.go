// Package defaultinit embeds krunbench's default init (built from
// initlib/cmd/krun-init by `make init`). Only the CLI imports it: the VMM
// and the virtio-fs packages never embed an init.
//
// The image is embedded only when built with the krunbench_init tag (the
// Makefile sets it after building the init), so a clean clone still
// builds and vets; Payload then returns ErrNotBuilt.
package defaultinit

import (
	"errors"
	"unsafe"

	"github.com/krunbench/krunbench/initlib"
)

// Name is the default payload's library name.
const Name = "krun-init (default)"

// ErrNotBuilt says the binary was built without the default init.
var ErrNotBuilt = errors.New("the default init is not built into this krunbench: run `make init` and build with `make build` (or go build -tags krunbench_init), or pass --init FILE")

// Payload returns the embedded default init. Its bytes alias the binary's
// read-only data: never copied, and writing to them faults.
func Payload() (initlib.Payload, error) {
	if len(image) == 0 {
		return initlib.Payload{}, ErrNotBuilt
	}
	return initlib.Payload{
		Name:   Name,
		Origin: "builtin",
		Bytes:  unsafe.Slice(unsafe.StringData(image), len(image)),
	}, nil
}
