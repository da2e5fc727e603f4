package defaultinit

import (
	"bytes"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/initlib"
)

func TestPayloadIsTheStaticInitServedInPlace(t *testing.T) {
	p := Payload()
	if f := initlib.CheckPayload(p.Bytes, ""); f.Verdict != initlib.OK || !strings.Contains(f.Detail, "static") {
		t.Fatalf("embedded init: %v", f)
	}
	if again := Payload(); &again.Bytes[0] != &p.Bytes[0] {
		t.Fatal("the embedded image was copied")
	}
}

// TestImageIsBuiltFromTheTree rebuilds the default init with build.sh and
// compares it with the committed image: the image must be exactly what
// the tree's source gives, so nobody ships an init that differs from it.
func TestImageIsBuiltFromTheTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the init (-short)")
	}
	info, err := buildinfo.ReadFile("krun-init")
	if err != nil {
		t.Fatalf("the committed krun-init: %v", err)
	}
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	if local := strings.TrimSpace(string(out)); info.GoVersion != local {
		t.Fatalf("the committed krun-init was built with %s, this toolchain is %s: the bytes cannot be compared; "+
			"rebuild it with `make init` and commit it (or test with %s)", info.GoVersion, local, info.GoVersion)
	}
	fresh := filepath.Join(t.TempDir(), "krun-init")
	cmd := exec.Command("./build.sh", fresh)
	cmd.Env = append(os.Environ(), "GO=go")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(image), want) {
		t.Fatalf("the committed krun-init (%d bytes) is not what initlib/cmd/krun-init builds now (%d bytes): run `make init` and commit initlib/defaultinit/krun-init",
			len(image), len(want))
	}
}

// TestOnlyTheCLIImportsTheDefaultInit checks the architecture rule: the
// VMM, virtio-fs and session packages never depend on the default init,
// nor on its code (they speak initlib/milestone with it).
func TestOnlyTheCLIImportsTheDefaultInit(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../vmm/...", "../../virtiofs/...", "../../session/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, forbidden := range []string{"github.com/krunbench/krunbench/initlib/defaultinit", "github.com/krunbench/krunbench/initlib/kruninit"} {
		if strings.Contains(string(out), forbidden+"\n") {
			t.Errorf("vmm/, virtiofs/ or session/ depend on %s", forbidden)
		}
	}
	const self = "github.com/krunbench/krunbench/initlib/defaultinit"
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
