package main

import (
	"errors"
	"fmt"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
)

// library returns the payload library with the default init added.
func library(dir string) *initlib.Library {
	lib := initlib.NewLibrary(dir)
	lib.AddBuiltin(defaultinit.Payload())
	return lib
}

// resolvePayload turns --init into a payload: "default" (the built-in krun
// init), "none" (nil: no payload), the name of a built-in payload, or a
// file. initlib's rules apply (an empty file is initlib.ErrEmptyPayload).
func resolvePayload(spec string) (*initlib.Payload, error) {
	switch spec {
	case "", "default":
		p := defaultinit.Payload()
		return &p, nil
	case "none":
		return nil, nil
	}
	if p, ok := library(initlib.DefaultDir()).Find(spec); ok {
		return &p, nil
	}
	p, err := initlib.FromFile(spec)
	if err != nil {
		return nil, fmt.Errorf("--init: %w", err)
	}
	return &p, nil
}

// checkPayloadOn checks, before any VM or mount exists, that the payload
// can run as init on rootfs (initlib's CheckContents), unless skip.
func checkPayloadOn(p *initlib.Payload, rootfs string, skip bool) error {
	if p == nil || skip {
		return nil
	}
	return withFlags(p.CheckContents(rootfs))
}

// withFlags adds the CLI's flags to a library error about the payload: a
// policy's Fix names the flags that meet it, and a payload that cannot
// run names the flag that skips the check.
func withFlags(err error) error {
	var pe *initlib.PolicyError
	switch {
	case errors.Is(err, initlib.ErrBadPayload):
		return fmt.Errorf("--init: %w (--no-payload-check skips this check)", err)
	case errors.Is(err, initlib.ErrEmptyPayload) || errors.Is(err, initlib.ErrHugePayload):
		return fmt.Errorf("--init: %w", err)
	case !errors.As(err, &pe):
		return err
	}
	switch pe.Policy {
	case initlib.InitKrun:
		pe.Fix = "pass --init default, --init NAME or --init FILE"
	case initlib.KernelInit:
		pe.Fix = "pass --kernel-init /sbin/init (an init inside the root filesystem)"
	}
	return err
}

// payloadName is how recordings and messages name a payload.
func payloadName(p *initlib.Payload) string {
	if p == nil {
		return "none"
	}
	return p.Name
}
