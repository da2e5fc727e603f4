package legacy

import (
	"fmt"
	"sync"

	"github.com/krunbench/krunbench/vmm/bus"
)

// i8042 ports.
const (
	I8042DataPort    = 0x60
	I8042CommandPort = 0x64
)

// Status register bits.
const (
	i8042StatusOBF    = 0x01 // output buffer full
	i8042StatusSys    = 0x04 // self-test passed
	i8042StatusCmd    = 0x08 // last write was to the command port
	i8042StatusUnlock = 0x10 // keyboard not inhibited
)

// Command byte (CTR) bits.
const (
	i8042CtrKbdInt = 0x01
	i8042CtrSys    = 0x04
	i8042CtrKbdDis = 0x10
	i8042CtrAuxDis = 0x20
)

// I8042 is a minimal PS/2 keyboard controller with a keyboard but no aux
// (mouse) port. Its use in a microVM is the reset line: command 0xFE (what
// Linux sends with reboot=k) calls OnReset, which ends the VM.
//
// It answers what Linux's i8042 and atkbd drivers ask during boot quickly
// enough to avoid their timeouts: controller self-test (0xAA -> 0x55),
// interface test, the command byte, the output port, and keyboard commands
// (ACK 0xFA, reset -> 0xAA, get ID -> 0xAB 0x83). The aux loopback (0xD3)
// echoes without the aux status bit and the aux test (0xA9) reports a
// clock-line fault, which is how Linux concludes there is no mouse port.
type I8042 struct {
	// OnReset is called (on a vCPU thread) when the guest pulses the reset
	// line. It must not block.
	OnReset func()
	// IRQ, if set, is called when keyboard data arrives while the
	// keyboard interrupt is enabled; wire it to a pulse of GSI 1.
	IRQ func()

	mu      sync.Mutex
	status  byte
	ctr     byte
	outp    byte
	pending byte // command waiting for its data byte, 0 if none
	out     []byte
	resets  int
}

// NewI8042 returns a controller in its power-on state.
func NewI8042(onReset func()) *I8042 {
	return &I8042{OnReset: onReset, status: i8042StatusUnlock, ctr: i8042CtrKbdInt | i8042CtrSys, outp: 0x03}
}

// Resets returns how many times the guest asked for a reset.
func (k *I8042) Resets() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.resets
}

// Attach inserts the data port (0x60) and command/status port (0x64).
func (k *I8042) Attach(pio *bus.Bus) error {
	if err := pio.Insert(I8042DataPort, 1, i8042Data{k}); err != nil {
		return fmt.Errorf("legacy: i8042: %w", err)
	}
	if err := pio.Insert(I8042CommandPort, 1, i8042Cmd{k}); err != nil {
		return fmt.Errorf("legacy: i8042: %w", err)
	}
	return nil
}

type i8042Data struct{ k *I8042 }
type i8042Cmd struct{ k *I8042 }

func (d i8042Data) Read(_ uint64, data []byte) { fill(data, d.k.readData()) }
func (d i8042Data) Write(_ uint64, data []byte) {
	if len(data) > 0 {
		d.k.writeData(data[0])
	}
}
func (c i8042Cmd) Read(_ uint64, data []byte) { fill(data, c.k.readStatus()) }
func (c i8042Cmd) Write(_ uint64, data []byte) {
	if len(data) > 0 {
		c.k.command(data[0])
	}
}

func fill(data []byte, b byte) {
	for i := range data {
		data[i] = b
	}
}

func (k *I8042) push(b ...byte) {
	k.out = append(k.out, b...)
	k.status |= i8042StatusOBF
}

func (k *I8042) readStatus() byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.status
}

func (k *I8042) readData() byte {
	k.mu.Lock()
	if len(k.out) == 0 {
		b := byte(0)
		k.mu.Unlock()
		return b
	}
	b := k.out[0]
	k.out = k.out[1:]
	more := len(k.out) > 0
	if !more {
		k.status &^= i8042StatusOBF
	}
	irq := more && k.ctr&i8042CtrKbdInt != 0 && k.IRQ != nil
	k.mu.Unlock()
	if irq {
		k.IRQ()
	}
	return b
}

func (k *I8042) command(cmd byte) {
	k.mu.Lock()
	k.status |= i8042StatusCmd
	k.pending = 0
	reset := false
	switch cmd {
	case 0x20: // read command byte
		k.push(k.ctr)
	case 0x60, 0xd1, 0xd2, 0xd3, 0xd4: // commands taking a data byte
		k.pending = cmd
	case 0xa7:
		k.ctr |= i8042CtrAuxDis
	case 0xa8:
		k.ctr &^= i8042CtrAuxDis
	case 0xa9: // aux interface test: clock line stuck low, i.e. no aux port
		k.push(0x01)
	case 0xaa: // controller self-test
		k.status |= i8042StatusSys
		k.push(0x55)
	case 0xab: // keyboard interface test
		k.push(0x00)
	case 0xad:
		k.ctr |= i8042CtrKbdDis
	case 0xae:
		k.ctr &^= i8042CtrKbdDis
	case 0xd0: // read output port
		k.push(k.outp)
	default:
		// 0xF0-0xFF pulse output port lines whose bit is 0; bit 0 is reset.
		if cmd&0xf0 == 0xf0 && cmd&0x01 == 0 {
			reset = true
			k.resets++
		}
	}
	onReset := k.OnReset
	k.mu.Unlock()
	if reset && onReset != nil {
		onReset()
	}
}

func (k *I8042) writeData(b byte) {
	k.mu.Lock()
	k.status &^= i8042StatusCmd
	cmd := k.pending
	k.pending = 0
	irq := false
	reset := false
	switch cmd {
	case 0x60:
		k.ctr = b
	case 0xd1:
		k.outp = b
		if b&0x01 == 0 {
			reset = true
			k.resets++
		}
	case 0xd2, 0xd3: // loop back as keyboard data (no aux status bit)
		k.push(b)
	case 0xd4: // to the aux device: there is none
	default: // a command for the keyboard itself
		switch b {
		case 0xff: // reset
			k.push(0xfa, 0xaa)
		case 0xf2: // get ID
			k.push(0xfa, 0xab, 0x83)
		case 0xee: // echo
			k.push(0xee)
		default:
			k.push(0xfa)
		}
		irq = k.ctr&i8042CtrKbdInt != 0 && k.IRQ != nil
	}
	onReset := k.OnReset
	k.mu.Unlock()
	if irq {
		k.IRQ()
	}
	if reset && onReset != nil {
		onReset()
	}
}
