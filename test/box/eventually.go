package box

import (
	"context"
	"fmt"
	"time"
)

// Eventually retries check every period until it returns nil or timeout
// passes, and returns its last error: how a bench test waits for a group
// to reach a state instead of sleeping.
func Eventually(ctx context.Context, timeout, every time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-time.After(every):
		}
	}
}
