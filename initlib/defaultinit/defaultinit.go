// Package defaultinit is krunbench's default init as a payload: the
// static x86-64 program built from initlib/cmd/krun-init, embedded from
// the image committed next to this file (krun-init). Any Go program can
// import it, inside this module or outside, with no build step and no
// build tag:
//
//	b.SetPayload(defaultinit.Payload()) // b is a *builder.Builder
//
// The image is committed rather than built at install time because `go
// install` and `go get` run no build steps; build.sh is the one way it is
// built (static, -trimpath, no VCS stamp, no symbols), so the same source
// and Go toolchain give the same bytes anywhere, and
// TestImageIsBuiltFromTheTree fails when the committed image is not what
// the tree builds (`make init` rebuilds it).
//
// Memory: Payload's bytes are the binary's own read-only data, never
// copied; the VMM and the virtio-fs overlay serve them in place. The VMM
// and virtio-fs packages never import this package: an embedder that
// brings its own init pays nothing for the default one.
package defaultinit

import (
	_ "embed"
	"unsafe"

	"github.com/krunbench/krunbench/initlib"
)

//go:generate ./build.sh

// Name is the default payload's library name.
const Name = "krun-init (default)"

//go:embed krun-init
var image string

// Payload returns the default init. Its bytes alias the binary's
// read-only data: never copied, and writing to them faults.
func Payload() initlib.Payload {
	return initlib.Payload{
		Name:   Name,
		Origin: "builtin",
		Bytes:  unsafe.Slice(unsafe.StringData(image), len(image)),
	}
}
