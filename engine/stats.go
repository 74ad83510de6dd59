package engine

import "time"

// Stats is a snapshot of the engine's state and counters since it started.
type Stats struct {
	Queued     int // requests waiting for a slot
	Running    int // sequences holding a slot
	Prefilling int // running sequences still feeding their prompt

	Reserved     int64   // memory reserved for running sequences (bytes)
	StateBytes   int64   // memory the running sequences' states hold now
	CacheBytes   int64   // memory held by prefix-cache checkpoints
	CacheEntries int     // checkpoints in the prefix cache
	SpareStates  int     // reset states of ended sequences kept for new ones
	SpareBytes   int64   // memory those spare states hold
	TokensPerSec float64 // tokens generated per second over the last few seconds
	// PrefillTokensPerSec is the measured prefill rate: prompt tokens per
	// second of forward time in steps mostly made of prompt chunks, the
	// fastest recent one (a maximum that decays 5% a step; 0 until such a
	// step ran). It is measured at the contexts served so far, so it
	// overestimates the rate of much longer prompts.
	PrefillTokensPerSec float64

	Submitted, Finished, Rejected int64 // requests accepted, finished (any reason), refused
	Cancelled, Aborted            int64 // finished by cancellation or Close
	PromptTokens, CachedTokens    int64 // prompt tokens of finished requests, and of those restored from the cache
	GeneratedTokens               int64 // tokens sampled by finished requests
	Steps, StepTokens             int64 // forward passes and the tokens they fed
	CacheHits                     int64 // requests that resumed from a checkpoint
	Checkpoints, Evictions        int64 // checkpoints stored and evicted
}

// Stats returns a snapshot of the engine's figures.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.TokensPerSec = e.rate.perSec(time.Now())
	s.PrefillTokensPerSec = e.prefill
	return s
}

// rateMeter counts events in one-second buckets over a short window. The
// engine uses it under its mutex.
type rateMeter struct {
	start  time.Time
	bucket [rateWindow]int64
	sec    int64 // second (since start) of the newest bucket
}

const rateWindow = 5 // seconds

func (r *rateMeter) add(t time.Time, n int) {
	if r.start.IsZero() {
		r.start = t
	}
	r.advance(t)
	r.bucket[r.sec%rateWindow] += int64(n)
}

// advance clears the buckets of the seconds between the newest one and t.
func (r *rateMeter) advance(t time.Time) {
	now := int64(t.Sub(r.start) / time.Second)
	for s := r.sec + 1; s <= now && s <= r.sec+rateWindow; s++ {
		r.bucket[s%rateWindow] = 0
	}
	if now > r.sec {
		r.sec = now
	}
}

// perSec returns the average rate over the window's complete seconds and
// the current partial one.
func (r *rateMeter) perSec(now time.Time) float64 {
	if r.start.IsZero() {
		return 0
	}
	r.advance(now)
	var n int64
	for _, b := range r.bucket {
		n += b
	}
	el := now.Sub(r.start)
	frac := (el % time.Second).Seconds()
	span := min(el.Seconds(), rateWindow-1+frac)
	if span <= 0 {
		return 0
	}
	return float64(n) / span
}
