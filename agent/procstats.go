package agent

import (
	"github.com/prometheus/procfs"
)

// procStats are the agent's own process metrics, named as every Prometheus
// client names them (process_*), so the usual dashboards and alerts on an
// exporter's CPU, memory and file descriptors work unchanged.
type procStats struct {
	ok                 bool
	cpuSeconds         float64
	residentBytes      int
	virtualBytes       uint
	startTimeSeconds   float64
	openFDs, maxFDs    int
	fdsKnown, maxKnown bool
}

// readProcStats reads /proc/self; what it cannot read is left out.
func readProcStats() procStats {
	var ps procStats
	p, err := procfs.Self()
	if err != nil {
		return ps
	}
	if st, err := p.Stat(); err == nil {
		ps.ok = true
		ps.cpuSeconds, ps.residentBytes, ps.virtualBytes = st.CPUTime(), st.ResidentMemory(), st.VirtualMemory()
		if t, err := st.StartTime(); err == nil {
			ps.startTimeSeconds = t
		}
	}
	if n, err := p.FileDescriptorsLen(); err == nil {
		ps.openFDs, ps.fdsKnown = n, true
	}
	if l, err := p.Limits(); err == nil && l.OpenFiles > 0 {
		ps.maxFDs, ps.maxKnown = int(l.OpenFiles), true
	}
	return ps
}

func (ps procStats) write(metric func(name, typ, help string, samples ...string), flt func(float64) string) {
	if ps.ok {
		metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", flt(ps.cpuSeconds))
		metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", flt(float64(ps.residentBytes)))
		metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", flt(float64(ps.virtualBytes)))
		if ps.startTimeSeconds > 0 {
			metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", flt(ps.startTimeSeconds))
		}
	}
	if ps.fdsKnown {
		metric("process_open_fds", "gauge", "Number of open file descriptors.", flt(float64(ps.openFDs)))
	}
	if ps.maxKnown {
		metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", flt(float64(ps.maxFDs)))
	}
}
