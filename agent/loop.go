package agent

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Round periods. The fence asks every sentinel once per round
// (sentinel.Prober) and reads the answers at the next, so an idle round
// costs one wake-up. An answer read at a round proves the sentinel reachable
// when the previous round asked, so a master that loses sight of the
// majority just after one round's answers is fenced two rounds later:
// rounds every fence_after/2 (250 ms by default) fence it within
// fence_after. A sentinel slower than a round counts as unreachable for
// that round.
const (
	fenceProbeEvery   = 250 * time.Millisecond // at most; fence_after/2 when shorter
	fenceProbeTimeout = 250 * time.Millisecond // a round that waits for its answers
	// A replica's view feeds /primary, /replica and status only; a round a
	// second is as fresh as the observation beside it.
	quorumEvery = time.Second
	// repointAfter leaves Sentinel the first chance to reconfigure a replica
	// after a failover (it does so within about a second for the replicas it
	// knows).
	repointAfter = time.Second
	// electionRetryWindow is how long after a lost election the agent looks
	// whether it was a split vote: every sentinel aborts within a second or
	// so of the others (Sentinel desynchronizes them by up to one).
	electionRetryWindow = 5 * time.Second
)

// fenceEvery is the master's round period.
func fenceEvery(cfg *config.Config) time.Duration {
	return min(fenceProbeEvery, time.Duration(cfg.Sentinel.FenceAfter)/2)
}

// loopState is what the loop observes and decides; only the loop's
// goroutine touches it.
type loopState struct {
	view       ha.View
	fenced     bool      // this master refuses writes: it sees no majority
	prevOffset int64     // master offset at the previous observation
	named      wire.Addr // the master the local sentinel last named, for the log
	reloadErr  string    // why the last reload was refused; "" after a good one
	vipErr     string    // last VIP problem logged

	fence  ha.Fence
	vip    ha.VIP
	follow ha.Follow

	probe     *sentinel.Prober
	probeFor  sentinel.Group
	probeCfg  *config.Config // the configuration probeFor was computed from
	every     time.Duration  // the ticker's period
	observed  time.Time      // the last observation
	barked    time.Time      // the last WATCHDOG=1
	announces sync.WaitGroup // gratuitous ARP bursts of the VIP

	switching bool // an operation (switchover, restart, drain, a sentinel reset) runs
	// Membership (members.go): the master asks what the sentinels remember.
	gathering   bool      // an ask is out
	gatheredAt  time.Time // when the last one went out
	forget      ha.Forget
	forgetSaid  string // what was last logged of it
	prioApplied int    // the replica-priority last set on redis; -1 unknown
	// retryUntil: the local sentinel lost an election; until then, look
	// whether anybody won it (ha.RetryElection).
	retryUntil time.Time
}

// published is what the loop last saw, for readers on other goroutines.
type published struct {
	cfg  *config.Config
	view ha.View
}

// trigger is why the loop takes a step.
type trigger int

const (
	onTick  trigger = iota // the ticker
	onEvent                // a sentinel event: observe, and ask the sentinels now
	onAgain                // just fenced: ask again now, and wait for the answers
)

// loop follows the group until ctx ends: one ticker drives the observation,
// the quorum round, the fence, the re-pointing of a stray replica and the
// virtual IP, in that order; sentinel events, reloads and switchover
// requests come in between.
func (n *node) loop(ctx context.Context, errc <-chan error, hup <-chan os.Signal) error {
	changes, stopWatch, err := watchConfig(ctx, n.path, n.log)
	if err != nil {
		// Reload through SIGHUP still works; say why the watch is missing.
		n.log.Warn("config watch unavailable; reload with SIGHUP", "err", err)
	}
	defer stopWatch()
	events := n.sentinelEvents(ctx)
	// WATCHDOG=1 comes from this loop only: if the loop hangs, systemd
	// notices and restarts the agent.
	dog := watchdogEvery()
	if dog > 0 {
		n.notify.watchdog()
		n.st.barked = time.Now()
	}
	switched := make(chan struct{}, 1)       // one operation (switchover, restart, drain) at a time; it never waits for the loop
	gathered := make(chan ha.MembersView, 1) // one ask at a time
	var switchovers sync.WaitGroup
	defer func() {
		switchovers.Wait()
		if n.st.probe != nil {
			n.st.probe.Close()
		}
	}()

	st := &n.st
	st.every = n.roundEvery(n.config())
	tick := time.NewTicker(st.every)
	defer tick.Stop()
	why := onTick
	for {
		if why != onAgain {
			select {
			case <-ctx.Done():
				return nil
			case err := <-errc:
				return err
			case <-tick.C:
				why = onTick
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if ev.Type == "-failover-abort-not-elected" {
					// The local sentinel lost an election: perhaps nobody won.
					st.retryUntil = time.Now().Add(electionRetryWindow)
				} else if ev.Type != "+switch-master" && ev.Type != "resubscribed" && ev.Type != "+convert-to-slave" && ev.Type != "+promoted-slave" {
					continue
				}
				n.log.Info("sentinel event", "type", ev.Type, "payload", ev.Payload)
				why = onEvent
			case <-hup:
				n.log.Info("SIGHUP: reloading configuration")
				if err := n.reload(ctx); err != nil {
					return err
				}
				continue
			case <-changes:
				n.log.Info("configuration directory changed: reloading")
				if err := n.reload(ctx); err != nil {
					return err
				}
				continue
			case call := <-n.ops:
				if st.switching {
					call.reply <- opReply{err: errAlreadySwitching}
					continue
				}
				st.switching = true
				switchovers.Go(func() {
					// It ends with the request or with the agent.
					rctx, cancel := context.WithCancel(call.ctx)
					defer cancel()
					defer context.AfterFunc(ctx, cancel)()
					msg, err := call.run(rctx)
					call.reply <- opReply{msg, err}
					switched <- struct{}{}
				})
				continue
			case <-switched:
				st.switching = false
				continue
			case v := <-gathered:
				st.gathering = false
				if st.switching {
					continue // the group may be changing under the answers
				}
				if f := n.forgetStep(v); !f.Reset.IsZero() || len(f.Drop) > 0 {
					st.switching = true
					cfg := n.config()
					switchovers.Go(func() {
						n.forget(ctx, cfg, f)
						switched <- struct{}{}
					})
				}
				continue
			}
		}
		why = n.step(ctx, why)
		if cfg := n.config(); n.membersDue(cfg) {
			st.gathering, st.gatheredAt = true, time.Now()
			s := st.view.S
			switchovers.Go(func() { gathered <- n.gatherMembers(ctx, cfg, s) })
		}
		if next := n.roundEvery(n.config()); next != st.every {
			st.every = next
			tick.Reset(next)
		}
		if dog > 0 && time.Since(st.barked) >= dog {
			n.notify.watchdog()
			st.barked = time.Now()
		}
	}
}

// roundEvery is the ticker's period: a master asks every round (the fence
// must be quick), and so does a box with a VIP to keep where /primary is;
// others once a second, which is also the observation's pace.
func (n *node) roundEvery(cfg *config.Config) time.Duration {
	if (n.roles.isMaster() && len(cfg.Peers) > 1) || n.st.fenced || cfg.VIP.Address != "" {
		return fenceEvery(cfg)
	}
	return quorumEvery
}

// step is one round: observe (when due), ask the sentinels (when due), then
// the fence, follow and VIP decisions, each carried out at once. It returns
// onAgain when the next round must start now.
func (n *node) step(ctx context.Context, why trigger) trigger {
	st := &n.st
	cfg := n.config()
	now := why != onTick // ask the sentinels and wait for the answers
	if why == onEvent || time.Since(st.observed) >= observeEvery-st.every/2 {
		if _, becameMaster := n.observe(ctx); becameMaster && why == onTick {
			// A new master's fence clock must start now.
			now = true
		}
	}
	defer n.vipStep(ctx, cfg)
	if len(cfg.Peers) < 2 {
		return onTick
	}
	master := n.roles.isMaster()
	if !now && !master && !st.fenced && st.probe != nil && time.Since(st.probe.Asked()) < quorumEvery-st.every/2 {
		return onTick
	}
	q := n.round(ctx, cfg, now || st.fenced)
	st.fence.After, st.fence.Every = time.Duration(cfg.Sentinel.FenceAfter), fenceEvery(cfg)
	next := onTick
	// Paused, no failover can happen, so no other master can appear: a
	// fence would only cost writes. None is raised, and one left from
	// before the pause is lifted as soon as the sentinels name this box.
	paused := n.isPaused()
	switch st.fence.Step(time.Now(), master, st.fenced, ha.Round{Reachable: q.Reachable, Majority: len(cfg.Peers)/2 + 1, Asked: q.At}) {
	case ha.FenceClear:
		st.fenced = false
	case ha.FenceUp:
		if !paused {
			n.fence(ctx, cfg, q.Reachable)
			next = onAgain // a fenced master waits for its answers: start now
		}
	case ha.FenceCheck:
		if !paused {
			next = onAgain // ask now and wait: fence on the answers, not on this agent's delay
		}
	case ha.FenceDown:
		n.unfence(ctx, cfg)
	}
	if paused && st.fenced && master {
		n.unfence(ctx, cfg)
	}
	if ha.FenceDrift(st.view.S) && st.view.S.Fenced == st.fenced {
		n.refence(ctx, cfg)
	}

	if !st.retryUntil.IsZero() && !paused {
		if time.Now().After(st.retryUntil) || n.retryElection(ctx, cfg) {
			st.retryUntil = time.Time{}
		}
	}

	st.follow.After = repointAfter
	if m, ok := st.follow.Step(time.Now(), st.view); ok {
		n.repoint(ctx, m)
	}
	return next
}

// round asks the sentinels where the master is: it reads the answers to the
// previous round's question and sends the next one, or, with wait, sends
// and waits for the answers (a fenced master unfences the moment the
// majority is back rather than a round later).
func (n *node) round(ctx context.Context, cfg *config.Config, wait bool) ha.Quorum {
	st := &n.st
	if cfg != st.probeCfg {
		if g := cfg.Group(); st.probe == nil || !g.Equal(st.probeFor) {
			if st.probe != nil {
				st.probe.Close()
				// A new prober has no answers to collect: a round that did
				// not wait for them would count no sentinel, and a master
				// would fence itself over a reload (new credentials, a
				// renewed certificate, another peer list).
				wait = true
			}
			st.probe, st.probeFor = sentinel.NewProber(g), g
		}
		st.probeCfg = cfg
	}
	p := st.probe
	if wait {
		p.Send(time.Now())
		wctx, cancel := context.WithTimeout(ctx, fenceProbeTimeout)
		p.Wait(wctx)
		cancel()
	} else {
		p.Collect()
	}
	answers, asked := p.Answers()
	if !wait {
		p.Send(time.Now())
	}
	q := ha.Quorum{At: asked, Reachable: ha.Reachable(answers)}
	if m, ok := ha.Agreed(answers, cfg.SentinelQuorum()); ok {
		q.Master = m
	}
	st.view.Q = q
	n.publish()
	return q
}

// fence makes this master refuse writes.
func (n *node) fence(ctx context.Context, cfg *config.Config, seen int) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := n.local.Redis().Fence(cctx, len(cfg.Peers)); err != nil {
		n.log.Error("fence: could not refuse writes", "err", err)
		return
	}
	n.st.fenced = true
	n.log.Warn("fenced: this master sees no majority of sentinels; refusing writes",
		"sentinels_reachable", seen, "of", len(cfg.Peers), "after", time.Duration(cfg.Sentinel.FenceAfter))
	n.observe(ctx)
}

// retryElection carries out ha.RetryElection once; true when it is settled
// (done, or not this box's to do).
func (n *node) retryElection(ctx context.Context, cfg *config.Config) bool {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	local, err := n.local.Sentinel().State(cctx, cfg.Cluster.Name)
	if err != nil {
		return false
	}
	g := cfg.Group()
	var others []wire.SentinelState
	for _, a := range g.Sentinels {
		if a == cfg.LocalSentinel() {
			continue
		}
		sc := g.Sentinel(a)
		if st, err := sc.State(cctx, cfg.Cluster.Name); err == nil {
			others = append(others, st)
		}
		sc.Close()
	}
	switch ha.RetryElection(local, others) {
	case ha.RetryWait:
		return false
	case ha.RetryNever:
		return true
	}
	if err := n.failoverVia(cctx, g, cfg.LocalSentinel()); err != nil {
		n.log.Warn("election lost by every sentinel (split vote); failing over through ours did not work", "err", err)
		return false
	}
	n.log.Warn("election lost by every sentinel (split vote): failing over through ours, the sentinel with the lowest id, "+
		"instead of waiting twice failover_timeout", "master", local.Master.String())
	return true
}

// refence puts redis's own fence back to what this agent decided. A fence
// or unfence whose reply timed out may still be carried out later: seen on
// the box bench, a fence sent to a frozen master ran when it woke, and it
// refused every write for good while the agent believed it unfenced.
func (n *node) refence(ctx context.Context, cfg *config.Config) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	put := n.local.Redis().Unfence
	if n.st.fenced {
		put = n.local.Redis().Fence
	}
	if err := put(cctx, len(cfg.Peers)); err != nil {
		n.log.Error("fence: could not put redis's fence right", "fenced", n.st.fenced, "err", err)
		return
	}
	n.log.Warn("fence: redis's own fence differed from this agent's; put right (a fence command that timed out ran late)",
		"fenced", n.st.fenced)
	n.observe(ctx)
}

// unfence lifts the fence once a majority is back: as master if a quorum of
// sentinels still names this box, else after demoting it to the master they
// name, so that no write held back meets a master about to be discarded.
func (n *node) unfence(ctx context.Context, cfg *config.Config) {
	actx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	named, ok := ha.Agreed(cfg.Group().AskAll(actx), cfg.SentinelQuorum())
	if !ok {
		return // no verdict yet: stay fenced
	}
	rc := n.local.Redis()
	if named != cfg.Self && n.isPaused() {
		return // paused: no demotion; it stays fenced until resumed
	}
	if named != cfg.Self {
		n.roles.setCause("demoted after isolation: the sentinels elected " + named.String())
		if err := rc.ReplicaOf(actx, named); err != nil {
			n.log.Error("unfence: demote", "err", err)
			return
		}
		n.log.Warn("demoted after isolation", "master", named.String())
	}
	if err := rc.Unfence(actx, len(cfg.Peers)); err != nil {
		n.log.Error("unfence", "err", err)
		return
	}
	n.st.fenced = false
	n.log.Info("unfenced: a majority of sentinels is reachable again", "master", named.String())
	n.observe(ctx)
}

// repoint makes this replica follow the master the sentinels name.
func (n *node) repoint(ctx context.Context, m wire.Addr) {
	was := n.st.view.S.Role.Master
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	n.roles.setCause("re-pointed by the agent: was following " + was.String())
	if err := n.local.Redis().ReplicaOf(cctx, m); err != nil {
		n.log.Warn("re-point replica", "err", err)
		return
	}
	n.log.Warn("replica re-pointed to the master the sentinels name", "was", was.String(), "master", m.String())
}

// publish hands the HTTP API a copy of what the loop knows.
func (n *node) publish() {
	n.pub.Store(&published{cfg: n.config(), view: n.st.view})
}

// sentinelEvents subscribes to the local sentinel's event stream; the stream
// reconnects by itself and says "resubscribed" so we re-query.
func (n *node) sentinelEvents(ctx context.Context) <-chan sentinel.Event {
	if n.config().Single() {
		return nil
	}
	return n.local.Sentinel().Events(ctx)
}
