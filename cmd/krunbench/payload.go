package main

import (
	"fmt"
	"path/filepath"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
	"github.com/krunbench/krunbench/session"
)

// library returns the payload library with the default init added (the
// CLI is the only place that imports it).
func library(dir string) *initlib.Library {
	lib := initlib.NewLibrary(dir)
	if p, err := defaultinit.Payload(); err == nil {
		lib.AddBuiltin(p)
	}
	return lib
}

// resolvePayload turns --init into a payload, the one resolution of
// payload names that run, the TUI and library list share (see
// payloadName): "default" is the built-in krun init, "none" no payload, a
// name the library lists (a built-in, a file in the library's init/) that
// payload, anything else a file.
func resolvePayload(spec string) (initlib.Payload, error) {
	if spec == "none" {
		return initlib.Payload{}, nil
	}
	if it, ok := payloadName(library(initlib.DefaultDir()), spec); ok {
		return it.Payload()
	}
	p, err := initlib.FromFile(spec)
	if err != nil {
		return p, fmt.Errorf("--init: %w", err)
	}
	return p, nil
}

// payloadName finds the library's payload called spec: "default" (or
// nothing) is the built-in krun init; otherwise the item listed under
// that name.
func payloadName(lib *initlib.Library, spec string) (initlib.Item, bool) {
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
		if it, ok := payloadName(lib, spec); ok {
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
