// Package legacy emulates the PC platform devices a Linux guest touches on
// x86_64 when the PIC, IOAPIC and PIT are in the kernel (KVM irqchip and
// PIT2): the i8042 keyboard controller (whose reset line ends the VM), an
// 8250 UART for the early and serial console, a CMOS RTC and sinks for the
// ports the kernel merely probes. Every device is a bus.Device.
package legacy

import (
	"errors"
	"fmt"

	"github.com/krunbench/krunbench/vmm/bus"
)

// Sink is a device that ignores writes and answers every read byte with
// Value (0xff for "nothing here").
type Sink struct{ Value byte }

// Read implements bus.Device.
func (s Sink) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = s.Value
	}
}

// Write implements bus.Device.
func (Sink) Write(uint64, []byte) {}

// PortRange is a port range and the device emulated there.
type PortRange struct {
	Base, Size uint64
	Name       string
	Dev        bus.Device
}

// ProbedPorts are the ports a Linux guest pokes without needing a device:
// the POST/delay port, the PCI configuration mechanism #1/#2 ports (reading
// all-ones there tells Linux "no PCI"), the A20/system control port and
// the unpopulated serial ports it autodetects.
var ProbedPorts = []PortRange{
	{0x80, 1, "POST/io_delay", Sink{Value: 0xff}},
	{0x92, 1, "system control A", Sink{Value: 0x00}},
	{0xcf8, 8, "PCI config (absent)", Sink{Value: 0xff}},
	{0x2f8, 8, "COM2 (absent)", Sink{Value: 0xff}},
	{0x3e8, 8, "COM3 (absent)", Sink{Value: 0xff}},
	{0x2e8, 8, "COM4 (absent)", Sink{Value: 0xff}},
}

// AttachSinks inserts ProbedPorts into pio, skipping any range a device
// already occupies (so a real COM2 attached first wins).
func AttachSinks(pio *bus.Bus) error {
	for _, p := range ProbedPorts {
		if err := pio.Insert(p.Base, p.Size, p.Dev); err != nil {
			if errors.Is(err, bus.ErrOverlap) {
				continue
			}
			return fmt.Errorf("legacy: %s: %w", p.Name, err)
		}
	}
	return nil
}
