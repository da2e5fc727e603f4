// Command vhostserve is krunbench serve --socket --no-tap with one setting
// changed, for guestbench's what-if modes: -offer always offers plain
// READDIRPLUS instead of READDIRPLUS_AUTO, and -direct-io answers every
// OPEN with FOPEN_DIRECT_IO (no guest page cache, like virtiofsd
// --cache=never). It is built from the same packages as krunbench serve.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/vhostuser"
)

// directIO sets FOPEN_DIRECT_IO on every OPEN and CREATE reply.
type directIO struct{ fuse.FileSystem }

func (d directIO) Open(r *fuse.Request, nodeid uint64, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Errno {
	e := d.FileSystem.Open(r, nodeid, in, out)
	out.OpenFlags |= fuse.FopenDirectIO
	return e
}

func (d directIO) Create(r *fuse.Request, parent uint64, name string, in *fuse.CreateIn, entry *fuse.EntryOut, out *fuse.OpenOut) fuse.Errno {
	e := d.FileSystem.Create(r, parent, name, in, entry, out)
	out.OpenFlags |= fuse.FopenDirectIO
	return e
}

func main() {
	share := flag.String("shared-dir", "", "host directory to serve")
	socket := flag.String("socket", "", "vhost-user socket path")
	tag := flag.String("tag", virtiofs.RootTag, "virtio-fs tag")
	offer := flag.String("offer", "auto", "readdirplus offer: auto (READDIRPLUS_AUTO, krunbench's default) or always")
	direct := flag.Bool("direct-io", false, "answer OPEN and CREATE with FOPEN_DIRECT_IO")
	flag.Parse()
	if err := run(*share, *socket, *tag, *offer, *direct); err != nil {
		fmt.Fprintln(os.Stderr, "vhostserve:", err)
		os.Exit(1)
	}
}

func run(share, socket, tag, offer string, direct bool) error {
	pt, err := passthrough.New(share, passthrough.Options{})
	if err != nil {
		return err
	}
	var fs fuse.FileSystem = overlay.New(pt)
	if direct {
		fs = directIO{fs}
	}
	opts := fuse.Options{}
	switch offer {
	case "auto":
	case "always":
		opts.Offer = fuse.Offered &^ fuse.InitReaddirplusAuto
	default:
		return fmt.Errorf("-offer %q: want auto or always", offer)
	}
	dev, err := virtiofs.NewDevice(fuse.NewServer(fs, opts), virtiofs.DeviceOptions{Tag: tag, Workers: 8})
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	err = vhostuser.NewBackend(dev, vhostuser.Options{}).ListenAndServe(ctx, socket)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
