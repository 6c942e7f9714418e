package main

import (
	"fmt"
	"strings"

	"clerksync/tools/internal/proc"
)

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
	m.busy, m.total = proc.MachineCPU()
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
	busy, total := proc.MachineCPU()
	if total > m.total {
		out = append(out, fmt.Sprintf("machine busy %.0f%% of %d cores", 100*(busy-m.busy)/(total-m.total), cores))
	}
	return strings.Join(out, ", ")
}
