package kruninit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// RlimInfinity is RLIM_INFINITY: no limit.
const RlimInfinity = math.MaxUint64

// NumRlimits is RLIM_NLIMITS on Linux: valid resource ids are below it.
const NumRlimits = 16

// ErrRlimits is wrapped by every KRUN_RLIMITS parsing error.
var ErrRlimits = errors.New("KRUN_RLIMITS")

// rlimitNames maps the names accepted besides numeric ids to Linux's
// resource numbers.
var rlimitNames = map[string]int{
	"CPU": 0, "FSIZE": 1, "DATA": 2, "STACK": 3, "CORE": 4, "RSS": 5,
	"NPROC": 6, "NOFILE": 7, "MEMLOCK": 8, "AS": 9, "LOCKS": 10,
	"SIGPENDING": 11, "MSGQUEUE": 12, "NICE": 13, "RTPRIO": 14, "RTTIME": 15,
}

// Rlimit is one entry of KRUN_RLIMITS.
type Rlimit struct {
	// Resource is the Linux resource number (RLIMIT_NOFILE is 7).
	Resource int
	// Cur and Max are the soft and hard limits; RlimInfinity is unlimited.
	Cur, Max uint64
}

// ParseRlimits parses KRUN_RLIMITS: a comma-separated list of ID=CUR:MAX,
// where ID is a resource number (0 to 15) or a name such as NOFILE or
// RLIMIT_NOFILE, and CUR and MAX are decimal numbers, or "unlimited",
// "infinity" or -1 for no limit. An empty string means no limits. Errors
// wrap ErrRlimits and quote the offending entry.
func ParseRlimits(s string) ([]Rlimit, error) {
	if s == "" {
		return nil, nil
	}
	var out []Rlimit
	for _, item := range strings.Split(s, ",") {
		r, err := parseRlimit(item)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrRlimits, item, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRlimit(item string) (Rlimit, error) {
	id, val, ok := strings.Cut(item, "=")
	if !ok {
		return Rlimit{}, errors.New("want ID=CUR:MAX")
	}
	res, err := parseResource(id)
	if err != nil {
		return Rlimit{}, err
	}
	curS, maxS, ok := strings.Cut(val, ":")
	if !ok {
		return Rlimit{}, errors.New("want ID=CUR:MAX (missing ':')")
	}
	cur, err := parseLimit(curS)
	if err != nil {
		return Rlimit{}, fmt.Errorf("soft limit: %v", err)
	}
	hi, err := parseLimit(maxS)
	if err != nil {
		return Rlimit{}, fmt.Errorf("hard limit: %v", err)
	}
	if cur > hi {
		return Rlimit{}, errors.New("soft limit above hard limit")
	}
	return Rlimit{Resource: res, Cur: cur, Max: hi}, nil
}

func parseResource(id string) (int, error) {
	if id == "" {
		return 0, errors.New("missing resource id")
	}
	if n, err := strconv.Atoi(id); err == nil {
		if n < 0 || n >= NumRlimits {
			return 0, fmt.Errorf("resource id %d out of range 0-%d", n, NumRlimits-1)
		}
		return n, nil
	}
	if n, ok := rlimitNames[strings.TrimPrefix(strings.ToUpper(id), "RLIMIT_")]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown resource %q", id)
}

func parseLimit(s string) (uint64, error) {
	switch strings.ToLower(s) {
	case "unlimited", "infinity", "-1":
		return RlimInfinity, nil
	case "":
		return 0, errors.New("missing value")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}
