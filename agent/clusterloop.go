package agent

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// clusterLoop is what the cluster loop keeps between rounds; only the loop's
// goroutine touches it (waitCluster runs before the loop starts).
type clusterLoop struct {
	created   bool   // the cluster exists: creation is over
	createWhy string // why creation waits, or was refused
	refused   string // the last refusal logged, not to repeat it every second
	observed  time.Time
	live      map[wire.Addr]string // configured instance → the node id it gave
	liveAt    time.Time
	remet     map[wire.Addr]time.Time
	reloadErr string
	switching bool // a switchover runs
}

// instObs is one observation of a local instance.
type instObs struct {
	up       bool
	err      string
	role     wire.Role
	view     wire.ClusterView
	info     map[string]string // CLUSTER INFO
	keys     int64             // DBSIZE, asked while the instance is alone
	lag      int64             // replica: bytes behind its master; -1 unknown
	fenceSet bool              // min-replicas-to-write refuses every write
	at       time.Time
}

// me is the instance's own node in its view.
func (o instObs) me() (wire.Node, bool) { return o.view.Myself() }

// servesSlots: the instance is a master serving slots.
func (o instObs) servesSlots() bool {
	me, ok := o.me()
	return o.up && o.role.Kind == "master" && ok && len(me.Slots) > 0
}

// loop runs the cluster's rounds until ctx ends: observation and the
// keeping steps once a second, the fence every round while a local
// instance is a master; reloads and switchovers in between.
func (c *clusterAgent) loop(ctx context.Context, errc <-chan error, hup <-chan os.Signal) error {
	changes, stopWatch, err := watchConfig(ctx, c.n.path, c.log)
	if err != nil {
		c.log.Warn("config watch unavailable; reload with SIGHUP", "err", err)
	}
	defer stopWatch()
	dog := watchdogEvery()
	barked := time.Now()
	if dog > 0 {
		c.n.notify.watchdog()
	}
	var ops sync.WaitGroup
	defer ops.Wait()
	done := make(chan struct{}, 1)
	every := fenceEvery(c.n.config())
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-hup:
			c.log.Info("SIGHUP: reloading configuration")
			c.reload(ctx)
			continue
		case <-changes:
			c.log.Info("configuration directory changed: reloading")
			c.reload(ctx)
			continue
		case call := <-c.ops:
			if c.st.switching {
				call.reply <- opReply{err: errAlreadySwitching}
				continue
			}
			c.st.switching = true
			ops.Go(func() {
				rctx, cancel := context.WithCancel(call.ctx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				msg, err := call.run(rctx)
				call.reply <- opReply{msg, err}
				done <- struct{}{}
			})
			continue
		case <-done:
			c.st.switching = false
			continue
		case <-tick.C:
		}
		if time.Since(c.st.observed) >= clusterObserveEvery-every/2 {
			c.observe(ctx)
			c.keep(ctx)
		}
		c.fenceRound(ctx)
		c.publish()
		c.n.notify.setStatus(c.statusLine())
		if dog > 0 && time.Since(barked) >= dog {
			c.n.notify.watchdog()
			barked = time.Now()
		}
	}
}

// observe asks every local instance what it is, notes role changes in the
// history and keeps what failback needs to know.
func (c *clusterAgent) observe(ctx context.Context) {
	cfg := c.n.config()
	now := time.Now()
	for _, inst := range c.insts {
		o := c.observeOne(ctx, inst)
		inst.obs = o
		if !o.up {
			continue
		}
		kind := "replica"
		if o.role.Kind == "master" {
			kind = "master"
		}
		if ch := inst.roles.note(now, ha.Snapshot{RedisUp: true, Role: o.role, Self: inst.addr}); ch != nil {
			ch.Instance = inst.addr.String()
			c.n.recordChange(cfg, *ch)
		}
		c.noteFailback(inst, o, kind)
	}
	c.st.observed = now
}

func (c *clusterAgent) observeOne(ctx context.Context, inst *instance) instObs {
	o := instObs{lag: -1, at: time.Now()}
	if inst.child.Current() == nil {
		o.err = "not running"
		return o
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	r := c.pool.Get(inst.addr)
	var err error
	if o.role, err = r.Role(cctx); err != nil {
		o.err = err.Error()
		return o
	}
	o.up = true
	if o.view, err = r.ClusterNodes(cctx); err != nil {
		o.err = err.Error()
	}
	if o.info, err = r.ClusterInfo(cctx); err != nil {
		o.info = map[string]string{}
	}
	o.fenceSet, _ = r.ClusterFenced(cctx)
	if len(o.view) <= 1 {
		o.keys, _ = r.DBSize(cctx)
	}
	if o.role.Kind == "slave" && o.role.Link == "connected" {
		if m, err := c.pool.Get(o.role.Master).Role(cctx); err == nil && m.Kind == "master" {
			o.lag = max(m.Offset-o.role.Offset, 0)
		}
	}
	return o
}

// noteFailback decides whether a planned master that is a replica should
// take its shard back. It should after it came back from a fault: started
// by this agent (a crash, a boot), or demoted without a manual failover
// asked of it (cut off, frozen). It should not after a switchover the
// operator asked for: that was a CLUSTER FAILOVER, which the master counts
// in cluster_stats_messages_mfstart_received.
// manualFailoverEnded is past the end of any manual failover: Redis gives
// one up after 5 s (CLUSTER_MF_TIMEOUT) and the master lifts its pause.
const manualFailoverEnded = 10 * time.Second

func (c *clusterAgent) noteFailback(inst *instance, o instObs, kind string) {
	if inst.place.Replica != 0 {
		return
	}
	mf := o.info["cluster_stats_messages_mfstart_received"]
	switch {
	case o.servesSlots():
		if inst.failback.Want {
			c.log.Info("planned master serves its shard again", "instance", inst.addr.String())
		}
		inst.failback.Want = false
		// A new MFSTART on a master that still serves its slots is a manual
		// failover under way (or one observation straddling its end): keep
		// the count from before it, so that the demotion it ends in is not
		// taken for a fault's, until it has surely ended or given up.
		switch {
		case !inst.wasMast: // just became master, or first seen
			inst.mfstart, inst.mfNewAt = mf, time.Time{}
		case mf == inst.mfstart:
			inst.mfNewAt = time.Time{}
		case inst.mfNewAt.IsZero():
			inst.mfNewAt = time.Now()
		case time.Since(inst.mfNewAt) > manualFailoverEnded:
			inst.mfstart, inst.mfNewAt = mf, time.Time{}
		}
		inst.wasMast = true
	case inst.fresh.Load():
		inst.failback.Want = kind == "replica"
		inst.wasMast = false
		inst.mfstart, inst.mfNewAt = mf, time.Time{}
	case inst.wasMast && kind == "replica":
		inst.failback.Want = mf == inst.mfstart
		if inst.failback.Want {
			c.log.Warn("planned master was demoted by a failover: it takes its shard back once caught up", "instance", inst.addr.String())
		}
		inst.wasMast = false
	}
	inst.fresh.Store(false)
}

// keep carries out one round of keeping the cluster as planned: creation
// (on the bootstrap box, until it exists), then for each local instance
// joining, following its shard's master, failback; forgetting ghosts and
// re-meeting moved instances.
func (c *clusterAgent) keep(ctx context.Context) {
	cfg := c.n.config()
	if !c.st.created {
		for _, inst := range c.insts {
			if inst.obs.view.Covered() == wire.Slots {
				c.st.created = true
				c.st.createWhy = ""
			}
		}
		if !c.st.created && cfg.Bootstrap == cfg.Self {
			c.create(ctx)
		}
	}
	var anchor *wire.Addr
	for _, inst := range c.insts {
		o := inst.obs
		if !o.up {
			continue
		}
		if len(o.view) <= 1 {
			if anchor == nil {
				a := c.findAnchor(ctx)
				anchor = &a
			}
			c.join(ctx, inst, *anchor)
			continue
		}
		c.followShard(ctx, inst)
		c.tryFailback(ctx, inst)
	}
	if time.Since(c.st.liveAt) >= liveIDsEvery {
		c.st.live = c.liveIDs(ctx)
		c.st.liveAt = time.Now()
		c.tidy(ctx)
	}
}

// create takes one step of creating the cluster (ha.Create).
func (c *clusterAgent) create(ctx context.Context) {
	views := c.ask(ctx, c.plan.All(), true)
	step := ha.Create(c.plan, c.insts[0].addr, views)
	c.st.createWhy = step.Why
	switch step.State {
	case ha.CreateDone:
		c.st.created = true
		c.st.createWhy = ""
		c.log.Info("cluster created: every slot is served")
		return
	case ha.CreateRefuse:
		if c.st.refused != step.Why {
			c.log.Error("cluster creation refused", "why", step.Why)
			c.st.refused = step.Why
		}
		c.st.createWhy = "creation refused: " + step.Why
		return
	case ha.CreateWait:
		return
	}
	c.st.refused = ""
	do := func(what string, a wire.Addr, f func(context.Context) error) {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		if err := f(cctx); err != nil {
			c.log.Warn("cluster creation: "+what, "instance", a.String(), "err", err)
			return
		}
		c.log.Info("cluster creation: "+what, "instance", a.String())
	}
	for _, e := range step.Epochs {
		do(fmt.Sprintf("config epoch %d", e.Epoch), e.Addr, func(ctx context.Context) error { return c.pool.Get(e.Addr).ClusterSetEpoch(ctx, e.Epoch) })
	}
	for _, m := range step.Meets {
		do("meet "+m.To.String(), m.From, func(ctx context.Context) error {
			return c.pool.Get(m.From).ClusterMeet(ctx, m.To, config.BusPort(m.To))
		})
	}
	for _, s := range step.AddSlots {
		do("add slots "+rangeList(s.Ranges), s.Addr, func(ctx context.Context) error { return c.pool.Get(s.Addr).ClusterAddSlots(ctx, s.Ranges) })
	}
	for _, r := range step.Replicate {
		do("replicate "+r.MasterID, r.Addr, func(ctx context.Context) error { return c.pool.Get(r.Addr).ClusterReplicate(ctx, r.MasterID) })
	}
}

func rangeList(rs []wire.SlotRange) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ",")
}

// findAnchor is an instance of another box that is in the cluster and
// serves slots, for a lone local instance to meet; zero when none answers.
func (c *clusterAgent) findAnchor(ctx context.Context) wire.Addr {
	var others []wire.Addr
	for _, a := range c.plan.All() {
		if c.plan.BoxOf(a) != c.box {
			others = append(others, a)
		}
	}
	for _, iv := range c.ask(ctx, others, false) {
		if iv.Err == nil && len(iv.View) > 1 && iv.View.Covered() > 0 {
			return iv.Addr
		}
	}
	return wire.Addr{}
}

// join meets a lone local instance into the cluster that exists without
// it (a new or re-imaged box); never one that holds keys.
func (c *clusterAgent) join(ctx context.Context, inst *instance, anchor wire.Addr) {
	if anchor.IsZero() {
		return // no cluster yet: the bootstrap box creates it
	}
	if inst.obs.keys > 0 {
		msg := fmt.Sprintf("%s holds %d keys and is in no cluster: it is not joined (never over data)", inst.addr, inst.obs.keys)
		if c.st.refused != msg {
			c.log.Error("cluster join refused", "why", msg)
			c.st.refused = msg
		}
		return
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := c.pool.Get(inst.addr).ClusterMeet(cctx, anchor, config.BusPort(anchor)); err != nil {
		c.log.Warn("join the cluster", "instance", inst.addr.String(), "via", anchor.String(), "err", err)
		return
	}
	c.log.Info("new instance meets the cluster", "instance", inst.addr.String(), "via", anchor.String())
}

// followShard makes an instance replicate its shard's master when it
// serves nothing and follows another node (new, re-imaged, or left behind),
// once that has lasted followAfter: Redis Cluster moves the replicas it
// knows by itself first.
func (c *clusterAgent) followShard(ctx context.Context, inst *instance) {
	id, at := ha.ClusterFollow(inst.obs.view, c.plan.Range(inst.place.Shard))
	// A master without slots is new to the cluster: it follows at once.
	me, _ := inst.obs.me()
	fresh := me.IsMaster() && len(me.Slots) == 0
	if id == "" || (id != inst.follow && !fresh) {
		inst.follow, inst.followAt = id, time.Now()
		return
	}
	if time.Since(inst.followAt) < followAfter && !fresh {
		return
	}
	inst.followAt = time.Now()
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	inst.roles.setCause("made a replica of its shard's master " + at.String() + " by the agent")
	if err := c.pool.Get(inst.addr).ClusterReplicate(cctx, id); err != nil {
		c.log.Warn("replicate the shard's master", "instance", inst.addr.String(), "master", at.String(), "err", err)
		return
	}
	c.log.Info("instance made a replica of its shard's master", "instance", inst.addr.String(), "master", at.String())
	if inst.place.Replica == 0 {
		inst.failback.Want = true
	}
}

// tryFailback asks a planned master that came back as a replica to take
// its shard back (ha.Failback), with plain CLUSTER FAILOVER.
func (c *clusterAgent) tryFailback(ctx context.Context, inst *instance) {
	if inst.place.Replica != 0 || c.st.switching {
		return
	}
	o := inst.obs
	in := ha.FailbackInput{Replica: o.role.Kind == "slave", LinkUp: o.role.Link == "connected", Lag: o.lag,
		ClusterOK: o.info["cluster_state"] == "ok"}
	if me, ok := o.me(); ok && in.Replica {
		if m, ok := o.view.ByID(me.MasterID); ok && !m.Failing() && m.Owns(c.plan.Range(inst.place.Shard).From) {
			in.MasterOK = true
		}
	}
	if !inst.failback.Step(time.Now(), in) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	inst.roles.setCause("failback: the planned master takes its shard back (CLUSTER FAILOVER)")
	if err := c.pool.Get(inst.addr).ClusterFailover(cctx, false); err != nil {
		c.log.Warn("failback: CLUSTER FAILOVER refused", "instance", inst.addr.String(), "err", err)
		return
	}
	c.log.Info("failback: the planned master asks to take its shard back (CLUSTER FAILOVER)", "instance", inst.addr.String(),
		"from", o.role.Master.String())
}

// liveIDs asks every configured instance for its node id.
func (c *clusterAgent) liveIDs(ctx context.Context) map[wire.Addr]string {
	live := map[wire.Addr]string{}
	for _, iv := range c.ask(ctx, c.plan.All(), false) {
		if id := iv.ID(); iv.Err == nil && id != "" {
			live[iv.Addr] = id
		}
	}
	return live
}

// tidy forgets ghosts (ha.Ghosts) and meets moved instances again
// (ha.Remeet) in each local instance's view. Every agent does so for its
// own instances each few seconds, so a ghost is forgotten everywhere well
// within the minute CLUSTER FORGET bans it from gossip.
func (c *clusterAgent) tidy(ctx context.Context) {
	if c.st.remet == nil {
		c.st.remet = map[wire.Addr]time.Time{}
	}
	all := c.plan.All()
	for _, inst := range c.insts {
		o := inst.obs
		if !o.up || len(o.view) <= 1 {
			continue
		}
		r := c.pool.Get(inst.addr)
		for _, g := range ha.Ghosts(o.view, all, c.st.live) {
			cctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := r.ClusterForget(cctx, g.ID)
			cancel()
			if err != nil {
				c.log.Warn("forget a removed or replaced node", "instance", inst.addr.String(), "node", g.ID, "err", err)
				continue
			}
			c.log.Info("forgot a removed or replaced node", "instance", inst.addr.String(), "node", g.ID, "was", g.Addr.String())
		}
		for _, a := range ha.Remeet(o.view, c.st.live) {
			if time.Since(c.st.remet[a]) < remeetEvery {
				continue
			}
			c.st.remet[a] = time.Now()
			cctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := r.ClusterMeet(cctx, a, config.BusPort(a))
			cancel()
			if err != nil {
				c.log.Warn("meet a moved instance at its address", "instance", inst.addr.String(), "at", a.String(), "err", err)
				continue
			}
			c.log.Info("met a moved instance at its address", "instance", inst.addr.String(), "at", a.String())
		}
	}
}

// fenceRound is the self-fence of local masters (ha.Fence): a master that
// cannot reach a majority of the cluster's masters for fence_after refuses
// writes, well before cluster-node-timeout lets the majority elect its
// replica; it lifts the fence once a majority is back and the cluster
// still has it serve its slots, or once it is a replica.
func (c *clusterAgent) fenceRound(ctx context.Context) {
	cfg := c.n.config()
	var view wire.ClusterView
	anyMaster := false
	for _, inst := range c.insts {
		if len(inst.obs.view) > 1 && view == nil {
			view = inst.obs.view
		}
		anyMaster = anyMaster || inst.obs.servesSlots()
	}
	round := ha.Round{Majority: 1, Asked: time.Now()}
	if anyMaster && view != nil {
		masters := view.Masters()
		round.Majority = len(masters)/2 + 1
		round.Reachable = c.reachable(ctx, masters)
	}
	for _, inst := range c.insts {
		o := inst.obs
		inst.fence.After, inst.fence.Every = time.Duration(cfg.Sentinel.FenceAfter), fenceEvery(cfg)
		master := o.servesSlots()
		r := c.pool.Get(inst.addr)
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		switch inst.fence.Step(time.Now(), master, inst.fenced, round) {
		case ha.FenceUp:
			if err := r.ClusterFence(cctx); err != nil {
				c.log.Error("fence: could not refuse writes", "instance", inst.addr.String(), "err", err)
				break
			}
			inst.fenced = true
			c.log.Warn("fenced: this master sees no majority of the cluster's masters; refusing writes",
				"instance", inst.addr.String(), "masters_reachable", round.Reachable, "majority", round.Majority)
		case ha.FenceDown:
			if c.stillServes(cctx, inst) {
				if err := r.ClusterUnfence(cctx); err == nil {
					inst.fenced = false
					c.log.Info("unfenced: a majority of masters is in sight and the cluster still has it serve its slots",
						"instance", inst.addr.String())
				}
			}
		case ha.FenceClear:
			if err := r.ClusterUnfence(cctx); err == nil {
				inst.fenced = false
				c.log.Info("fence lifted: the instance is a replica now", "instance", inst.addr.String())
			}
		}
		if o.up && o.fenceSet != inst.fenced && time.Since(o.at) < clusterObserveEvery {
			// A fence command whose reply timed out may have run late, or
			// an instance started fenced: put redis's own right.
			put := r.ClusterUnfence
			if inst.fenced {
				put = r.ClusterFence
			}
			if err := put(cctx); err == nil {
				inst.obs.fenceSet = inst.fenced
			}
		}
		cancel()
	}
}

// reachable counts the masters that answer a PING now, local ones
// included.
func (c *clusterAgent) reachable(ctx context.Context, masters []wire.Node) int {
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	for _, m := range masters {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, clusterPingTimeout)
			defer cancel()
			if m.Addr.IsZero() || c.pool.Get(m.Addr).Ping(pctx) != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		})
	}
	wg.Wait()
	return n
}

// stillServes asks the other masters in sight whether the instance still
// serves its first slot in their view: a fenced master unfences only then.
func (c *clusterAgent) stillServes(ctx context.Context, inst *instance) bool {
	me, ok := inst.obs.me()
	if !ok || len(me.Slots) == 0 {
		return false
	}
	slot := me.Slots[0].From
	agree := 0
	for _, m := range inst.obs.view.Masters() {
		if m.ID == me.ID {
			continue
		}
		v, err := c.pool.Get(m.Addr).ClusterNodes(ctx)
		if err != nil {
			continue
		}
		o, ok := v.Owner(slot)
		if !ok || o.ID != me.ID {
			return false
		}
		agree++
	}
	return agree > 0
}

// statusLine is STATUS=: the cluster's state and each local instance.
func (c *clusterAgent) statusLine() string {
	var parts []string
	if c.st.createWhy != "" {
		parts = append(parts, "cluster not created: "+c.st.createWhy)
	}
	for _, inst := range c.insts {
		o := inst.obs
		p := strconv.Itoa(inst.addr.Port) + " "
		switch {
		case inst.gated.Load():
			p += "down: restart gate holds it until its replica serves its slots"
		case !o.up:
			p += "down"
		case len(o.view) <= 1:
			p += "not in a cluster yet"
		case o.role.Kind == "master":
			me, _ := o.me()
			p += "master " + rangeList(me.Slots)
			if inst.fenced {
				p += " FENCED"
			}
		default:
			link := "link up"
			if o.role.Link != "connected" {
				link = "link " + o.role.Link
			}
			p += "replica of " + o.role.Master.String() + " " + link
		}
		parts = append(parts, p)
	}
	state := ""
	for _, inst := range c.insts {
		if s := inst.obs.info["cluster_state"]; s != "" && len(inst.obs.view) > 1 {
			state = "cluster " + s
			break
		}
	}
	if state != "" {
		parts = append([]string{state}, parts...)
	}
	if c.st.reloadErr != "" {
		parts = append(parts, "reload refused: "+c.st.reloadErr)
	}
	return strings.Join(parts, " · ")
}
