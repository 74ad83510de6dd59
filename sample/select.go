package sample

import (
	"cmp"
	"slices"
)

// The top-p histogram sorts tokens by d = (l_max − l)/T, the distance below
// the most likely token in nats, into buckets of bucketWidth nats; the last
// bucket takes everything at least nBuckets·bucketWidth = 16 nats below
// (weights under 1.2e-7). The pass that computes the weights also sums them per bucket; the
// bucket where the cumulative mass crosses p is then the only one that has to
// be sorted: for a peaked distribution a handful of tokens, for a flat one a
// few percent of the vocabulary, instead of 200K.
const (
	bucketWidth = 0.125
	nBuckets    = 128
)

// bucketOf returns the histogram bucket of a token d nats below the maximum.
// NaN and +Inf land in the last bucket.
func bucketOf(d float64) int {
	f := d * (1 / bucketWidth)
	if !(f < nBuckets) {
		return nBuckets
	}
	return int(f)
}

// nucleus returns the candidates for top-p with target weight: the tokens of
// every histogram bucket before the first one at which the cumulative weight
// reaches target, which all belong to the nucleus (c[:sure], in id order),
// then the tokens of that bucket, sorted best first, where the nucleus ends.
// Buckets are ordered by logit, so c is a prefix of the sorted vocabulary
// (up to the order within c[:sure]) whose weight reaches target, and the
// nucleus ends inside c[sure:], the only part that is sorted.
func (s *Sampler) nucleus(logits []float32, lmax, invT, target float64) (c []cand, sure int) {
	last := nBuckets
	var cum float64
	for b := range nBuckets {
		cum += s.mass[b]
		if cum >= target {
			last = b
			break
		}
	}
	// Sure tokens fill s.cand from the front, boundary tokens from the back.
	all := s.cand[:len(logits)]
	tail := len(all)
	for i, l := range logits {
		switch b := bucketOf((lmax - float64(l)) * invT); {
		case b < last:
			all[sure] = cand{int32(i), l}
			sure++
		case b == last:
			tail--
			all[tail] = cand{int32(i), l}
		}
	}
	n := copy(all[sure:], all[tail:])
	c = all[:sure+n]
	sortCands(c[sure:])
	return c, sure
}

// better reports whether a precedes b: higher logit, then lower id.
func better(a, b cand) bool {
	return a.l > b.l || (a.l == b.l && a.id < b.id)
}

// sortCands sorts c best first (see better).
func sortCands(c []cand) {
	slices.SortFunc(c, func(a, b cand) int {
		if a.l != b.l {
			if a.l > b.l {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.id, b.id)
	})
}

// topK returns in dst[:k], best first, the k best tokens of x (0 < k ≤
// len(x)). It keeps a min-heap of the best k seen so far with the worst at the
// root, so most of the scan is one comparison per token: O(len(x) + k·log k·
// log(len(x)/k)) for logits in random order instead of a full sort.
func topK(dst []cand, x []float32, k int) []cand {
	h := dst[:k]
	for i := range h {
		h[i] = cand{int32(i), x[i]}
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for i := k; i < len(x); i++ {
		// A later token with an equal logit has a higher id, so it loses.
		if v := x[i]; v > h[0].l {
			h[0] = cand{int32(i), v}
			siftDown(h, 0)
		}
	}
	sortCands(h)
	return h
}

// siftDown restores the heap property below i in a heap whose root is the
// worst element.
func siftDown(h []cand, i int) {
	for {
		w := i
		if l := 2*i + 1; l < len(h) && better(h[w], h[l]) {
			w = l
		}
		if r := 2*i + 2; r < len(h) && better(h[w], h[r]) {
			w = r
		}
		if w == i {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}
