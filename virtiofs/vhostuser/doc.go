// Package vhostuser is a vhost-user backend: it speaks the vhost-user
// protocol over a unix socket as the back-end of QEMU's vhost-user-fs-device
// (or vhost-user-fs-pci) and drives any virtio.Device with it.
//
// The front-end (QEMU) shares guest RAM as memfd regions, which the backend
// maps MAP_SHARED and presents to the device as a virtio.Memory over
// guest-physical addresses. Ring addresses arrive as the front-end's own
// virtual addresses and are translated through the regions. Kicks arrive on
// eventfds, which one goroutine per connection polls and forwards to
// Device.QueueNotify; used buffer notifications are written to the call
// eventfds. Kick and call fds must be eventfds (anything else is refused)
// and are made O_NONBLOCK, so that neither the poller nor a notifying
// worker can block on them; the file description is shared with the front-end, and
// QEMU creates its eventfds non-blocking anyway.
//
// The device is activated once every ring the front-end configured has a
// kick fd and is enabled, and reset when a ring is stopped with
// GET_VRING_BASE, when guest memory changes under it, or when the front-end
// disconnects. Connections are served one at a time; the next one finds the
// device and all protocol state reset.
//
// Everything the front-end sends is validated: message and payload sizes,
// fd counts, ring indices and sizes, memory regions and address
// translations. A malformed message whose sender asked for a reply
// (need_reply) gets a failure ack; any other protocol error closes the
// connection with a logged reason.
package vhostuser
