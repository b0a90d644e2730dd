package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records durations in bounded memory: log-linear buckets (each
// power of two of nanoseconds split in histSub linear sub-buckets), so a
// percentile is exact to within 1/histSub (about 1.6%) whatever the count.
// Safe for concurrent Record; read with Snapshot.
type histogram struct {
	counts [histBuckets]atomic.Int64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits // linear sub-buckets per power of two
	histBuckets = (64 - histSubBits + 1) * histSub
)

func bucketOf(ns int64) int {
	if ns < histSub {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	exp := bits.Len64(uint64(ns)) - histSubBits // ≥ 1
	return exp*histSub + int(uint64(ns)>>(exp-1)) - histSub
}

// bucketUpper is the largest value in bucket i (what a percentile reports).
func bucketUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	exp, sub := i/histSub, i%histSub
	return (int64(histSub+sub)+1)<<(exp-1) - 1
}

// Record adds one observation.
func (h *histogram) Record(d time.Duration) { h.counts[bucketOf(int64(d))].Add(1) }

// snapshot is a histogram's counts at one moment; subtract two to get an interval.
type snapshot [histBuckets]int64

// Snapshot copies the counts.
func (h *histogram) Snapshot() *snapshot {
	var s snapshot
	for i := range h.counts {
		s[i] = h.counts[i].Load()
	}
	return &s
}

// Sub returns s minus an earlier snapshot of the same histogram.
func (s *snapshot) Sub(earlier *snapshot) *snapshot {
	var d snapshot
	for i := range s {
		d[i] = s[i] - earlier[i]
	}
	return &d
}

// Count is the number of observations.
func (s *snapshot) Count() int64 {
	var n int64
	for _, c := range s {
		n += c
	}
	return n
}

// Quantile returns the value at quantile q (0..1), or 0 with no observations.
func (s *snapshot) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.5)
	rank = max(1, min(rank, n))
	var seen int64
	for i, c := range s {
		seen += c
		if seen >= rank {
			return time.Duration(bucketUpper(i))
		}
	}
	return time.Duration(bucketUpper(histBuckets - 1))
}
