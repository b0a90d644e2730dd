package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// appName marks the bench's connections so their server CPU can be found.
const appName = "omniq-bench"

// cpuUsage is the CPU time of this process and of its PostgreSQL backends.
// On a shared, busy machine the wall-clock rate depends on the neighbours;
// CPU per task does much less, so the bench prints both. Backend CPU is read
// from /proc, so it is known only when the server runs on this machine.
type cpuUsage struct {
	self     time.Duration
	backends map[int]time.Duration
}

func (b *bench) cpuNow(ctx context.Context) cpuUsage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := cpuUsage{
		self:     time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		backends: map[int]time.Duration{},
	}
	rows, err := b.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, appName)
	if err != nil {
		return u
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return u
	}
	for _, pid := range pids {
		if d, ok := procCPU(int(pid)); ok {
			u.backends[int(pid)] = d
		}
	}
	return u
}

// procCPU reads utime+stime of a process from /proc (clock ticks of 10ms).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

// since returns the client and server CPU spent since an earlier reading;
// server is 0 when no backend could be read.
func (u cpuUsage) since(earlier cpuUsage) (client, server time.Duration) {
	client = u.self - earlier.self
	for pid, d := range u.backends {
		server += d - earlier.backends[pid]
	}
	return client, server
}

// machineCPU reads the machine's CPU time in clock ticks from /proc/stat: all
// of it, and the part stolen by the hypervisor for other guests. A shared host
// that steals a large share slows every run, whatever the code does; the
// long-horizon lines print it so a reader can tell. ok is false where
// /proc/stat cannot be read.
func machineCPU() (total, steal int64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already counted in user and nice.
	for i := 1; i <= 8; i++ {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i == 8 {
			steal = v
		}
	}
	return total, steal, true
}

// stealPercent is the share of the machine's CPU time stolen between two
// readings of machineCPU, or -1 when it is not known.
func stealPercent(prevTotal, prevSteal, total, steal int64) float64 {
	if total <= prevTotal {
		return -1
	}
	return 100 * float64(steal-prevSteal) / float64(total-prevTotal)
}
