package legacy

import (
	"fmt"
	"io"
	"sync"

	"github.com/krunbench/krunbench/vmm/bus"
)

// Standard COM port bases and their ISA IRQs.
const (
	COM1Port = 0x3f8
	COM1IRQ  = 4
	COM2Port = 0x2f8
	COM2IRQ  = 3
)

// 8250 register offsets.
const (
	uartData = 0 // RBR (read) / THR (write); DLL with DLAB
	uartIER  = 1 // DLM with DLAB
	uartIIR  = 2 // IIR (read) / FCR (write)
	uartLCR  = 3
	uartMCR  = 4
	uartLSR  = 5
	uartMSR  = 6
	uartSCR  = 7
)

// Register bits.
const (
	ierRDA  = 0x01 // received data available interrupt
	ierTHRE = 0x02 // transmitter holding register empty interrupt

	iirNone  = 0x01
	iirTHRE  = 0x02
	iirRDA   = 0x04
	iirFIFOs = 0xc0

	lcrDLAB = 0x80

	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08
	mcrLoop = 0x10

	lsrDR   = 0x01
	lsrTHRE = 0x20
	lsrTEMT = 0x40

	msrCTS = 0x10
	msrDSR = 0x20
	msrRI  = 0x40
	msrDCD = 0x80
)

// maxRx bounds the receive queue; input beyond it is dropped.
const maxRx = 64 << 10

// Serial is a 16550A-compatible UART (8250 register set) with an
// infinitely fast transmitter: bytes written to THR go straight to Out, so
// LSR always reports the transmitter empty. That is all Linux needs for
// earlyprintk=serial and console=ttyS0; received bytes come from Receive.
type Serial struct {
	// IRQ, if set, is called when the UART raises an interrupt (THR empty
	// or data received, when enabled in IER). Wire it to a pulse of the
	// port's ISA IRQ (4 for COM1). It must not block.
	IRQ func()

	mu      sync.Mutex
	out     io.Writer
	ier     byte
	lcr     byte
	mcr     byte
	scr     byte
	dll     byte
	dlm     byte
	fcr     byte
	rx      []byte
	thrIntr bool // THR-empty interrupt pending (cleared by reading IIR)
	written int64
}

// NewSerial returns a UART whose transmitted bytes go to out (which may be
// nil to discard them).
func NewSerial(out io.Writer) *Serial {
	if out == nil {
		out = io.Discard
	}
	return &Serial{out: out, dll: 12, mcr: mcrOUT2}
}

// Attach inserts the UART's eight registers at base (e.g. COM1Port).
func (s *Serial) Attach(pio *bus.Bus, base uint64) error {
	if err := pio.Insert(base, 8, s); err != nil {
		return fmt.Errorf("legacy: serial: %w", err)
	}
	return nil
}

// Written returns the number of bytes transmitted to Out.
func (s *Serial) Written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// Receive queues bytes as if they arrived on the serial line.
func (s *Serial) Receive(b []byte) {
	s.mu.Lock()
	n := min(len(b), maxRx-len(s.rx))
	s.rx = append(s.rx, b[:n]...)
	irq := n > 0 && s.ier&ierRDA != 0
	s.mu.Unlock()
	s.raise(irq)
}

func (s *Serial) raise(irq bool) {
	if irq && s.IRQ != nil {
		s.IRQ()
	}
}

// Read implements bus.Device.
func (s *Serial) Read(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	s.mu.Lock()
	v := s.readReg(off)
	s.mu.Unlock()
	data[0] = v
	for i := 1; i < len(data); i++ {
		data[i] = 0
	}
}

func (s *Serial) readReg(off uint64) byte {
	dlab := s.lcr&lcrDLAB != 0
	switch off {
	case uartData:
		if dlab {
			return s.dll
		}
		if len(s.rx) == 0 {
			return 0
		}
		b := s.rx[0]
		s.rx = s.rx[1:]
		return b
	case uartIER:
		if dlab {
			return s.dlm
		}
		return s.ier
	case uartIIR:
		v := byte(iirNone)
		switch {
		case s.ier&ierRDA != 0 && len(s.rx) > 0:
			v = iirRDA
		case s.ier&ierTHRE != 0 && s.thrIntr:
			v = iirTHRE
			s.thrIntr = false
		}
		if s.fcr&0x01 != 0 {
			v |= iirFIFOs
		}
		return v
	case uartLCR:
		return s.lcr
	case uartMCR:
		return s.mcr
	case uartLSR:
		v := byte(lsrTHRE | lsrTEMT)
		if len(s.rx) > 0 {
			v |= lsrDR
		}
		return v
	case uartMSR:
		if s.mcr&mcrLoop != 0 {
			var v byte
			if s.mcr&mcrRTS != 0 {
				v |= msrCTS
			}
			if s.mcr&mcrDTR != 0 {
				v |= msrDSR
			}
			if s.mcr&mcrOUT1 != 0 {
				v |= msrRI
			}
			if s.mcr&mcrOUT2 != 0 {
				v |= msrDCD
			}
			return v
		}
		return msrDCD | msrDSR | msrCTS
	case uartSCR:
		return s.scr
	}
	return 0xff
}

// Write implements bus.Device.
func (s *Serial) Write(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	b := data[0]
	s.mu.Lock()
	irq := false
	dlab := s.lcr&lcrDLAB != 0
	switch off {
	case uartData:
		if dlab {
			s.dll = b
			break
		}
		if s.mcr&mcrLoop != 0 {
			if len(s.rx) < maxRx {
				s.rx = append(s.rx, b)
			}
			irq = s.ier&ierRDA != 0
		} else {
			if _, err := s.out.Write([]byte{b}); err == nil {
				s.written++
			}
		}
		s.thrIntr = true
		irq = irq || s.ier&ierTHRE != 0
	case uartIER:
		if dlab {
			s.dlm = b
			break
		}
		enabling := b&ierTHRE != 0 && s.ier&ierTHRE == 0
		s.ier = b & 0x0f
		if enabling {
			s.thrIntr = true // the transmitter is always empty
			irq = true
		}
		irq = irq || (s.ier&ierRDA != 0 && len(s.rx) > 0)
	case uartIIR:
		s.fcr = b
		if b&0x02 != 0 {
			s.rx = nil
		}
	case uartLCR:
		s.lcr = b
	case uartMCR:
		s.mcr = b & 0x1f
	case uartSCR:
		s.scr = b
	}
	s.mu.Unlock()
	s.raise(irq)
}
