package initlib

import (
	"errors"
	"fmt"
)

// Policy says where the guest's init comes from.
type Policy int

// Init policies.
const (
	// InitKrun runs /init.krun, served from the root virtio-fs device
	// (tag /dev/root), whose payload must be set. libkrun's way.
	InitKrun Policy = iota
	// KernelInit passes init=PATH to the kernel: an init inside the root
	// filesystem itself (e.g. /sbin/init); no payload is served.
	KernelInit
	// NoInit leaves the choice to the kernel (it tries /sbin/init,
	// /etc/init, /bin/init, /bin/sh).
	NoInit
)

// RootTag is the virtio-fs tag the kernel mounts as / (rootfstype=virtiofs
// with no root=: the source "/dev/root" is taken as the tag).
const RootTag = "/dev/root"

// String names the policy as the CLI spells it.
func (p Policy) String() string {
	switch p {
	case InitKrun:
		return "init.krun"
	case KernelInit:
		return "kernel"
	case NoInit:
		return "none"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy reads a policy name.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range []Policy{InitKrun, KernelInit, NoInit} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown init policy %q (init.krun, kernel, none)", s)
}

// ErrPolicy is wrapped by every *PolicyError.
var ErrPolicy = errors.New("init policy not satisfied")

// PolicyError says which requirement of a policy the VM config misses.
type PolicyError struct {
	Policy  Policy
	Missing string
	// Fix says how to meet the requirement, in the words of the API at
	// hand: Check names initlib's and the builder's; a caller with other
	// words (the CLI's flags) replaces it.
	Fix string
}

func (e *PolicyError) Error() string {
	if e.Fix == "" {
		return fmt.Sprintf("init policy %s: %s", e.Policy, e.Missing)
	}
	return fmt.Sprintf("init policy %s: %s: %s", e.Policy, e.Missing, e.Fix)
}

// Unwrap returns ErrPolicy.
func (e *PolicyError) Unwrap() error { return ErrPolicy }

// InitServer is a filesystem that can serve /init.krun
// (virtiofs/overlay.FS is one). Payload returns the bytes it serves now:
// empty when /init.krun does not exist.
type InitServer interface {
	Payload() []byte
}

// FSDevice is what the policy check needs to know of a virtio-fs device:
// its tag and its filesystem, which the check asks whether it serves
// /init.krun. There is no flag to claim a payload: only a filesystem that
// serves one passes.
type FSDevice struct {
	Tag string
	// FS is the device's filesystem (a fuse.FileSystem); for the init.krun
	// policy the root device's must be an InitServer with a payload.
	FS any
}

// InitSpec is the init part of a VM config: the policy and its inputs.
type InitSpec struct {
	Policy Policy
	// KernelInitPath is init= for KernelInit.
	KernelInitPath string
}

// Check validates the init policy against the VM's virtio-fs devices. It
// is the one place where policies are enforced; every engine calls it
// before starting anything. For init.krun it asks the root device's
// filesystem itself whether it serves a payload.
func (s InitSpec) Check(devices []FSDevice) error {
	switch s.Policy {
	case InitKrun:
		for _, d := range devices {
			if d.Tag != RootTag {
				continue
			}
			srv, ok := d.FS.(InitServer)
			if !ok {
				return &PolicyError{Policy: s.Policy, Missing: "the root virtio-fs device's filesystem cannot serve /init.krun",
					Fix: "wrap it in a virtiofs/overlay.FS"}
			}
			if len(srv.Payload()) == 0 {
				return &PolicyError{Policy: s.Policy, Missing: "the root virtio-fs device serves no init payload",
					Fix: "set one with Builder.SetPayload or overlay.FS.SetPayload (initlib/defaultinit.Payload() is the default init)"}
			}
			return nil
		}
		return &PolicyError{Policy: s.Policy, Missing: "no root virtio-fs device (tag " + RootTag + ")"}
	case KernelInit:
		if s.KernelInitPath == "" || s.KernelInitPath[0] != '/' {
			return &PolicyError{Policy: s.Policy, Missing: "an absolute init path for the kernel", Fix: "set InitSpec.KernelInitPath (e.g. /sbin/init)"}
		}
		return nil
	case NoInit:
		return nil
	}
	return &PolicyError{Policy: s.Policy, Missing: "a known policy"}
}

// KernelParam returns the init= word for the kernel command line ("" for
// NoInit).
func (s InitSpec) KernelParam() string {
	switch s.Policy {
	case InitKrun:
		return "/init.krun"
	case KernelInit:
		return s.KernelInitPath
	}
	return ""
}
