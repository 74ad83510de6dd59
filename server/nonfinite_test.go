package server_test

import (
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/lightninglm/lightning/model"
)

// nanModel writes NaN into the logits rows of sequences that feed the
// poisoned token, as a model with corrupt weights on some path would, and
// locates the fault in a made-up layer.
type nanModel struct {
	model.Model
	poison int32
}

func (p nanModel) Forward(seqs []model.Seq, logits []float32) {
	p.Model.Forward(seqs, logits)
	V := p.Info().VocabSize
	row := 0
	for _, s := range seqs {
		n := s.Rows()
		if slices.Contains(s.Tokens, p.poison) {
			for i := row * V; i < (row+n)*V; i++ {
				logits[i] = float32(math.NaN())
			}
		}
		row += n
	}
}

func (p nanModel) LocateNonFinite(model.Seq) string { return "layer 7 of 8 (test)" }

// TestNonFiniteLogitsFailTheirRequest checks that a request whose logits
// turn NaN gets a 500 naming the layer, not garbage text or a "shut down"
// error, and that the server goes on serving other requests.
func TestNonFiniteLogitsFailTheirRequest(t *testing.T) {
	tok := loadTokenizer(t, "llama2")
	poisonIDs := tok.Encode(" zebra", false)
	ts := start(t, setup{model: nanModel{randomModel(t, tok.VocabSize()), int32(poisonIDs[len(poisonIDs)-1])}})
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
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusInternalServerError ||
		!strings.Contains(apiErr.Message, "layer 7 of 8") {
		t.Fatalf("poisoned request: got %v, want a 500 naming the layer", err)
	}
	resp, err := complete("a horse")
	if err != nil {
		t.Fatalf("request after the failure: %v", err)
	}
	if c := resp.Choices[0]; c.FinishReason != "length" {
		t.Errorf("request after the failure finished with %q", c.FinishReason)
	}
}
