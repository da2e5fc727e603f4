package legacy

import (
	"fmt"
	"sync"
	"time"

	"github.com/krunbench/krunbench/vmm/bus"
)

// CMOSPort is the CMOS index port; the data port follows it.
const CMOSPort = 0x70

// MC146818 registers.
const (
	rtcSeconds = 0x00
	rtcMinutes = 0x02
	rtcHours   = 0x04
	rtcWeekday = 0x06
	rtcDay     = 0x07
	rtcMonth   = 0x08
	rtcYear    = 0x09
	rtcRegA    = 0x0a
	rtcRegB    = 0x0b
	rtcRegC    = 0x0c
	rtcRegD    = 0x0d
	rtcCentury = 0x32

	rtcRegBBinary = 0x04
	rtcRegB24h    = 0x02
)

// CMOS is a read-mostly MC146818 RTC plus 128 bytes of NVRAM at ports
// 0x70/0x71. The clock reads the host time (UTC) and is never "updating";
// writes to the time registers are ignored, NVRAM writes are kept.
type CMOS struct {
	// Now returns the time the RTC reports; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	index byte
	nvram [128]byte
}

// NewCMOS returns a CMOS with BCD, 24-hour mode and valid RAM/time.
func NewCMOS() *CMOS {
	c := &CMOS{}
	c.nvram[rtcRegA] = 0x26
	c.nvram[rtcRegB] = rtcRegB24h
	c.nvram[rtcRegD] = 0x80
	return c
}

// Attach inserts the CMOS at ports 0x70 and 0x71.
func (c *CMOS) Attach(pio *bus.Bus) error {
	if err := pio.Insert(CMOSPort, 2, c); err != nil {
		return fmt.Errorf("legacy: cmos: %w", err)
	}
	return nil
}

// Read implements bus.Device.
func (c *CMOS) Read(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := byte(0xff)
	if off == 1 {
		v = c.reg(c.index)
	}
	fill(data, v)
}

// Write implements bus.Device.
func (c *CMOS) Write(off uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if off == 0 {
		c.index = data[0] & 0x7f // bit 7 is the NMI mask
		return
	}
	switch c.index {
	case rtcSeconds, rtcMinutes, rtcHours, rtcWeekday, rtcDay, rtcMonth, rtcYear, rtcCentury, rtcRegC, rtcRegD:
	case rtcRegA:
		c.nvram[rtcRegA] = data[0] & 0x7f // UIP is read-only
	default:
		c.nvram[c.index] = data[0]
	}
}

func (c *CMOS) reg(i byte) byte {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	t := now().UTC()
	enc := func(v int) byte {
		if c.nvram[rtcRegB]&rtcRegBBinary != 0 {
			return byte(v)
		}
		return byte(v/10<<4 | v%10)
	}
	switch i {
	case rtcSeconds:
		return enc(t.Second())
	case rtcMinutes:
		return enc(t.Minute())
	case rtcHours:
		return enc(t.Hour())
	case rtcWeekday:
		return enc(int(t.Weekday()) + 1)
	case rtcDay:
		return enc(t.Day())
	case rtcMonth:
		return enc(int(t.Month()))
	case rtcYear:
		return enc(t.Year() % 100)
	case rtcCentury:
		return enc(t.Year() / 100)
	case rtcRegC:
		return 0
	}
	return c.nvram[i&0x7f]
}
