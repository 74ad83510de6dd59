// Package trace names the intermediates of a forward pass so they can be
// dumped and diffed against the reference (style.md G12), and profiles a
// forward step's wall time by op class (Profile). A nil Tracer costs one
// pointer comparison per traced value, a nil *Profile one per lap.
package trace

// Tracer receives named intermediates: name is one of the stable names
// ("attn_norm", "qkv", "lightning.state", ...), layer is the layer index or -1
// for model-level values, and v is only valid during the call.
type Tracer interface {
	Trace(name string, layer int, v []float32)
}
