package session

import (
	"testing"

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
