package fuse

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// GuestPolicy limits what a guest may do on top of the filesystem's own
// permission checks, which run with the guest's credentials: by default a
// guest caller with uid 0 is host root inside the share (as with virtiofsd
// and libkrun), so it can make setuid-root files, device nodes and file
// capabilities. The zero value changes nothing. The server applies the
// policy once per request, before the filesystem sees it.
type GuestPolicy struct {
	// UIDs and GIDs translate the caller's ids, and the ids a SETATTR
	// gives a file, from guest to host (virtiofsd's --translate-uid and
	// --translate-gid). Ids no rule covers pass unchanged. Attributes in
	// replies are the host's ids, not translated back.
	UIDs, GIDs IDMap
	// NoDevices refuses MKNOD of character and block devices with EPERM,
	// for every caller.
	NoDevices bool
	// NoSetID strips the set-user-ID and set-group-ID bits from the modes
	// of CREATE, MKDIR, MKNOD and SETATTR.
	NoSetID bool
	// NoPrivilegedXattrs refuses SETXATTR of security.capability and of
	// trusted.* names with EPERM, for every caller.
	NoPrivilegedXattrs bool
}

// IDRule maps Count ids from Guest on: onto Host and on (map), or all onto
// Host (squash).
type IDRule struct {
	Squash             bool
	Guest, Host, Count uint32
}

// IDMap is a list of rules; the first that covers an id applies.
type IDMap []IDRule

// ToHost translates a guest id.
func (m IDMap) ToHost(id uint32) uint32 {
	for _, r := range m {
		if id >= r.Guest && uint64(id) < uint64(r.Guest)+uint64(r.Count) {
			if r.Squash {
				return r.Host
			}
			return r.Host + (id - r.Guest)
		}
	}
	return id
}

// ParseIDRule parses virtiofsd's spelling of a rule:
// "map:GUEST:HOST:COUNT" or "squash:GUEST:HOST:COUNT".
func ParseIDRule(s string) (IDRule, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 || (parts[0] != "map" && parts[0] != "squash") {
		return IDRule{}, fmt.Errorf("id rule %q: want map:GUEST:HOST:COUNT or squash:GUEST:HOST:COUNT", s)
	}
	var n [3]uint32
	for i, p := range parts[1:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return IDRule{}, fmt.Errorf("id rule %q: %q is not an id or count", s, p)
		}
		n[i] = uint32(v)
	}
	r := IDRule{Squash: parts[0] == "squash", Guest: n[0], Host: n[1], Count: n[2]}
	switch {
	case r.Count == 0:
		return IDRule{}, fmt.Errorf("id rule %q: count must be at least 1", s)
	case uint64(r.Guest)+uint64(r.Count) > 1<<32:
		return IDRule{}, fmt.Errorf("id rule %q: guest range passes 2^32", s)
	case !r.Squash && uint64(r.Host)+uint64(r.Count) > 1<<32:
		return IDRule{}, fmt.Errorf("id rule %q: host range passes 2^32", s)
	}
	return r, nil
}

const setIDBits = syscall.S_ISUID | syscall.S_ISGID

func (p *GuestPolicy) caller(c Caller) Caller {
	c.Uid, c.Gid = p.UIDs.ToHost(c.Uid), p.GIDs.ToHost(c.Gid)
	return c
}

// mode strips what NoSetID forbids from a requested mode.
func (p *GuestPolicy) mode(m uint32) uint32 {
	if p.NoSetID {
		return m &^ setIDBits
	}
	return m
}

// mknod refuses device nodes under NoDevices.
func (p *GuestPolicy) mknod(mode uint32) Errno {
	typ := mode & syscall.S_IFMT
	if p.NoDevices && (typ == syscall.S_IFCHR || typ == syscall.S_IFBLK) {
		return syscall.EPERM
	}
	return 0
}

// setattr applies the policy to a SETATTR's mode and owner.
func (p *GuestPolicy) setattr(in *SetAttrIn) {
	if in.Valid&FattrMode != 0 {
		in.Mode = p.mode(in.Mode)
	}
	if in.Valid&FattrUID != 0 {
		in.Uid = p.UIDs.ToHost(in.Uid)
	}
	if in.Valid&FattrGID != 0 {
		in.Gid = p.GIDs.ToHost(in.Gid)
	}
}

// setxattr refuses privileged names under NoPrivilegedXattrs.
func (p *GuestPolicy) setxattr(name string) Errno {
	if p.NoPrivilegedXattrs && (name == "security.capability" || strings.HasPrefix(name, "trusted.")) {
		return syscall.EPERM
	}
	return 0
}
