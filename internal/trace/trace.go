// Package trace names the intermediates of a forward pass so they can be
// dumped and diffed against the reference (style.md G12). A nil Tracer costs
// one pointer comparison per traced value.
package trace

// Tracer receives named intermediates: name is one of the stable names
// ("attn_norm", "qkv", "lightning.state", ...), layer is the layer index or -1
// for model-level values, and v is only valid during the call.
type Tracer interface {
	Trace(name string, layer int, v []float32)
}
