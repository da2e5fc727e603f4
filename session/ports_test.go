package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/krunbench/krunbench/initlib/kruninit"
)

// TestPortNamesAreTheInits: the host names its ports as the default init
// looks them up.
func TestPortNamesAreTheInits(t *testing.T) {
	for host, init := range map[string]string{
		portStdin: kruninit.PortStdin, portStdout: kruninit.PortStdout, portStderr: kruninit.PortStderr,
		portWinsize: kruninit.PortWinsize, portsParam: kruninit.PortsParam,
	} {
		if host != init {
			t.Errorf("session says %q, the init %q", host, init)
		}
	}
}

// TestOutputPortsNeverEndTheirInput: the in-process engine's stdout and
// stderr ports have no input, but their host sides must not say so with
// io.EOF: vmm/console reports a host side's end of input as the port
// closed by the host (PORT_OPEN 0), and Linux then blocks every write the
// guest makes to it, so the workload (and the init's diagnostics on
// stderr) hung for good in the kvm engine. Their reads end only when the
// session closes its ports, with an error that is not io.EOF.
func TestOutputPortsNeverEndTheirInput(t *testing.T) {
	var out, errOut bytes.Buffer
	h := newHostPorts(&Config{Stdout: &out, Stderr: &errOut})
	ports := h.consolePorts()
	results := make(chan error, len(ports))
	outputs := 0
	for _, p := range ports {
		if p.Name != portStdout && p.Name != portStderr {
			continue
		}
		outputs++
		go func() {
			_, err := p.Host.Read(make([]byte, 16))
			results <- fmt.Errorf("%s: %w", p.Name, err)
		}()
	}
	if outputs != 2 {
		t.Fatalf("%d output ports, want krun-stdout and krun-stderr", outputs)
	}
	h.close()
	for range outputs {
		select {
		case err := <-results:
			if errors.Is(err, io.EOF) {
				t.Errorf("output port's host side ended its input (%v): the guest could never write to it", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("an output port's host read did not end when the session closed its ports")
		}
	}
}
