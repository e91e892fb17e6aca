package controlplane

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// RSSBytes reads the resident set size of every running process of the
// control plane from /proc, keyed by process name.
func (cp *ControlPlane) RSSBytes() (map[string]int64, error) {
	out := map[string]int64{}
	for name, pid := range cp.PIDs() {
		rss, err := ProcessRSS(pid)
		if err != nil {
			return nil, fmt.Errorf("%s (pid %d): %w", name, pid, err)
		}
		out[name] = rss
	}
	return out, nil
}

// ProcessRSS reads the resident set size of a process from /proc.
func ProcessRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// The line reads "VmRSS:     123456 kB".
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS line in /proc/%d/status", pid)
}
