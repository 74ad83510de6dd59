package model

import (
	"errors"
	"fmt"
)

// ErrNonFinite reports logits that hold a NaN or an infinity: corrupt
// weights (a checkpoint overwritten with 0xFF bytes reads as NaN) or an
// overflow. Every later token of the sequence would be garbage.
var ErrNonFinite = errors.New("model: non-finite logits")

// NonFiniteLocator is implemented by models that can say where a sequence's
// values first stop being finite. Forward itself never checks: a caller
// that sees non-finite logits (AllFinite) asks the model where they came
// from, so the normal path pays only the scan of its logits.
type NonFiniteLocator interface {
	// LocateNonFinite feeds s.Tokens to s.State again, checking every
	// intermediate, and describes where the first NaN or infinity appears
	// (e.g. "layer 2 of 4 (lightning), at attn_out"), or returns "" if
	// everything stayed finite. Layers before the one that failed kept
	// finite states, so re-feeding the tokens finds the same layer. It
	// advances s.State: call it only for a sequence that is being ended.
	LocateNonFinite(s Seq) string
}

// AllFinite reports whether v holds no NaN and no infinity.
func AllFinite(v []float32) bool {
	// x-x is 0 for a finite x and NaN for NaN or ±Inf; NaN sticks in the sum.
	var acc float32
	for _, x := range v {
		acc += x - x
	}
	return acc == 0
}

// NonFiniteError returns the error for sequence s, whose logits held a NaN
// or an infinity, naming where m first produced one when m can tell. It
// advances s.State (see NonFiniteLocator).
func NonFiniteError(m Model, s Seq) error {
	loc, ok := m.(NonFiniteLocator)
	if !ok {
		return ErrNonFinite
	}
	where := loc.LocateNonFinite(s)
	if where == "" {
		return fmt.Errorf("%w (every intermediate was finite when the tokens were fed again)", ErrNonFinite)
	}
	return fmt.Errorf("%w: first non-finite output in %s; corrupt weights are the usual cause", ErrNonFinite, where)
}
