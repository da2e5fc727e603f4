// Package terminal puts the user's terminal in raw mode and bridges it to a
// guest console pty: bytes both ways, window size changes forwarded, and the
// terminal always restored.
package terminal

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// MakeRaw switches fd to raw mode and returns the function that restores
// the previous mode; it is idempotent and safe to call from a signal path.
func MakeRaw(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) })
	}, nil
}

// Size is a terminal size in cells.
type Size struct{ Cols, Rows uint16 }

// GetSize reads fd's window size.
func GetSize(fd int) (Size, error) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return Size{}, err
	}
	return Size{Cols: ws.Col, Rows: ws.Row}, nil
}

// SetSize sets fd's window size (on a pty master: the guest side's size).
func SetSize(fd int, s Size) error {
	return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Col: s.Cols, Row: s.Rows})
}

// Bridge forwards the user's terminal to a guest console: it puts the
// terminal in raw mode, copies keystrokes to the console input, and reports
// window size changes. Output goes the other way through whoever reads the
// console.
type Bridge struct {
	in      *os.File
	to      io.Writer
	resize  func(Size)
	restore func()
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewBridge starts forwarding in to the console input to. When in is a
// terminal it goes raw (restored by Stop) and resize is called with its
// size now and on every SIGWINCH.
func NewBridge(in *os.File, to io.Writer, resize func(Size)) (*Bridge, error) {
	b := &Bridge{in: in, to: to, resize: resize, restore: func() {},
		stop: make(chan struct{}), done: make(chan struct{})}
	if in == nil {
		close(b.done)
		return b, nil
	}
	if IsTerminal(int(in.Fd())) {
		restore, err := MakeRaw(int(in.Fd()))
		if err != nil {
			return nil, err
		}
		b.restore = restore
		b.followSize()
	}
	go b.pumpInput()
	return b, nil
}

// pumpInput copies input to the console; it polls so that Stop never
// leaves a goroutine blocked in a read of the user's terminal.
func (b *Bridge) pumpInput() {
	defer close(b.done)
	buf := make([]byte, 4096)
	fds := []unix.PollFd{{Fd: int32(b.in.Fd()), Events: unix.POLLIN}}
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		n, err := unix.Poll(fds, 100)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil || fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 && fds[0].Revents&unix.POLLIN == 0 {
			return
		}
		r, err := unix.Read(int(b.in.Fd()), buf)
		if r <= 0 || err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return
		}
		if _, err := b.to.Write(buf[:r]); err != nil {
			return
		}
	}
}

func (b *Bridge) followSize() {
	report := func() {
		if s, err := GetSize(int(b.in.Fd())); err == nil && b.resize != nil {
			b.resize(s)
		}
	}
	report()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-winch:
				report()
			case <-b.stop:
				return
			}
		}
	}()
}

// Stop ends the bridge and restores the terminal.
func (b *Bridge) Stop() {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
		b.restore()
	})
}
