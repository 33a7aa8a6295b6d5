//go:build !linux

package vip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// The agent only runs on Linux; these keep it building elsewhere for development.

func InterfaceFor(ip netip.Addr) (string, error) {
	return "", fmt.Errorf("vip interface for %s: %w", ip, errors.ErrUnsupported)
}

func Present(iface string, p netip.Prefix) (bool, error) {
	return false, fmt.Errorf("vip present %s on %s: %w", p, iface, errors.ErrUnsupported)
}

func Add(iface string, p netip.Prefix) (changed bool, err error) {
	return false, fmt.Errorf("vip add %s on %s: %w", p, iface, errors.ErrUnsupported)
}

func Remove(iface string, p netip.Prefix) (changed bool, err error) {
	return false, fmt.Errorf("vip remove %s on %s: %w", p, iface, errors.ErrUnsupported)
}

func Announce(ctx context.Context, iface string, p netip.Prefix, repeat int, gap time.Duration) error {
	return fmt.Errorf("vip announce %s on %s: %w", p, iface, errors.ErrUnsupported)
}
