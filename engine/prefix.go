package engine

import (
	"container/list"
	"slices"
	"sync"

	"github.com/lightninglm/lightning/model"
)

// prefixCache holds state checkpoints keyed by the tokens they absorbed, in a
// radix trie (edges are token runs), evicting the least recently used ones
// beyond a byte budget. A recurrent state cannot be rewound, so reusing a
// prefix means resuming from a snapshot taken exactly at its end.
//
// It is used from the engine's loop goroutine, except peek.
type prefixCache struct {
	// mu guards the trie's shape against peek from other goroutines: the
	// loop takes it to change the trie (insert, remove) and reads without it.
	mu     sync.RWMutex
	budget int64 // bytes of checkpoint states; ≤ 0 disables the cache
	bytes  int64
	root   trieNode
	lru    list.List // *checkpoint, most recently used at the front

	inserts, evictions int64
	drop               func(model.State) // receives evicted states (may be nil)
}

// trieNode is a node of the radix trie. The tokens from the root to a node
// are its key; a node with a checkpoint holds the state after those tokens.
type trieNode struct {
	edge     []int32 // tokens on the edge from the parent (empty only at the root)
	parent   *trieNode
	children map[int32]*trieNode // by the first token of the child's edge
	ck       *checkpoint
}

// checkpoint is a cached state and, if known, the logits that follow it.
type checkpoint struct {
	node   *trieNode
	state  model.State // owned by the cache; resume from a Clone
	logits []float32   // [vocab] logits after the last key token, or nil
	bytes  int64
	elem   *list.Element
}

// newPrefixCache returns a cache of budget bytes; drop, if not nil, receives
// the state of each evicted checkpoint.
func newPrefixCache(budget int64, drop func(model.State)) *prefixCache {
	return &prefixCache{budget: budget, drop: drop}
}

func (c *prefixCache) enabled() bool { return c.budget > 0 }

// lookup returns the checkpoint with the longest key that is a prefix of
// tokens and its length n. A key equal to all of tokens counts only if the
// checkpoint has logits (the caller needs the distribution after the last
// token). It returns (nil, 0) if none matches.
func (c *prefixCache) lookup(tokens []int32) (*checkpoint, int) {
	var best *checkpoint
	bestN := 0
	n := &c.root
	i := 0
	for {
		if ck := n.ck; ck != nil && (i < len(tokens) || ck.logits != nil) {
			best, bestN = ck, i
		}
		if i == len(tokens) {
			break
		}
		child := n.children[tokens[i]]
		if child == nil || len(child.edge) > len(tokens)-i || !slices.Equal(child.edge, tokens[i:i+len(child.edge)]) {
			break
		}
		i += len(child.edge)
		n = child
	}
	if best != nil {
		c.lru.MoveToFront(best.elem)
	}
	return best, bestN
}

// peek returns the length of the longest checkpoint key that is a proper
// prefix of tokens (what a request would not need to read), without
// touching the LRU order. Safe from any goroutine.
func (c *prefixCache) peek(tokens []int32) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	best := 0
	n := &c.root
	for i := 0; i < len(tokens); {
		child := n.children[tokens[i]]
		if child == nil || len(child.edge) >= len(tokens)-i || !slices.Equal(child.edge, tokens[i:i+len(child.edge)]) {
			break
		}
		i += len(child.edge)
		n = child
		if n.ck != nil {
			best = i
		}
	}
	return best
}

// exact returns the checkpoint whose key is exactly tokens, or nil.
func (c *prefixCache) exact(tokens []int32) *checkpoint {
	n := &c.root
	for i := 0; i < len(tokens); {
		child := n.children[tokens[i]]
		if child == nil || len(child.edge) > len(tokens)-i || !slices.Equal(child.edge, tokens[i:i+len(child.edge)]) {
			return nil
		}
		i += len(child.edge)
		n = child
	}
	return n.ck
}

// addLogits attaches logits to a checkpoint that has none and marks it
// recently used.
func (c *prefixCache) addLogits(ck *checkpoint, logits []float32) {
	c.lru.MoveToFront(ck.elem)
	if ck.logits != nil || logits == nil {
		return
	}
	ck.logits = logits
	ck.bytes += int64(len(logits)) * 4
	c.bytes += int64(len(logits)) * 4
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(ck)
}

// insert stores state as the checkpoint for key, which must not have one
// yet; the cache takes ownership of state and logits. It returns false if the
// checkpoint does not fit the budget at all.
func (c *prefixCache) insert(key []int32, state model.State, logits []float32) bool {
	b := state.Bytes() + int64(len(logits))*4
	if !c.enabled() || b > c.budget || len(key) == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.node(key)
	if n.ck != nil {
		panic("engine: prefix cache insert over an existing checkpoint")
	}
	ck := &checkpoint{node: n, state: state, logits: logits, bytes: b}
	ck.elem = c.lru.PushFront(ck)
	n.ck = ck
	c.bytes += b
	c.inserts++
	c.evict(ck)
	return true
}

// evict drops least recently used checkpoints, never keep, until the cache
// fits its budget.
func (c *prefixCache) evict(keep *checkpoint) {
	for c.bytes > c.budget {
		e := c.lru.Back()
		ck := e.Value.(*checkpoint)
		if ck == keep {
			if e = e.Prev(); e == nil {
				return
			}
			ck = e.Value.(*checkpoint)
		}
		c.remove(ck)
		c.evictions++
	}
}

// clear removes every checkpoint.
func (c *prefixCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.remove(c.lru.Back().Value.(*checkpoint))
	}
}

// remove deletes a checkpoint and prunes the trie.
func (c *prefixCache) remove(ck *checkpoint) {
	c.lru.Remove(ck.elem)
	c.bytes -= ck.bytes
	if c.drop != nil {
		c.drop(ck.state)
	}
	n := ck.node
	n.ck = nil
	// Delete empty leaves upwards, then merge a pass-through node into its
	// only child so every inner node either branches or holds a checkpoint.
	for n.parent != nil && n.ck == nil && len(n.children) == 0 {
		p := n.parent
		delete(p.children, n.edge[0])
		n = p
	}
	if n.parent != nil && n.ck == nil && len(n.children) == 1 {
		for _, child := range n.children {
			child.edge = append(slices.Clip(n.edge), child.edge...)
			child.parent = n.parent
			n.parent.children[child.edge[0]] = child
		}
	}
}

// node returns the node for key, creating it (and splitting an edge) if
// needed.
func (c *prefixCache) node(key []int32) *trieNode {
	n := &c.root
	i := 0
	for i < len(key) {
		child := n.children[key[i]]
		if child == nil {
			leaf := &trieNode{edge: slices.Clone(key[i:]), parent: n}
			if n.children == nil {
				n.children = map[int32]*trieNode{}
			}
			n.children[key[i]] = leaf
			return leaf
		}
		m := commonPrefix(child.edge, key[i:])
		if m < len(child.edge) {
			// Split child's edge at m: n → mid → child.
			mid := &trieNode{edge: child.edge[:m:m], parent: n, children: map[int32]*trieNode{}}
			child.edge = child.edge[m:]
			child.parent = mid
			mid.children[child.edge[0]] = child
			n.children[key[i]] = mid
			child = mid
		}
		i += m
		n = child
	}
	return n
}

// entries returns the number of checkpoints.
func (c *prefixCache) entries() int { return c.lru.Len() }

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
