package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
	"github.com/krunbench/krunbench/session"
)

// library returns the payload library with the default init added.
func library(dir string) *initlib.Library {
	lib := initlib.NewLibrary(dir)
	lib.AddBuiltin(defaultinit.Payload())
	return lib
}

// resolvePayload turns --init into a payload, the one resolution of
// payload names that run, serve, the TUI and library list share (see
// libraryPayload): "default" (or nothing) is the built-in krun init,
// "none" no payload (nil), a name the library lists (a built-in, a file in
// the library's init/) that payload, anything else a file. initlib's rules
// apply (an empty file is initlib.ErrEmptyPayload).
func resolvePayload(spec string) (*initlib.Payload, error) {
	if spec == "none" {
		return nil, nil
	}
	if it, ok := libraryPayload(library(initlib.DefaultDir()), spec); ok {
		p, err := it.Payload()
		if err != nil {
			return nil, fmt.Errorf("--init: %w", err)
		}
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

// libraryPayload finds the library's payload called spec: "default" (or
// nothing) is the built-in krun init; otherwise the item listed under
// that name.
func libraryPayload(lib *initlib.Library, spec string) (initlib.Item, bool) {
	if spec == "" || spec == "default" {
		spec = defaultinit.Name
	}
	for _, it := range lib.Items("") {
		if it.Kind == initlib.KindInit && it.Name == spec {
			return it, true
		}
	}
	return initlib.Item{}, false
}

// addInits adds the --init specs of the TUI and library list: names the
// library knows are already listed; the rest are files. It returns the
// names of the listed payloads the specs meant, for the TUI to pick.
func addInits(lib *initlib.Library, specs []string) (names []string) {
	for _, spec := range specs {
		if it, ok := libraryPayload(lib, spec); ok {
			names = append(names, it.Name)
			continue
		}
		lib.AddPaths(initlib.KindInit, spec)
		names = append(names, filepath.Base(spec))
	}
	return names
}

// addKernels adds the kernels given and the one krunbench run would use
// (session.FindKernel), so that every listing agrees with run.
func addKernels(lib *initlib.Library, given []string) {
	lib.AddPaths(initlib.KindKernel, given...)
	if k, err := session.FindKernel(""); err == nil {
		lib.AddPaths(initlib.KindKernel, k)
	}
}

// libraryItems lists the library for rootfs, each file once: a directory
// or file given with a flag that is also in the library directory (or
// given twice) is listed at its first mention.
func libraryItems(lib *initlib.Library, rootfs string) []initlib.Item {
	seen := map[string]bool{}
	var out []initlib.Item
	for _, it := range lib.Items(rootfs) {
		if it.Path != "" {
			key := string(it.Kind) + "\x00" + canonicalPath(it.Path)
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		out = append(out, it)
	}
	return out
}

// canonicalPath names a file the same however it was spelled.
func canonicalPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	return p
}
