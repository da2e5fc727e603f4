package virtio

import "runtime/debug"

// The queue's side of notification in both directions: whether the driver
// wants a used buffer notification (NeedsNotification, with or without
// EVENT_IDX), and the hints that ask the driver to kick or not (Enable/
// DisableNotification). The queue only answers and writes the ring's
// fields; who notifies, and how, is the transport's.

// NeedsNotification reports whether the driver wants a used buffer
// notification for the elements added since the previous call. With
// EVENT_IDX it applies vring_need_event to used_event; otherwise it returns
// true unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT. Either way it
// returns false when nothing was added since the previous call.
func (q *Queue) NeedsNotification(mem GuestMemory) (need bool, err error) {
	defer q.lock()()
	defer q.guardFaults(&err, debug.SetPanicOnFault(true))
	if err := q.usable(); err != nil {
		return false, err
	}
	return q.needsNotificationLocked(mem)
}

func (q *Queue) needsNotificationLocked(mem GuestMemory) (bool, error) {
	old, valid := q.signalledUsed, q.signalledValid
	q.signalledUsed, q.signalledValid = q.nextUsed, true
	if valid && old == q.nextUsed {
		return false, nil
	}
	if !q.eventIdx {
		flags, err := mem.LoadU16(q.avail)
		if err != nil {
			return false, q.breakLocked("reading avail flags: " + err.Error())
		}
		return flags&AvailFNoInterrupt == 0, nil
	}
	event, err := mem.LoadU16(q.usedEventAddr())
	if err != nil {
		return false, q.breakLocked("reading used_event: " + err.Error())
	}
	if !valid {
		return true, nil
	}
	return needEvent(event, q.nextUsed, old), nil
}

// needEvent is vring_need_event: whether event lies in (old, new], computed
// modulo 2^16.
func needEvent(event, new, old uint16) bool {
	return new-event-1 < new-old
}

// EnableNotification asks the driver to kick on new available buffers
// (writes avail_event = last_avail_idx with EVENT_IDX, otherwise clears
// VIRTQ_USED_F_NO_NOTIFY). It then re-reads the avail index and reports
// whether entries are pending, which the caller must drain to avoid
// missing a buffer added before the driver saw the change.
func (q *Queue) EnableNotification(mem GuestMemory) (more bool, err error) {
	defer q.lock()()
	defer q.guardFaults(&err, debug.SetPanicOnFault(true))
	if err := q.usable(); err != nil {
		return false, err
	}
	q.notifyOn = true
	if err := q.setNotifyLocked(mem, true); err != nil {
		return false, err
	}
	n, err := q.pendingLocked(mem)
	return n > 0, err
}

// DisableNotification asks the driver not to kick: it sets
// VIRTQ_USED_F_NO_NOTIFY without EVENT_IDX, and with EVENT_IDX stops Pop
// from advancing avail_event. Drivers may ignore the hint.
func (q *Queue) DisableNotification(mem GuestMemory) (err error) {
	defer q.lock()()
	defer q.guardFaults(&err, debug.SetPanicOnFault(true))
	if err := q.usable(); err != nil {
		return err
	}
	q.notifyOn = false
	return q.setNotifyLocked(mem, false)
}

func (q *Queue) setNotifyLocked(mem GuestMemory, on bool) error {
	if q.eventIdx {
		if !on {
			return nil
		}
		if err := mem.StoreU16(q.availEventAddr(), q.nextAvail); err != nil {
			return q.breakLocked("writing avail_event: " + err.Error())
		}
		return nil
	}
	var flags uint16
	if !on {
		flags = UsedFNoNotify
	}
	if err := mem.StoreU16(q.used, flags); err != nil {
		return q.breakLocked("writing used flags: " + err.Error())
	}
	return nil
}
