package main

import (
	"fmt"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
)

// library returns the payload library with the default init added (the
// CLI is the only place that imports it).
func library(dir string) *initlib.Library {
	lib := initlib.NewLibrary(dir)
	lib.AddBuiltin(defaultinit.Payload())
	return lib
}

// resolvePayload turns --init into a payload: "default" (the built-in krun
// init), "none", the name of a built-in payload, or a file.
func resolvePayload(spec string) (initlib.Payload, error) {
	switch spec {
	case "", "default":
		return defaultinit.Payload(), nil
	case "none":
		return initlib.Payload{}, nil
	}
	if p, ok := library(initlib.DefaultDir()).Find(spec); ok {
		return p, nil
	}
	p, err := initlib.FromFile(spec)
	if err != nil {
		return p, fmt.Errorf("--init: %w", err)
	}
	return p, nil
}
