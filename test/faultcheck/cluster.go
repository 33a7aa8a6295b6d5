package faultcheck

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The cluster side of the checker: a Redis Cluster (cluster.mode =
// "cluster") under a fault, seen by a cluster-aware client. Its keys spread
// over every slot, so every shard takes writes, and the outage is measured
// per shard: the shard a fault hits, and the others, which should not see
// one.

// ClusterTarget is a Redis Cluster as a client reaches it.
type ClusterTarget struct {
	// Addrs is every instance, host:port: the client's seeds, and what
	// ClusterCheck asks for convergence.
	Addrs    []string
	Password string
	// Dialer reaches the cluster (the box bench dials through a network
	// namespace); nil is a plain net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	TLS    *tls.Config // spoken on every connection, as Target.TLS
}

func (t ClusterTarget) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return Target{Dialer: t.Dialer, TLS: t.TLS}.dialerOr(&net.Dialer{})
}

// maxInFlight bounds the ClusterWriter's concurrent writes: at 200 a second
// with a one-second deadline, a dead shard holds at most 200.
const maxInFlight = 512

// ClusterWriter sets rha:<run-id>:<seq> through a go-redis ClusterClient
// with its defaults, one write per tick, each in its own goroutine, as an
// application serves independent requests: a write stuck on a dead shard
// does not hold back the writes to the others.
type ClusterWriter struct {
	rdb  *redis.ClusterClient
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// reloadOnError: ask for a fresh slot map after a failed write (the
	// tuned client).
	reloadOnError bool

	mu  sync.Mutex
	log WriteLog
}

// StartCluster begins writing at rate per second (200 if rate ≤ 0) until
// Stop or ctx ends. The client is told every instance and nothing else
// (pool, timeouts, retries, redirects at go-redis's defaults); each write
// has a deadline of one second.
func StartCluster(ctx context.Context, t ClusterTarget, rate int) *ClusterWriter {
	w := &ClusterWriter{stop: make(chan struct{}), done: make(chan struct{}),
		log: newWriter(rate, ClientDefault).log}
	w.rdb = redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:    t.Addrs,
		Password: t.Password,
		Dialer:   t.dialer(),
	})
	go w.run(ctx, time.Second/time.Duration(w.log.Rate))
	return w
}

// StartClusterTuned is StartCluster through a client tuned to see the
// servers: short dial and I/O timeouts, a large pool, and its slot map
// reloaded every half second and after every failed write. go-redis's
// ClusterClient at its defaults reloads its slot map only on MOVED, ASK or
// READONLY, or once its map is a minute old (ClusterStateReloadInterval,
// go-redis#3979): a shard whose master went silent stays out for it until
// that master answers again, however soon its replica took over. The tuned
// client's outage is the cluster's: when the new master took its first
// write.
func StartClusterTuned(ctx context.Context, t ClusterTarget, rate int) *ClusterWriter {
	w := &ClusterWriter{stop: make(chan struct{}), done: make(chan struct{}),
		log: newWriter(rate, ClientTuned).log, reloadOnError: true}
	w.rdb = redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      t.Addrs,
		Password:                   t.Password,
		Dialer:                     t.dialer(),
		DialTimeout:                dialTimeout,
		ReadTimeout:                ioTimeout,
		WriteTimeout:               ioTimeout,
		MaxRedirects:               1,
		ClusterStateReloadInterval: 500 * time.Millisecond,
		// Writes stuck on a silent master must not take every connection
		// the slot-map reload needs from that node's pool.
		PoolSize: poolSize,
	})
	go w.run(ctx, time.Second/time.Duration(w.log.Rate))
	return w
}

// MarkFault records that fault name is being injected now.
func (w *ClusterWriter) MarkFault(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log.Fault, w.log.FaultAt = name, time.Now()
}

// Stop waits for the writes in flight, stops and returns the log, its
// records in write order.
func (w *ClusterWriter) Stop() *WriteLog {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		_ = w.rdb.Close()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.log
	l.Records = slices.Clone(l.Records)
	slices.SortFunc(l.Records, func(a, b Record) int { return int(a.Seq - b.Seq) })
	return &l
}

func (w *ClusterWriter) run(ctx context.Context, period time.Duration) {
	defer close(w.done)
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		select {
		case sem <- struct{}{}:
			wg.Go(func() {
				defer func() { <-sem }()
				w.write(ctx, seq)
			})
		default:
			w.record(Record{Seq: seq, Start: time.Now(), End: time.Now(), Err: "too many writes in flight"})
		}
		select {
		case <-ctx.Done():
		case <-w.stop:
		case <-tick.C:
			continue
		}
		wg.Wait()
		w.mu.Lock()
		w.log.Stopped = time.Now()
		w.mu.Unlock()
		return
	}
}

func (w *ClusterWriter) write(ctx context.Context, seq int64) {
	key := w.log.Key(seq)
	wctx, cancel := context.WithTimeout(ctx, writeDeadline)
	defer cancel()
	r := Record{Seq: seq, Start: time.Now()}
	err := w.rdb.Set(wctx, key, seq, 0).Err()
	r.End = time.Now()
	if err != nil {
		r.Err = err.Error()
		if w.reloadOnError {
			w.rdb.ReloadState(ctx)
		}
	} else {
		r.Acked = true
	}
	w.record(r)
}

func (w *ClusterWriter) record(r Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log.Records = append(w.log.Records, r)
}

// Slot is the Redis Cluster hash slot of key (CRC16/XMODEM of the key, or
// of its {hash tag}, modulo 16384).
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}

// ShardOutage is one shard's longest stretch without an acknowledged write.
type ShardOutage struct {
	From, To      int // the shard's slots
	Acked         int
	LongestOutage time.Duration
	OutageStart   time.Time
}

// ClusterReport is what one faulted run did to the cluster-aware client.
type ClusterReport struct {
	Fault    string
	Acked    int
	Failed   int
	Lost     int
	LostKeys []string
	// Shards is the outage per shard (the slot ranges the masters served
	// at the end), ordered by slot: stretches ending after the fault mark.
	Shards         []ShardOutage
	Converged      bool
	ConvergeDetail string
	Duration       time.Duration
	// Failovers is how many times a shard's master changed during the run
	// (an OwnerWatch's count); -1 when nobody counted.
	Failovers int
}

// Worst is the shard with the longest outage, and the longest outage
// among the others.
func (r ClusterReport) Worst() (worst ShardOutage, others time.Duration) {
	for _, s := range r.Shards {
		if s.LongestOutage > worst.LongestOutage {
			others = max(others, worst.LongestOutage)
			worst = s
		} else {
			others = max(others, s.LongestOutage)
		}
	}
	return worst, others
}

// Row is the report as one Markdown table row: fault, worst shard's
// outage, the others' longest, acked, lost, failovers, converged.
func (r ClusterReport) Row() string {
	w, others := r.Worst()
	conv := "yes"
	if !r.Converged {
		conv = "no"
	}
	f := "-"
	if r.Failovers >= 0 {
		f = strconv.Itoa(r.Failovers)
	}
	return row([]string{r.Fault, fmt.Sprintf("%s (slots %d-%d)", secs(w.LongestOutage), w.From, w.To), secs(others),
		strconv.Itoa(r.Acked), strconv.Itoa(r.Lost), f, conv}, nil)
}

// ClusterTableHeader is the header of ClusterReport rows.
const ClusterTableHeader = "| fault | outage of the shard hit | longest outage of the others | acked | lost | failovers | converged |\n|---|---|---|---|---|---|---|"

// ClusterCheck waits up to timeout for the cluster to converge (every
// instance answers with cluster_state ok, every slot is served, every
// master has a replica linked and caught up), then reads every
// acknowledged key back through a cluster client.
func ClusterCheck(ctx context.Context, t ClusterTarget, l *WriteLog, timeout time.Duration) (ClusterReport, error) {
	rep := ClusterReport{Fault: l.Fault, Duration: l.Stopped.Sub(l.Started), Failovers: -1}
	for _, r := range l.Records {
		if r.Acked {
			rep.Acked++
		} else {
			rep.Failed++
		}
	}
	p := &probe{t: Target{Password: t.Password, Dialer: t.Dialer, TLS: t.TLS}, clients: map[string]*redis.Client{}}
	defer p.close()
	deadline := time.Now().Add(timeout)
	var ranges [][3]string
	for {
		var err error
		ranges, err = p.clusterConverged(ctx, t.Addrs)
		if err == nil {
			rep.Converged, rep.ConvergeDetail = true, fmt.Sprintf("%d masters, each with a replica in sync; every slot served", len(ranges))
			break
		}
		rep.ConvergeDetail = err.Error()
		if !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	rep.Shards = shardOutages(l, ranges)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: t.Addrs, Password: t.Password, Dialer: t.dialer()})
	defer c.Close()
	keys := l.AckedKeys()
	for i := 0; i < len(keys); i += batchSize {
		batch := keys[i:min(i+batchSize, len(keys))]
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cmds, err := c.Pipelined(cctx, func(pipe redis.Pipeliner) error {
			for _, k := range batch {
				pipe.Exists(cctx, k)
			}
			return nil
		})
		cancel()
		if err != nil {
			return rep, fmt.Errorf("faultcheck: read back: %w", err)
		}
		for j, cmd := range cmds {
			if n, err := cmd.(*redis.IntCmd).Result(); err != nil || n == 0 {
				rep.Lost++
				if len(rep.LostKeys) < maxLostKeys {
					rep.LostKeys = append(rep.LostKeys, batch[j])
				}
			}
		}
	}
	return rep, nil
}

// clusterConverged checks every instance and returns the masters' slot
// ranges (from, to, master) when the cluster has settled.
func (p *probe) clusterConverged(ctx context.Context, addrs []string) ([][3]string, error) {
	var ranges [][3]string
	masters := map[string]int64{} // master address → its offset
	type rep struct{ master, link string }
	replicas := map[string]rep{}
	offsets := map[string]int64{}
	for _, a := range addrs {
		cctx, cancel := context.WithTimeout(ctx, callLimit)
		info, err := p.client(a).Do(cctx, "CLUSTER", "INFO").Text()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", a, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return nil, fmt.Errorf("%s: cluster state not ok", a)
		}
		ri, err := p.info(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", a, err)
		}
		switch ri["role"] {
		case "master":
			off, _ := strconv.ParseInt(ri["master_repl_offset"], 10, 64)
			masters[a] = off
		default:
			replicas[a] = rep{net.JoinHostPort(ri["master_host"], ri["master_port"]), ri["master_link_status"]}
			off, _ := strconv.ParseInt(ri["slave_repl_offset"], 10, 64)
			offsets[a] = off
		}
	}
	cctx, cancel := context.WithTimeout(ctx, callLimit)
	slots, err := masterSlots(cctx, p.client(addrs[0]))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cluster shards: %v", err)
	}
	served := 0
	for _, s := range slots {
		served += s.end - s.start + 1
		ranges = append(ranges, [3]string{strconv.Itoa(s.start), strconv.Itoa(s.end), s.master})
	}
	if served != 16384 {
		return nil, fmt.Errorf("%d of 16384 slots served", served)
	}
	for m, moff := range masters {
		synced := false
		for r, rr := range replicas {
			if rr.master == m && rr.link == "up" && offsets[r] >= moff {
				synced = true
			}
		}
		if !synced && slices.ContainsFunc(ranges, func(x [3]string) bool { return x[2] == m }) {
			return nil, fmt.Errorf("master %s has no replica linked and caught up", m)
		}
	}
	sort.Slice(ranges, func(i, j int) bool {
		a, _ := strconv.Atoi(ranges[i][0])
		b, _ := strconv.Atoi(ranges[j][0])
		return a < b
	})
	return ranges, nil
}

// shardOutages is each shard's longest stretch without an ack that ends
// after the fault mark, the writer's start and stop counting as acks.
// Contiguous ranges of one master are one shard.
func shardOutages(l *WriteLog, ranges [][3]string) []ShardOutage {
	type shard struct {
		ShardOutage
		prev time.Time
	}
	var shards []*shard
	byMaster := map[string]*shard{}
	for _, r := range ranges {
		from, _ := strconv.Atoi(r[0])
		to, _ := strconv.Atoi(r[1])
		if s, ok := byMaster[r[2]]; ok && s.To+1 == from {
			s.To = to
			continue
		}
		s := &shard{ShardOutage: ShardOutage{From: from, To: to}, prev: l.Started}
		byMaster[r[2]] = s
		shards = append(shards, s)
	}
	find := func(slot int) *shard {
		for _, s := range shards {
			if slot >= s.From && slot <= s.To {
				return s
			}
		}
		return nil
	}
	consider := func(s *shard, end time.Time) {
		if d := end.Sub(s.prev); end.After(l.FaultAt) && d > s.LongestOutage {
			s.OutageStart, s.LongestOutage = s.prev, d
		}
		s.prev = end
	}
	recs := slices.Clone(l.Records)
	slices.SortFunc(recs, func(a, b Record) int { return a.End.Compare(b.End) })
	for _, r := range recs {
		if !r.Acked {
			continue
		}
		if s := find(Slot(l.Key(r.Seq))); s != nil {
			s.Acked++
			consider(s, r.End)
		}
	}
	out := make([]ShardOutage, len(shards))
	for i, s := range shards {
		consider(s, l.Stopped)
		out[i] = s.ShardOutage
	}
	return out
}

// OwnerWatch counts the failovers of a cluster: it asks every instance
// which master serves each shard's first slot, several times a second,
// and records each change of the master most of them name.
type OwnerWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	changes []string
	first   time.Time // of the first change
}

// WatchOwners starts watching t until Stop.
func WatchOwners(ctx context.Context, t ClusterTarget) *OwnerWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &OwnerWatch{cancel: cancel, done: make(chan struct{})}
	p := &probe{t: Target{Password: t.Password, Dialer: t.Dialer, TLS: t.TLS}, clients: map[string]*redis.Client{}}
	go func() {
		defer close(w.done)
		defer p.close()
		last := map[int]string{}
		for ctx.Err() == nil {
			owners := p.owners(ctx, t.Addrs)
			for slot, o := range owners {
				if prev, ok := last[slot]; ok && prev != o {
					w.mu.Lock()
					if len(w.changes) == 0 {
						w.first = time.Now()
					}
					w.changes = append(w.changes, fmt.Sprintf("%s slot %d: %s -> %s", time.Now().Format("15:04:05.000"), slot, prev, o))
					w.mu.Unlock()
				}
				last[slot] = o
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

// Stop ends the watch and returns the changes seen, in order.
func (w *OwnerWatch) Stop() []string {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}

// First is when the first change was seen (polling every 100 ms, as a
// majority of the instances answered); zero when none was.
func (w *OwnerWatch) First() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first
}

// owners asks every instance for CLUSTER SLOTS and returns, for each range's
// first slot, the master most of them name.
func (p *probe) owners(ctx context.Context, addrs []string) map[int]string {
	votes := map[int]map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		c := p.client(a)
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			slots, err := masterSlots(cctx, c)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range slots {
				if votes[s.start] == nil {
					votes[s.start] = map[string]int{}
				}
				votes[s.start][s.master]++
			}
		})
	}
	wg.Wait()
	out := map[int]string{}
	for slot, v := range votes {
		best := ""
		for _, a := range sortedKeys(v) {
			if v[a] > v[best] {
				best = a
			}
		}
		out[slot] = best
	}
	return out
}

// slotRange is a range of slots and the master serving it, host:port.
type slotRange struct {
	start, end int
	master     string
}

// masterSlots is one instance's view of who serves which slots (CLUSTER
// SHARDS): the ranges of every shard whose master it names.
func masterSlots(ctx context.Context, c *redis.Client) ([]slotRange, error) {
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []slotRange
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role != "master" {
				continue
			}
			for _, r := range sh.Slots {
				out = append(out, slotRange{int(r.Start), int(r.End), net.JoinHostPort(n.IP, strconv.Itoa(int(n.Port)))})
			}
		}
	}
	return out, nil
}
