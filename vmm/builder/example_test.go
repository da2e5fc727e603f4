package builder_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/builder"
)

// A program that embeds the VMM builds a VM whose init is its own
// payload, the Go counterpart of libkrun's krun_set_init. The payload's
// bytes stay the program's: the root device serves them in place. Where
// this machine has no guest kernel ($KRUNBENCH_KERNEL) or no KVM, the
// example stops before building; what it prints is the same either way.
func ExampleBuilder_SetPayload() {
	// The guest's root: a host directory, served with the overlay that
	// adds /init.krun.
	dir, err := os.MkdirTemp("", "guest-root")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	host, err := passthrough.New(dir, passthrough.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	root := overlay.New(host)

	b := builder.New(builder.Config{Kernel: os.Getenv("KRUNBENCH_KERNEL"), VCPUs: 1, MemMiB: 256}).
		AddFS(builder.FSDevice{Tag: initlib.RootTag, Server: fuse.NewServer(root, fuse.Options{})})

	// The init.krun policy (the default) needs a payload.
	fmt.Println(b.Validate())

	// The program's own init: any static x86-64 program or script. This
	// one is a 129-byte program that exits; initlib/defaultinit.Payload()
	// would give krunbench's default init instead.
	myInit := initlib.Payload{Name: "my-init", Bytes: initlib.ExitAtOnce.Bytes}
	err = b.SetPayload(myInit).Validate()
	fmt.Println("payload accepted:", !errors.Is(err, initlib.ErrPolicy) && !errors.Is(err, initlib.ErrBadPayload))
	if err != nil {
		return // no guest kernel here
	}
	vm, err := b.Build(context.Background())
	if err != nil {
		return // no KVM here
	}
	defer vm.Close()
	if &root.Payload()[0] != &myInit.Bytes[0] {
		panic("the root serves a copy of the payload")
	}
	// vm.Run(ctx) would boot the guest now.

	// Output:
	// init policy init.krun: the root virtio-fs device serves no init payload: set one with Builder.SetPayload or overlay.FS.SetPayload (initlib/defaultinit.Payload() is the default init)
	// payload accepted: true
}
