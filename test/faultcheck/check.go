package faultcheck

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	pollEvery = 200 * time.Millisecond
	callLimit = time.Second // per probe command
	batchSize = 500         // keys per EXISTS pipeline
)

// Check waits up to timeout for the group to converge (every sentinel names
// the same master, it is a master, every other Redis replicates from it with
// its link up and has caught up with the master's offset), then reads every
// acknowledged key back from that master. If the group never converges, the
// report says why and loss is counted against the master most sentinels name.
// An error means loss could not be counted at all.
func Check(ctx context.Context, t Target, l *WriteLog, timeout time.Duration) (Report, error) {
	rep := Analyze(l)
	p := &probe{t: t, clients: map[string]*redis.Client{}}
	defer p.close()

	deadline := time.Now().Add(timeout)
	var o observation
	for {
		o = p.observe(ctx)
		if o.converged || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	rep.Converged, rep.ConvergeDetail, rep.Master = o.converged, o.detail, o.master
	if o.master == "" {
		return rep, fmt.Errorf("faultcheck: no sentinel names a master: %s", o.detail)
	}
	lost, err := p.missing(ctx, o.master, l.AckedKeys())
	if err != nil {
		return rep, fmt.Errorf("faultcheck: read back from %s: %w", o.master, err)
	}
	rep.Lost = len(lost)
	rep.LostKeys = lost[:min(len(lost), maxLostKeys)]
	return rep, nil
}

type observation struct {
	master    string // the address most sentinels name ("" if none answers)
	converged bool
	detail    string
}

// probe holds one client per address across polls.
type probe struct {
	t       Target
	clients map[string]*redis.Client
}

func (p *probe) client(addr string) *redis.Client {
	c, ok := p.clients[addr]
	if !ok {
		c = redis.NewClient(&redis.Options{
			Addr:          addr,
			Password:      p.t.Password,
			Dialer:        p.t.checkDialer(),
			MaxRetries:    -1,
			DialTimeout:   dialTimeout,
			DialerRetries: 1,
			ReadTimeout:   ioTimeout,
			WriteTimeout:  ioTimeout,
			PoolSize:      poolSize,
		})
		p.clients[addr] = c
	}
	return c
}

func (p *probe) close() {
	for _, c := range p.clients {
		_ = c.Close()
	}
}

func (p *probe) observe(ctx context.Context) observation {
	votes := map[string]int{}
	var problems []string
	if len(p.t.Sentinels) == 0 {
		problems = append(problems, "no sentinel addresses given")
	}
	for _, s := range p.t.Sentinels {
		cctx, cancel := context.WithTimeout(ctx, callLimit)
		cmd := redis.NewStringSliceCmd(cctx, "sentinel", "get-master-addr-by-name", p.t.MasterName)
		_ = p.client(s).Process(cctx, cmd)
		cancel()
		hp, err := cmd.Result()
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("sentinel %s: %v", s, err))
		case len(hp) != 2:
			problems = append(problems, fmt.Sprintf("sentinel %s: answered %q", s, hp))
		default:
			votes[net.JoinHostPort(hp[0], hp[1])]++
		}
	}
	var o observation
	for _, addr := range sortedKeys(votes) {
		if votes[addr] > votes[o.master] {
			o.master = addr
		}
	}
	if len(votes) > 1 {
		var named []string
		for _, addr := range sortedKeys(votes) {
			named = append(named, fmt.Sprintf("%s by %d", addr, votes[addr]))
		}
		problems = append(problems, "sentinels disagree: "+strings.Join(named, ", "))
	}
	if len(problems) > 0 {
		o.detail = strings.Join(problems, "; ")
		return o
	}
	if err := p.replication(ctx, o.master); err != nil {
		o.detail = err.Error()
		return o
	}
	o.converged = true
	o.detail = fmt.Sprintf("master %s, %d replicas in sync, %d/%d sentinels agree",
		o.master, len(p.t.Redis)-1, len(p.t.Sentinels), len(p.t.Sentinels))
	return o
}

// replication checks that master is one, and every other Redis its replica
// with the link up and caught up.
func (p *probe) replication(ctx context.Context, master string) error {
	known := false
	for _, r := range p.t.Redis {
		known = known || r == master
	}
	if !known {
		return fmt.Errorf("sentinels name %s, which is not one of the redis addresses", master)
	}
	mi, err := p.info(ctx, master)
	if err != nil {
		return fmt.Errorf("master %s: %w", master, err)
	}
	if mi["role"] != "master" {
		return fmt.Errorf("master %s: role %s", master, mi["role"])
	}
	// Read the master's offset before any replica's, so "caught up" means
	// holding everything the master had at that moment.
	moff, err := strconv.ParseInt(mi["master_repl_offset"], 10, 64)
	if err != nil {
		return fmt.Errorf("master %s: master_repl_offset: %w", master, err)
	}
	for _, r := range p.t.Redis {
		if r == master {
			continue
		}
		ri, err := p.info(ctx, r)
		if err != nil {
			return fmt.Errorf("replica %s: %w", r, err)
		}
		if ri["role"] != "slave" {
			return fmt.Errorf("%s: role %s, want replica of %s", r, ri["role"], master)
		}
		if of := net.JoinHostPort(ri["master_host"], ri["master_port"]); of != master {
			return fmt.Errorf("replica %s: replicates from %s, not %s", r, of, master)
		}
		if st := ri["master_link_status"]; st != "up" {
			return fmt.Errorf("replica %s: master link %s", r, st)
		}
		off, err := strconv.ParseInt(ri["slave_repl_offset"], 10, 64)
		if err != nil {
			return fmt.Errorf("replica %s: slave_repl_offset: %w", r, err)
		}
		if off < moff {
			return fmt.Errorf("replica %s: offset %d behind master's %d", r, off, moff)
		}
	}
	return nil
}

func (p *probe) info(ctx context.Context, addr string) (map[string]string, error) {
	cctx, cancel := context.WithTimeout(ctx, callLimit)
	defer cancel()
	s, err := p.client(addr).Info(cctx, "replication").Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// missing returns the keys absent from addr, in order, asking EXISTS for a
// batch of keys per round trip.
func (p *probe) missing(ctx context.Context, addr string, keys []string) ([]string, error) {
	c := p.client(addr)
	var lost []string
	for i := 0; i < len(keys); i += batchSize {
		batch := keys[i:min(i+batchSize, len(keys))]
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cmds, err := c.Pipelined(cctx, func(pipe redis.Pipeliner) error {
			for _, k := range batch {
				pipe.Exists(cctx, k)
			}
			return nil
		})
		cancel()
		if err != nil {
			return nil, err
		}
		for j, cmd := range cmds {
			n, err := cmd.(*redis.IntCmd).Result()
			if err != nil {
				return nil, fmt.Errorf("exists %s: %w", batch[j], err)
			}
			if n == 0 {
				lost = append(lost, batch[j])
			}
		}
	}
	return lost, nil
}

// checkDialer is the target's dialer as Check has always used it (nil:
// go-redis's own), over TLS when the target says so.
func (t Target) checkDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if t.TLS == nil {
		return t.Dialer
	}
	return t.dialerOr(&net.Dialer{})
}
