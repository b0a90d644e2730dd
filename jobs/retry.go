package jobs

import (
	"math/rand/v2"
	"time"
)

// maxBackoff caps an exponential delay.
const maxBackoff = 24 * time.Hour

// RetryDelay is the wait before attempt+1 under backoff b with base delay d.
// Fixed waits d; exponential waits d*2^(attempt-1), capped at 24h, with up to
// 10% jitter either way so failing tasks do not return in lockstep.
func RetryDelay(b Backoff, d time.Duration, attempt int) time.Duration {
	if b != BackoffExponential {
		return d
	}
	if attempt < 1 {
		attempt = 1
	}
	delay := d
	for i := 1; i < attempt && delay < maxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, maxBackoff)
	jitter := time.Duration(float64(delay) * 0.1 * (2*rand.Float64() - 1))
	return delay + jitter
}
