package defaultinit

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/initlib"
)

func TestPayloadIsTheBuiltInitOrADedicatedError(t *testing.T) {
	p, err := Payload()
	if image == "" {
		if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "make init") {
			t.Fatalf("without the init built: %v, want ErrNotBuilt saying how to build it", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if f := initlib.CheckPayload(p.Bytes, ""); f.Verdict != initlib.OK || !strings.Contains(f.Detail, "static") {
		t.Fatalf("embedded init: %v", f)
	}
	again, _ := Payload()
	if &again.Bytes[0] != &p.Bytes[0] {
		t.Fatal("the embedded image was copied")
	}
}

// TestOnlyTheCLIImportsTheDefaultInit checks the architecture rule: the
// VMM and virtio-fs packages never depend on the default init.
func TestOnlyTheCLIImportsTheDefaultInit(t *testing.T) {
	const self = "github.com/krunbench/krunbench/initlib/defaultinit"
	out, err := exec.Command("go", "list", "-deps", "../../vmm/...", "../../virtiofs/...", "../../session/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), self) {
		t.Fatalf("vmm/, virtiofs/ or session/ depend on %s", self)
	}
	out, err = exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../../...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if strings.Contains(" "+imports+" ", " "+self+" ") && pkg != "github.com/krunbench/krunbench/cmd/krunbench" {
			t.Errorf("%s imports the default init; only the CLI may", pkg)
		}
	}
}
