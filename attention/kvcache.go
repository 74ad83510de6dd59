package attention

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unsafe"

	"github.com/lightninglm/lightning/kernels"
)

// KVType is the element type a KV cache stores keys and values in.
type KVType uint8

const (
	// KVFloat32 stores exact fp32 keys and values (the default).
	KVFloat32 KVType = iota
	// KVBFloat16 rounds each element to bfloat16 (half the memory).
	KVBFloat16
	// KVInt8 stores int8 with one fp32 scale per token and KV head
	// (symmetric, scale = max|x|/127): about a quarter of the memory.
	KVInt8
)

// String returns the type's name as the CLI spells it.
func (t KVType) String() string {
	switch t {
	case KVFloat32:
		return "f32"
	case KVBFloat16:
		return "bf16"
	case KVInt8:
		return "int8"
	}
	return fmt.Sprintf("KVType(%d)", t)
}

// ParseKVType reads "f32", "bf16" or "int8".
func ParseKVType(s string) (KVType, error) {
	for _, t := range []KVType{KVFloat32, KVBFloat16, KVInt8} {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown KV cache type %q (want f32, bf16 or int8)", s)
}

// BytesPerToken is the memory one token takes in a cache of kvHeads heads of
// dim d, keys and values together.
func (t KVType) BytesPerToken(kvHeads, d int) int64 {
	n := int64(2 * kvHeads * d)
	switch t {
	case KVBFloat16:
		return 2 * n
	case KVInt8:
		return n + 2*int64(kvHeads)*4
	}
	return 4 * n
}

// KVCache holds one softmax layer's keys (after RoPE) and values for one
// sequence, token-major ([token, kvHead, d]) as the reference stores them.
// Only the storage of Type is used.
type KVCache struct {
	Type  KVType
	Heads int // KV heads
	Dim   int // head dim
	Len   int // tokens stored

	k, v     []float32 // KVFloat32: [cap, heads, d]
	k16, v16 []uint16  // KVBFloat16: [cap, heads, d]
	k8, v8   []int8    // KVInt8: [cap, heads, d]
	ks, vs   []float32 // KVInt8 scales: [cap, heads]
}

// NewKVCache returns an empty cache with room for capacity tokens.
func NewKVCache(t KVType, heads, d, capacity int) KVCache {
	c := KVCache{Type: t, Heads: heads, Dim: d}
	c.Reserve(capacity)
	return c
}

func (c *KVCache) rowLen() int { return c.Heads * c.Dim }

// capTokens is how many tokens the storage holds without growing.
func (c *KVCache) capTokens() int {
	switch c.Type {
	case KVBFloat16:
		return cap(c.k16) / max(c.rowLen(), 1)
	case KVInt8:
		return cap(c.k8) / max(c.rowLen(), 1)
	}
	return cap(c.k) / max(c.rowLen(), 1)
}

func grow[E any](s []E, n int) []E {
	out := make([]E, len(s), n)
	copy(out, s)
	return out
}

// Reserve grows the capacity to at least n tokens, at least doubling, so
// appends amortise to no allocation per token.
func (c *KVCache) Reserve(n int) {
	have := c.capTokens()
	if n <= have {
		return
	}
	if have > 0 {
		n = max(n, 2*have)
	}
	rl := c.rowLen()
	switch c.Type {
	case KVBFloat16:
		c.k16, c.v16 = grow(c.k16, n*rl), grow(c.v16, n*rl)
	case KVInt8:
		c.k8, c.v8 = grow(c.k8, n*rl), grow(c.v8, n*rl)
		c.ks, c.vs = grow(c.ks, n*c.Heads), grow(c.vs, n*c.Heads)
	default:
		c.k, c.v = grow(c.k, n*rl), grow(c.v, n*rl)
	}
}

// Append stores n tokens of keys and values (each [n, heads, d] with row
// stride ld) at the end of the cache.
func (c *KVCache) Append(k, v []float32, ld, n int) {
	c.Reserve(c.Len + n)
	rl := c.rowLen()
	for t := 0; t < n; t++ {
		kr, vr := k[t*ld:t*ld+rl], v[t*ld:t*ld+rl]
		switch c.Type {
		case KVBFloat16:
			c.k16 = appendBF16(c.k16, kr)
			c.v16 = appendBF16(c.v16, vr)
		case KVInt8:
			for h := 0; h < c.Heads; h++ {
				c.k8, c.ks = appendInt8(c.k8, c.ks, kr[h*c.Dim:(h+1)*c.Dim])
				c.v8, c.vs = appendInt8(c.v8, c.vs, vr[h*c.Dim:(h+1)*c.Dim])
			}
		default:
			c.k = append(c.k, kr...)
			c.v = append(c.v, vr...)
		}
	}
	c.Len += n
}

func appendBF16(dst []uint16, x []float32) []uint16 {
	n := len(dst)
	dst = dst[:n+len(x)]
	kernels.F32ToBF16(dst[n:], x)
	return dst
}

// appendInt8 quantises one head vector symmetrically: scale = max|x|/127,
// q = round(x/scale).
func appendInt8(dst []int8, scales []float32, x []float32) ([]int8, []float32) {
	var m float32
	for _, v := range x {
		m = max(m, float32(math.Abs(float64(v))))
	}
	scale := m / 127
	inv := float32(0)
	if scale > 0 {
		inv = 1 / scale
	}
	for _, v := range x {
		dst = append(dst, int8(math.RoundToEven(float64(v*inv))))
	}
	return dst, append(scales, scale)
}

// Truncate drops every token from n on.
func (c *KVCache) Truncate(n int) {
	if n >= c.Len {
		return
	}
	c.Len = n
	rl := c.rowLen()
	switch c.Type {
	case KVBFloat16:
		c.k16, c.v16 = c.k16[:n*rl], c.v16[:n*rl]
	case KVInt8:
		c.k8, c.v8 = c.k8[:n*rl], c.v8[:n*rl]
		c.ks, c.vs = c.ks[:n*c.Heads], c.vs[:n*c.Heads]
	default:
		c.k, c.v = c.k[:n*rl], c.v[:n*rl]
	}
}

// Bytes is the memory the cache holds (its capacity, not just its length).
func (c *KVCache) Bytes() int64 {
	return int64(cap(c.k)+cap(c.v)+cap(c.ks)+cap(c.vs))*4 + int64(cap(c.k16)+cap(c.v16))*2 + int64(cap(c.k8)+cap(c.v8))
}

// Clone returns a deep copy with capacity for exactly its tokens.
func (c *KVCache) Clone() KVCache {
	out := *c
	out.k, out.v = clone(c.k), clone(c.v)
	out.k16, out.v16 = clone(c.k16), clone(c.v16)
	out.k8, out.v8 = clone(c.k8), clone(c.v8)
	out.ks, out.vs = clone(c.ks), clone(c.vs)
	return out
}

func clone[E any](s []E) []E {
	if s == nil {
		return nil
	}
	return append(make([]E, 0, len(s)), s...)
}

// Keys returns keys s0 .. s0+n-1 of KV head g as fp32 rows: row i at
// tile[i·ld : i·ld+Dim]. A float32 cache returns a view (no copy); the others
// dequantise into buf, which must hold n·Dim floats.
func (c *KVCache) Keys(buf []float32, s0, n, g int) (tile []float32, ld int) {
	return c.rows(buf, c.k, c.k16, c.k8, c.ks, s0, n, g)
}

// Values is Keys for the values.
func (c *KVCache) Values(buf []float32, s0, n, g int) (tile []float32, ld int) {
	return c.rows(buf, c.v, c.v16, c.v8, c.vs, s0, n, g)
}

// Read writes tokens s0 .. s0+n-1 as fp32 rows, keys into k and values
// into v (each [n, Heads·Dim]), dequantising a bf16 or int8 cache.
func (c *KVCache) Read(k, v []float32, s0, n int) {
	rl, d := c.rowLen(), c.Dim
	buf := make([]float32, n*d)
	for _, kv := range []struct {
		dst []float32
		get func([]float32, int, int, int) ([]float32, int)
	}{{k, c.Keys}, {v, c.Values}} {
		for g := 0; g < c.Heads; g++ {
			tile, ld := kv.get(buf, s0, n, g)
			for i := 0; i < n; i++ {
				copy(kv.dst[i*rl+g*d:i*rl+g*d+d], tile[i*ld:i*ld+d])
			}
		}
	}
}

func (c *KVCache) rows(buf, f []float32, h []uint16, q []int8, sc []float32, s0, n, g int) ([]float32, int) {
	rl, d := c.rowLen(), c.Dim
	switch c.Type {
	case KVBFloat16:
		for i := 0; i < n; i++ {
			off := (s0+i)*rl + g*d
			kernels.BF16ToF32(buf[i*d:(i+1)*d], h[off:off+d])
		}
		return buf, d
	case KVInt8:
		for i := 0; i < n; i++ {
			off := (s0+i)*rl + g*d
			s := sc[(s0+i)*c.Heads+g]
			row := buf[i*d : (i+1)*d]
			for e, x := range q[off : off+d] {
				row[e] = float32(x) * s
			}
		}
		return buf, d
	}
	return f[s0*rl+g*d:], rl
}

func bytesOf[E float32 | uint16 | int8](s []E) []byte {
	if len(s) == 0 {
		return nil
	}
	var z E
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(z)))
}

// Save writes the cache's type, length and its Len tokens of storage.
func (c *KVCache) Save(w io.Writer) error {
	hdr := make([]byte, 9)
	hdr[0] = byte(c.Type)
	binary.LittleEndian.PutUint64(hdr[1:], uint64(c.Len))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	rl := c.rowLen() * c.Len
	var parts [][]byte
	switch c.Type {
	case KVBFloat16:
		parts = [][]byte{bytesOf(c.k16[:rl]), bytesOf(c.v16[:rl])}
	case KVInt8:
		parts = [][]byte{bytesOf(c.k8[:rl]), bytesOf(c.v8[:rl]), bytesOf(c.ks[:c.Len*c.Heads]), bytesOf(c.vs[:c.Len*c.Heads])}
	default:
		parts = [][]byte{bytesOf(c.k[:rl]), bytesOf(c.v[:rl])}
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// Load replaces the cache's contents with data written by Save. The
// cache's Heads and Dim must already be set; maxLen bounds the token count
// read from the stream so a corrupt length cannot force a huge allocation.
func (c *KVCache) Load(r io.Reader, maxLen int) error {
	hdr := make([]byte, 9)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return err
	}
	t, n := KVType(hdr[0]), binary.LittleEndian.Uint64(hdr[1:])
	if t > KVInt8 {
		return fmt.Errorf("unknown KV cache type %d", hdr[0])
	}
	if n > uint64(maxLen) {
		return fmt.Errorf("KV cache of %d tokens, expected at most %d", n, maxLen)
	}
	*c = KVCache{Type: t, Heads: c.Heads, Dim: c.Dim}
	c.Reserve(int(n))
	rl := c.rowLen() * int(n)
	var parts [][]byte
	switch t {
	case KVBFloat16:
		c.k16, c.v16 = c.k16[:rl], c.v16[:rl]
		parts = [][]byte{bytesOf(c.k16), bytesOf(c.v16)}
	case KVInt8:
		c.k8, c.v8 = c.k8[:rl], c.v8[:rl]
		c.ks, c.vs = c.ks[:int(n)*c.Heads], c.vs[:int(n)*c.Heads]
		parts = [][]byte{bytesOf(c.k8), bytesOf(c.v8), bytesOf(c.ks), bytesOf(c.vs)}
	default:
		c.k, c.v = c.k[:rl], c.v[:rl]
		parts = [][]byte{bytesOf(c.k), bytesOf(c.v)}
	}
	for _, p := range parts {
		if _, err := io.ReadFull(r, p); err != nil {
			return err
		}
	}
	c.Len = int(n)
	return nil
}
