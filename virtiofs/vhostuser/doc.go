// Package vhostuser is a vhost-user backend: it speaks the vhost-user
// protocol over a unix socket as the back-end of QEMU's vhost-user-fs-device
// (or vhost-user-fs-pci) and drives any virtio.Device with it.
//
// The front-end (QEMU) shares guest RAM as memfd regions, which the backend
// maps MAP_SHARED and presents to the device as a virtio.Memory over
// guest-physical addresses. Ring addresses arrive as the front-end's own
// virtual addresses and are translated through the regions. Kicks arrive on
// eventfds, each waited for by a goroutine of its own and served there
// (Device.ServeKick, when the device has it; otherwise forwarded to
// Device.QueueNotify): a queue the device wants a queue thread for
// (virtio-fs's request queues, queuethread.go) in a blocking
// epoll_pwait(2) of its own, which other queues may share (virtio-fs's
// hiprio queue shares the first request queue's), the others in the
// runtime's netpoller; used buffer notifications are written
// to the call eventfds. Kick and call fds must be plain eventfds (anything else, or an
// eventfd in semaphore mode, is refused) and are made O_NONBLOCK, so that
// neither the poller nor a notifying worker can block on them; the file
// description is shared with the front-end, and QEMU creates its eventfds
// non-blocking anyway.
//
// Guest RAM that shrinks: a front-end can truncate the file behind a
// region after it was mapped (the size is checked at map time), and the
// next access to the vanished pages raises SIGBUS. File seals
// (F_SEAL_SHRINK) would rule that out, but they are not required: QEMU's
// memory-backend-file (the usual /dev/shm setup) cannot carry them, and
// memory-backend-memfd sets them only with seal=on. Instead every access
// to guest memory is guarded (virtio.GuardFaults, and the queue's own
// guard): a fault on a ring breaks that queue, a fault on a request's
// buffers abandons the request, and the process, the connection and
// later connections go on.
//
// Guest RAM mapped here is faulted in page by page as the device first
// touches it, although the guest made most of it resident long before: so
// the first time a chain's buffer or indirect table lies in a block of a
// region (prefault.go), the pages of that block already resident in the
// front-end's file are mapped at once (mincore(2), then
// MADV_POPULATE_READ on the resident runs only; holes stay holes).
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
