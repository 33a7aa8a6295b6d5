package sentinel

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// With auth.acl the boxes stop sharing one superuser password among
// themselves: replication, the sentinels and the agent each get a user that
// may run what it needs and nothing else, and the password file stays the
// clients' (the default user, as without ACL).
//
// The users' secrets are derived from the password file and the group's
// name (HMAC-SHA256): every box computes the same ones with nothing more
// to distribute or store, a secret never leaves memory but for the
// generated redis.conf and sentinel.conf (0600, the redis user's, where the
// password already is), and a new password file rotates them all. Knowing a
// secret does not give the password; knowing the password gives nothing
// the default user does not already have.

// The users, by name.
const (
	ReplicaUser  = "replica"
	SentinelUser = "sentinel"
	AgentUser    = "agent"
)

// What each user may run. Sentinel's is what the Redis documentation lists
// for Sentinel, failover included (REPLICAOF, CONFIG REWRITE after it,
// CLIENT KILL of the old master's clients). The agent's is what package
// sentinel sends: its CONFIG SET and ACL SETUSER are as strong as an
// admin's (the fence, a reload and a password rotation need them), which no
// ACL can split finer; it reads and writes no key but the pause record.
const (
	replicaRules  = "-@all +psync +sync +replconf +ping"
	sentinelRules = "allchannels -@all +multi +exec +slaveof +replicaof +ping +info +role +publish +subscribe " +
		"+config|rewrite +client|setname +client|kill +script|kill"
	agentRules = "-@all +ping +role +info +config|get +config|set +replicaof +slaveof +client|pause +client|unpause " +
		"+client|setname +shutdown +acl|setuser " +
		// The group's pause record (PauseKey) and the agents' requests
		// (RequestChannel): its own key and channel, nothing else.
		"~" + PauseKey + " +get +set +del resetchannels &" + RequestChannel + " +publish +subscribe +unsubscribe"
	// On the sentinels: what one sentinel asks another (PING, hellos,
	// votes), and what the agent asks its sentinels (every SENTINEL
	// subcommand, and the events).
	peerSentinelRules  = "allchannels -@all +ping +publish +subscribe +client|setname +sentinel|is-master-down-by-addr"
	agentSentinelRules = "allchannels -@all +ping +sentinel +subscribe +psubscribe +unsubscribe +punsubscribe " +
		"+client|setname +acl|setuser"
)

// Secret is one user's: the secret this box uses to authenticate as it,
// and every secret its servers accept (Use among them). They differ while a
// new password rolls through the group.
type Secret struct {
	Use    string
	Accept []string
}

// ACL is auth.acl's users for one box.
type ACL struct {
	Replica, Sentinel, Agent Secret
}

// DeriveSecret is the secret of user in the group name whose clients'
// password is password.
func DeriveSecret(password, group, user string) string {
	m := hmac.New(sha256.New, []byte(password))
	m.Write([]byte("redis-ha-agent acl\x00" + group + "\x00" + user))
	return hex.EncodeToString(m.Sum(nil))
}

// Rolling is a's users while a new password (a's) replaces old's across
// the group: every secret of either is accepted, and this box goes on using
// old's until it switched, when every box accepts a's.
func (a *ACL) Rolling(old *ACL, switched bool) *ACL {
	roll := func(n, o Secret) Secret {
		s := Secret{Use: o.Use, Accept: []string{n.Use, o.Use}}
		if switched {
			s.Use = n.Use
		}
		return s
	}
	return &ACL{Replica: roll(a.Replica, old.Replica), Sentinel: roll(a.Sentinel, old.Sentinel), Agent: roll(a.Agent, old.Agent)}
}

// DeriveACL is the users of a group with one password.
func DeriveACL(password, group string) *ACL {
	s := func(user string) Secret {
		v := DeriveSecret(password, group, user)
		return Secret{Use: v, Accept: []string{v}}
	}
	return &ACL{Replica: s(ReplicaUser), Sentinel: s(SentinelUser), Agent: s(AgentUser)}
}

// userLine is a user directive: reset first, so that the line alone says
// what the user may do; secrets as SHA-256 hashes, so that ACL LIST and
// the file show no more than a hash.
func userLine(name string, s Secret, rules string) string {
	var b strings.Builder
	b.WriteString(name + " reset on")
	for _, a := range s.Accept {
		sum := sha256.Sum256([]byte(a))
		b.WriteString(" #" + hex.EncodeToString(sum[:]))
	}
	b.WriteString(" " + rules)
	return b.String()
}

// setUser is ACL SETUSER for a user line.
func setUser(line string) []any {
	args := []any{"ACL", "SETUSER"}
	for _, f := range strings.Fields(line) {
		args = append(args, f)
	}
	return args
}

// ApplyACL gives a running redis a's users and replication secret, and its
// default user (the clients') the passwords defaults (both while a new
// password rolls through) and no longer drop ("" = none).
func (r *Redis) ApplyACL(ctx context.Context, a *ACL, defaults []string, drop string) error {
	for _, l := range []string{userLine(ReplicaUser, a.Replica, replicaRules), userLine(SentinelUser, a.Sentinel, sentinelRules),
		userLine(AgentUser, a.Agent, agentRules)} {
		if err := r.c.Do(ctx, setUser(l)...).Err(); err != nil {
			return fmt.Errorf("acl setuser %s: %w", strings.Fields(l)[0], err)
		}
	}
	if err := r.c.ConfigSet(ctx, "masterauth", a.Replica.Use).Err(); err != nil {
		return fmt.Errorf("config set masterauth: %w", err)
	}
	return defaultPasswords(ctx, r.c.Do, defaults, drop)
}

// ApplyACL gives a running sentinel a's users and the secret it uses with
// the other sentinels and redis, and the default user's passwords as
// Redis.ApplyACL does.
func (s *Sentinel) ApplyACL(ctx context.Context, name string, a *ACL, defaults []string, drop string) error {
	do := func(ctx context.Context, args ...any) *redis.Cmd {
		cmd := redis.NewCmd(ctx, args...)
		_ = s.c.Process(ctx, cmd)
		return cmd
	}
	for _, l := range []string{userLine(SentinelUser, a.Sentinel, peerSentinelRules), userLine(AgentUser, a.Agent, agentSentinelRules)} {
		if err := do(ctx, setUser(l)...).Err(); err != nil {
			return fmt.Errorf("sentinel acl setuser %s: %w", strings.Fields(l)[0], err)
		}
	}
	if err := do(ctx, "SENTINEL", "SET", name, "auth-pass", a.Sentinel.Use).Err(); err != nil {
		return fmt.Errorf("sentinel set auth-pass: %w", err)
	}
	if err := do(ctx, "SENTINEL", "CONFIG", "SET", "sentinel-pass", a.Sentinel.Use).Err(); err != nil {
		return fmt.Errorf("sentinel config set sentinel-pass: %w", err)
	}
	return defaultPasswords(ctx, do, defaults, drop)
}

// defaultPasswords adds passwords to the default user (ACL SETUSER adds; it
// never removes one not named) and removes drop.
func defaultPasswords(ctx context.Context, do func(context.Context, ...any) *redis.Cmd, add []string, drop string) error {
	for _, p := range add {
		if err := do(ctx, "ACL", "SETUSER", "default", ">"+p).Err(); err != nil {
			return fmt.Errorf("acl setuser default: %w", err)
		}
	}
	if drop != "" {
		if err := do(ctx, "ACL", "SETUSER", "default", "<"+drop).Err(); err != nil && !strings.Contains(err.Error(), "not found") {
			return fmt.Errorf("acl setuser default: %w", err)
		}
	}
	return nil
}

// redisDirectives are redis.conf's users and how it replicates. The users
// are Decided: a reload changes them with ACL SETUSER, which the directives'
// CONFIG SET cannot.
func (a *ACL) redisDirectives() []Directive {
	return []Directive{
		{Key: "user", Value: userLine(ReplicaUser, a.Replica, replicaRules), Decided: true},
		{Key: "user", Value: userLine(SentinelUser, a.Sentinel, sentinelRules), Decided: true},
		{Key: "user", Value: userLine(AgentUser, a.Agent, agentRules), Decided: true},
		fixed("masteruser", ReplicaUser),
		{Key: "masterauth", Value: quote(a.Replica.Use), Decided: true},
	}
}

// sentinelDirectives are sentinel.conf's users and how it authenticates to
// the other sentinels; auth-user and auth-pass (to redis) follow the
// monitor line.
func (a *ACL) sentinelDirectives() []Directive {
	return []Directive{
		{Key: "user", Value: userLine(SentinelUser, a.Sentinel, peerSentinelRules), Decided: true},
		{Key: "user", Value: userLine(AgentUser, a.Agent, agentSentinelRules), Decided: true},
		fixed("sentinel sentinel-user", SentinelUser),
		{Key: "sentinel sentinel-pass", Value: quote(a.Sentinel.Use), Decided: true},
	}
}
