package vhostuser

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// conn reads and writes vhost-user messages on a unix stream socket,
// receiving SCM_RIGHTS fds with them. It is used by one goroutine.
type conn struct {
	uc  *net.UnixConn
	raw syscall.RawConn
	oob []byte
}

func newConn(uc *net.UnixConn) (*conn, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	// Room for more fds than allowed, so that an excess is reported as
	// such rather than as truncation.
	return &conn{uc: uc, raw: raw, oob: make([]byte, unix.CmsgSpace(4*4*maxFds))}, nil
}

// recvFull fills buf, appending received fds to fds. It returns io.EOF
// when the peer closed the connection before the first byte and
// io.ErrUnexpectedEOF when it closed mid-buffer.
func (c *conn) recvFull(buf []byte, fds []int) ([]int, error) {
	got := 0
	for got < len(buf) {
		var n, oobn, flags int
		var rerr error
		err := c.raw.Read(func(fd uintptr) bool {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf[got:], c.oob, unix.MSG_CMSG_CLOEXEC)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if oobn > 0 {
			var perr error
			fds, perr = appendRights(fds, c.oob[:oobn])
			if err == nil {
				err = perr
			}
		}
		if err == nil && flags&unix.MSG_CTRUNC != 0 {
			err = protoErr("too many fds with one message (control data truncated)")
		}
		if err == nil && n == 0 {
			err = io.ErrUnexpectedEOF
			if got == 0 {
				err = io.EOF
			}
		}
		if err != nil {
			return fds, err
		}
		got += n
	}
	return fds, nil
}

// appendRights parses control messages and appends the SCM_RIGHTS fds.
func appendRights(fds []int, oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fds, fmt.Errorf("parsing control message: %w", err)
	}
	for i := range msgs {
		rights, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		fds = append(fds, rights...)
	}
	return fds, nil
}

// read returns the next message. On error, fds received so far are closed.
func (c *conn) read() (*message, error) {
	var hdr [headerSize]byte
	fds, err := c.recvFull(hdr[:], nil)
	if err == nil {
		m := &message{req: ne.Uint32(hdr[:]), flags: ne.Uint32(hdr[4:])}
		size := ne.Uint32(hdr[8:])
		switch {
		case m.flags&flagVersionMask != flagVersion:
			err = protoErr("%s: header flags %#x: not version 1", requestName(m.req), m.flags)
		case m.flags&flagReply != 0:
			err = protoErr("%s: header flags %#x: a reply from the front-end", requestName(m.req), m.flags)
		case size > maxPayload:
			err = protoErr("%s: payload size %d exceeds %d", requestName(m.req), size, maxPayload)
		}
		if err == nil {
			m.payload = make([]byte, size)
			fds, err = c.recvFull(m.payload, fds)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
		}
		if err == nil && len(fds) > maxFds {
			err = protoErr("%s: %d fds exceed %d", requestName(m.req), len(fds), maxFds)
		}
		if err == nil {
			m.fds = fds
			return m, nil
		}
	}
	closeFds(fds)
	return nil, err
}

// reply sends a reply to m with payload.
func (c *conn) reply(m *message, payload []byte) error {
	b := make([]byte, headerSize+len(payload))
	ne.PutUint32(b, m.req)
	ne.PutUint32(b[4:], flagVersion|flagReply)
	ne.PutUint32(b[8:], uint32(len(payload)))
	copy(b[headerSize:], payload)
	_, err := c.uc.Write(b)
	return err
}

func closeFds(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
