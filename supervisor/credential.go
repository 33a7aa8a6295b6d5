package supervisor

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// LookupCredential returns the uid, primary gid and supplementary groups of username, for
// Spec.Credential. Without cgo os/user reads /etc/passwd and /etc/group, which is what a
// service user created by sysusers lives in.
func LookupCredential(username string) (*syscall.Credential, error) {
	u, err := user.Lookup(username)
	if err != nil {
		return nil, fmt.Errorf("lookup user %s: %w", username, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("lookup user %s: uid %q: %w", username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("lookup user %s: gid %q: %w", username, u.Gid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("lookup user %s: groups: %w", username, err)
	}
	groups := make([]uint32, 0, len(ids))
	for _, id := range ids {
		g, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("lookup user %s: group %q: %w", username, id, err)
		}
		groups = append(groups, uint32(g))
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}
