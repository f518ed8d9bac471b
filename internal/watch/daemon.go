package watch

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Jitter spreads daemon runs by ±10% of the interval, so that many
// machines started together do not poll GitHub in step.
const Jitter = 0.10

// Daemon calls check at once and then every interval (±Jitter) until ctx
// ends (SIGTERM), then returns nil. A failing check is logged and retried
// at the next tick: a network outage must not end the daemon. The caller
// holds the state directory (Claim) for the daemon's lifetime.
func Daemon(ctx context.Context, interval time.Duration, check func(context.Context) error, log io.Writer) error {
	if interval <= 0 {
		return fmt.Errorf("watch: interval %v: must be positive", interval)
	}
	if log == nil {
		log = io.Discard
	}
	for {
		if err := check(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(log, "watch: %v (next try in about %v)\n", err, interval)
		}
		wait := jittered(interval, rand.Float64())
		select {
		case <-ctx.Done():
			fmt.Fprintln(log, "watch: stopping")
			return nil
		case <-time.After(wait):
		}
	}
}

// jittered maps u in [0,1) onto interval ±Jitter.
func jittered(interval time.Duration, u float64) time.Duration {
	return time.Duration(float64(interval) * (1 - Jitter + 2*Jitter*u))
}
