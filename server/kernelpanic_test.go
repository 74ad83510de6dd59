package server_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model"
)

// workerPanicModel runs a kernel-pool loop before each Forward that panics
// inside a worker's range (not the calling goroutine's) when a sequence
// feeds the poisoned token: a bug in a kernel running on the pool.
type workerPanicModel struct {
	model.Model
	poison int32
}

func (p workerPanicModel) Forward(seqs []model.Seq, logits []float32) {
	poisoned := slices.ContainsFunc(seqs, func(s model.Seq) bool { return slices.Contains(s.Tokens, p.poison) })
	kernels.ParallelFor(2*kernels.Threads(), 1, func(lo, hi int) {
		if poisoned && lo > 0 {
			panic("kernel worker failed")
		}
	})
	p.Model.Forward(seqs, logits)
}

// TestKernelWorkerPanicFailsOnlyItsRequest checks that a panic on a kernel
// pool worker fails only the request whose step it was, with a 500, while
// the server goes on serving the next requests.
func TestKernelWorkerPanicFailsOnlyItsRequest(t *testing.T) {
	if kernels.Threads() < 2 {
		t.Skip("the kernel pool has no worker goroutines with one thread")
	}
	tok := loadTokenizer(t, "llama2")
	poisonIDs := tok.Encode(" zebra", false)
	poison := int32(poisonIDs[len(poisonIDs)-1])
	ts := start(t, setup{model: workerPanicModel{randomModel(t, tok.VocabSize()), poison}})
	complete := func(prompt string) (*openai.Completion, error) {
		return ts.client.Completions.New(bg(), openai.CompletionNewParams{
			Model:       modelName,
			Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			MaxTokens:   openai.Int(4),
			Temperature: openai.Float(0),
		})
	}
	_, err := complete("a zebra")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusInternalServerError {
		t.Fatalf("poisoned request: got %v, want a 500", err)
	}
	for range 2 {
		resp, err := complete("a horse")
		if err != nil {
			t.Fatalf("request after the panic: %v", err)
		}
		if c := resp.Choices[0]; c.FinishReason != "length" {
			t.Errorf("request after the panic finished with %q", c.FinishReason)
		}
	}
}
