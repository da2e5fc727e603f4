package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Marker names: the runner looks up /mnt/<markerPrefix>begin-W right
// before workload W and /mnt/<markerPrefix>end-W right after it (each a
// LOOKUP that fails with ENOENT), so a backend's own record of its
// requests can be cut into workloads the same way for every backend.
const markerPrefix = ".guestbench-"

// virtioFAccessPlatform is VIRTIO_F_ACCESS_PLATFORM's feature bit.
const virtioFAccessPlatform = 33

// requestCounts cuts a counting boot's request record into workloads:
// for each, the requests the backend saw after W's begin marker and
// before its end marker, by opcode name, FORGETs left out (see
// isForget). krunbench's record is its --trace file (a JSON line per
// request); virtiofsd's is its -d log (a "unique: N, opcode: NAME (OP)"
// line per request, followed for a LOOKUP by "lo_lookup(parent=P,
// name=NAME)"). serverLog is krunbench's stderr, which says when the
// trace writer fell behind and lost events.
func requestCounts(record, serverLog string, krunbench bool, workloads []string) (map[string]opCounts, error) {
	if krunbench {
		if b, err := os.ReadFile(serverLog); err == nil && bytes.Contains(b, []byte("events dropped")) {
			return nil, errors.New("krunbench's trace dropped events; the request count would be low (see " + serverLog + ")")
		}
	}
	f, err := os.Open(record)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return cutRecord(bufio.NewScanner(f), krunbench, workloads)
}

// opCounts is a workload's requests by opcode name (LOOKUP, READDIRPLUS...).
type opCounts map[string]int

// total is the number of requests of every opcode.
func (c opCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func cutRecord(sc *bufio.Scanner, krunbench bool, workloads []string) (map[string]opCounts, error) {
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	// ops is every counted request's opcode in the order the backend
	// recorded them; a workload's requests lie strictly between its
	// markers' indexes.
	var ops []string
	begin, end := map[string]int{}, map[string]int{}
	marker := func(name string) {
		edge, w, ok := strings.Cut(strings.TrimPrefix(name, markerPrefix), "-")
		if !ok || !strings.HasPrefix(name, markerPrefix) {
			return
		}
		switch edge {
		case "begin":
			begin[w] = len(ops) - 1
		case "end":
			end[w] = len(ops) - 1
		}
	}
	for sc.Scan() {
		line := sc.Bytes()
		if krunbench {
			var ev struct {
				OpName string `json:"opname"`
				Name   string `json:"name"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				return nil, fmt.Errorf("trace line %d: %w", len(ops)+1, err)
			}
			if isForget(ev.OpName) {
				continue
			}
			ops = append(ops, ev.OpName)
			if ev.OpName == "LOOKUP" {
				marker(ev.Name)
			}
			continue
		}
		s := string(line)
		if _, op, ok := strings.Cut(s, ", opcode: "); ok && strings.Contains(s, "unique: ") {
			if name, _, _ := strings.Cut(op, " "); !isForget(name) {
				ops = append(ops, name)
			}
		} else if _, rest, ok := strings.Cut(s, "lo_lookup(parent="); ok {
			if _, name, ok := strings.Cut(rest, "name="); ok {
				marker(strings.TrimSuffix(name, ")"))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[string]opCounts{}
	for _, w := range workloads {
		b, okb := begin[w]
		e, oke := end[w]
		if !okb || !oke || e <= b {
			return nil, fmt.Errorf("no request markers for %s in the backend's record", w)
		}
		c := opCounts{}
		for _, op := range ops[b+1 : e] {
			c[op]++
		}
		out[w] = c
	}
	return out, nil
}

// isForget says whether an opcode is a FORGET: the guest sends those when
// the cache drop before a workload evicts inodes, and they reach the
// backend's record after the begin marker or before it depending on
// timing, so they are left out of every count (the CPU they cost may
// still fall into the timed part, for both backends alike).
func isForget(op string) bool { return op == "FORGET" || op == "BATCH_FORGET" }

// checkFeatures makes sure the device options took effect the same way
// for every backend: with -dma-bounce the guest must have negotiated
// VIRTIO_F_ACCESS_PLATFORM (else its driver would not use the DMA API,
// and nothing would be bounced). bits is the guest's
// /sys/bus/virtio/devices/*/features for the virtio-fs device.
func checkFeatures(cfg *config, bits string) error {
	if bits == "" {
		return errors.New("the guest did not report the virtio-fs device's features")
	}
	has := len(bits) > virtioFAccessPlatform && bits[virtioFAccessPlatform] == '1'
	if cfg.dmaBounce && !has {
		return fmt.Errorf("the virtio-fs device did not negotiate VIRTIO_F_ACCESS_PLATFORM (features %s): the backend does not offer it, so iommu_platform=on has no effect", bits)
	}
	return nil
}
