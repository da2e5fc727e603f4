package main

import (
	"testing"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/initlib/defaultinit"
)

// TestOnlyTheDefaultInitGetsPorts: run moves stdin/stdout/stderr to
// ports only for the built-in default init, the one init that looks for
// them. With ports, a shell-script init's input went where nobody reads
// (TestShellTemplatePayload hung until its 120 s bound) and a test init's
// output left stdout (TestRunIntoClosedPipe never saw its lines).
func TestOnlyTheDefaultInitGetsPorts(t *testing.T) {
	def := defaultinit.Payload()
	for _, c := range []struct {
		name string
		p    *initlib.Payload
		want bool
	}{
		{"default init", &def, true},
		{"shell-template", &initlib.ShellTemplate, false},
		{"no payload (--init none, --init-policy kernel)", nil, false},
	} {
		if got := initKnowsPorts(c.p); got != c.want {
			t.Errorf("%s: initKnowsPorts = %v, want %v", c.name, got, c.want)
		}
	}
}
