package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// groupCPU returns the user+system CPU seconds used by the live processes of process group
// pgid and by the live children of its leader (PostgreSQL's backends leave its group), plus
// what they have reaped of their children (ended backends): where the machine's time went.
func groupCPU(pgid int) float64 {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total float64
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := string(raw)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 15 || (f[2] != strconv.Itoa(pgid) && f[1] != strconv.Itoa(pgid)) {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, _ := strconv.ParseFloat(f[i], 64)
			total += v
		}
	}
	return total / 100 // clock ticks, 100 a second on Linux
}

func (p *proc) cpu() float64 {
	if p == nil || p.exited() {
		return 0
	}
	return groupCPU(p.cmd.Process.Pid)
}

// machineCPU returns the machine's busy and total CPU time so far, in clock ticks (all cores).
func machineCPU() (busy, total float64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// cpuMeter measures the CPU seconds each part of the stack uses over the measured interval
// (from the first delivery until the database equals the model), and how busy the machine was.
type cpuMeter struct {
	parts       []string
	start       map[string]float64
	carried     map[string]float64 // CPU of processes of a part that ended during the interval
	busy, total float64
	read        func(part string) float64
}

func newCPUMeter(parts []string, read func(string) float64) *cpuMeter {
	m := &cpuMeter{parts: parts, start: map[string]float64{}, carried: map[string]float64{}, read: read}
	for _, p := range parts {
		m.start[p] = read(p)
	}
	m.busy, m.total = machineCPU()
	return m
}

// ending records what part has used so far, before its process is killed (and replaced by a
// fresh one whose count starts at 0).
func (m *cpuMeter) ending(part string) {
	m.carried[part] += m.read(part) - m.start[part]
	m.start[part] = 0
}

// summary renders each part's CPU seconds over the interval and the machine's busy share.
func (m *cpuMeter) summary(cores int) string {
	var out []string
	for _, p := range m.parts {
		out = append(out, fmt.Sprintf("%s %.0f", p, m.carried[p]+m.read(p)-m.start[p]))
	}
	busy, total := machineCPU()
	if total > m.total {
		out = append(out, fmt.Sprintf("machine busy %.0f%% of %d cores", 100*(busy-m.busy)/(total-m.total), cores))
	}
	return strings.Join(out, ", ")
}
