package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/lightninglm/lightning/attention"
	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/sample"
	"github.com/lightninglm/lightning/server"
	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/tokenizer/chat"
	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// textModel is everything the text commands (run, chat) need: the model, an
// engine over it, the tokenizer, the chat template and the stop tokens.
type textModel struct {
	m        *minimax01.Model
	eng      *engine.Engine
	tok      *tokenizer.Tokenizer
	tmpl     *chat.Template // nil when the model has no chat template
	stops    []int32
	maxBatch int
}

// defaultBatchTokens is the default tokens per forward step of run, chat
// and serve (and bench's prefill chunk). Against 512 it gives each expert
// twice the rows per matrix product: the m300 preset's 2,048-token prefill
// took 17–25% less CPU time per token at 1024 (README, "-batch-tokens").
const defaultBatchTokens = 1024

// textFlags are the model-loading flags shared by run, chat and needle.
type textFlags struct {
	dir      string
	kv       string
	batch    int
	template string
	quant    string
}

// register adds the model flags and -template.
func (f *textFlags) register(fs *flag.FlagSet) {
	f.registerModel(fs)
	fs.StringVar(&f.template, "template", "", "chat template name from tokenizer_config.json (default: \"default\")")
}

// registerModel adds the flags that choose and load the model.
func (f *textFlags) registerModel(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "model", "", modelFlagHelp)
	fs.StringVar(&f.kv, "kv", "f32", "KV cache type of the softmax layers: f32, bf16 or int8")
	fs.IntVar(&f.batch, "batch-tokens", defaultBatchTokens, "tokens per forward step (prefill chunk); larger chunks give each expert more tokens per matrix product")
	fs.StringVar(&f.quant, "quant", "", "quantize the weights at load to this format (q8, q8b32, q4g64, …; see 'lightning quantize')")
}

// loadText loads the model and its text pipeline, with an engine sized by
// ec (its BatchTokens comes from -batch-tokens).
func loadText(f *textFlags, ec engine.Config, stderr io.Writer) (*textModel, error) {
	kv, err := attention.ParseKVType(f.kv)
	if err != nil {
		return nil, fmt.Errorf("%w: -kv: %v", errUsage, err)
	}
	if f.batch < 16 {
		return nil, fmt.Errorf("%w: -batch-tokens must be at least 16", errUsage)
	}
	spec, err := quantOption(f.quant)
	if err != nil {
		return nil, err
	}
	m, err := loadModel(f.dir, minimax01.Options{MaxBatchTokens: f.batch, KVType: kv, Quant: spec}, stderr)
	if err != nil {
		return nil, err
	}
	tok, err := loadTokenizer(f.dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("%w\nHINT: the model folder needs tokenizer.json (or vocab.json + merges.txt); 'lightning random-model -tokenizer DIR' copies one", err)
	}
	if tok.VocabSize() > m.Config.Vocab {
		m.Close()
		return nil, fmt.Errorf("the tokenizer has %d ids but the model's vocabulary is %d", tok.VocabSize(), m.Config.Vocab)
	}
	t := &textModel{m: m, tok: tok, stops: server.DefaultStopTokens(tok), maxBatch: f.batch}
	cc, err := loadChatConfig(f.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		m.Close()
		return nil, err
	default:
		name := f.template
		if name == "" {
			name = "default"
		}
		if _, ok := cc.Templates[name]; ok {
			if t.tmpl, err = cc.Template(name, false); err != nil {
				m.Close()
				return nil, err
			}
		} else if f.template != "" {
			m.Close()
			return nil, fmt.Errorf("%w: -template %q: the model has templates %v", errUsage, f.template, cc.Names())
		}
	}
	ec.BatchTokens = f.batch
	t.eng, err = engine.New(m, ec)
	if err != nil {
		m.Close()
		return nil, err
	}
	return t, nil
}

func (t *textModel) close() {
	t.eng.Close()
	t.m.Close()
}

// message is one chat turn.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// render applies the chat template to the conversation with the generation
// prompt, in the message shape the template expects.
func (t *textModel) render(msgs []message) (string, error) {
	b, err := json.Marshal(msgs)
	if err != nil {
		return "", err
	}
	v, err := jinja.DecodeJSON(b)
	if err != nil {
		return "", err
	}
	if v, err = chat.NormalizeMessages(v, t.tmpl.Format); err != nil {
		return "", err
	}
	return t.tmpl.Render(&chat.Request{Messages: v, AddGenerationPrompt: true})
}

// encode turns text into prompt ids. Rendered chat templates carry their own
// special tokens, so only raw prompts get the tokenizer's BOS/EOS template.
func (t *textModel) encode(text string, raw bool) []int32 {
	ids := t.tok.Encode(text, raw)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// samplingFlags registers the sampling flags and returns a function that
// validates them into sample.Params.
func samplingFlags(fs *flag.FlagSet) func() (sample.Params, error) {
	temp := fs.Float64("temperature", 0.8, "sampling temperature; 0 = greedy")
	topK := fs.Int("top-k", 0, "sample only from the k most likely tokens (0 = off)")
	topP := fs.Float64("top-p", 0.95, "nucleus sampling: the smallest set with this much probability (1 = off)")
	minP := fs.Float64("min-p", 0.05, "drop tokens below min-p × the top token's probability (0 = off)")
	rep := fs.Float64("repeat-penalty", 1.0, "repetition penalty over -repeat-last-n tokens (1 = off)")
	repN := fs.Int("repeat-last-n", 64, "window of the repetition penalty (0 = all tokens)")
	pres := fs.Float64("presence-penalty", 0, "OpenAI presence penalty, -2..2")
	freq := fs.Float64("frequency-penalty", 0, "OpenAI frequency penalty, -2..2")
	seed := fs.Int64("seed", -1, "random seed (-1 = random)")
	return func() (sample.Params, error) {
		p := sample.Params{Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
			RepetitionPenalty: float32(*rep), PenaltyWindow: *repN, PresencePenalty: float32(*pres), FrequencyPenalty: float32(*freq)}
		if *seed >= 0 {
			p.Seed, p.HasSeed = uint64(*seed), true
		}
		if *repN < 0 {
			return p, fmt.Errorf("%w: -repeat-last-n must be ≥ 0", errUsage)
		}
		if err := p.Validate(); err != nil {
			return p, fmt.Errorf("%w: %v", errUsage, err)
		}
		return p, nil
	}
}

// stopFlag collects repeated -stop strings.
type stopFlag []string

func (s *stopFlag) String() string     { return strings.Join(*s, ",") }
func (s *stopFlag) Set(v string) error { *s = append(*s, v); return nil }

// generation is one streamed completion.
type generation struct {
	text       string
	tokens     []int32 // generated ids, stop token excluded
	result     *engine.Result
	stopString bool // ended at a -stop string (the engine saw a cancel)
	promptToks int
	elapsed    time.Duration
	firstToken time.Duration
}

// generate submits req and streams decoded text to w as it completes,
// stopping early at any stop string (which is not printed).
func (t *textModel) generate(ctx context.Context, req engine.Request, stops []string, w io.Writer) (*generation, error) {
	var sm *sample.StopMatcher
	if len(stops) > 0 {
		var err error
		if sm, err = sample.NewStopMatcher(stops); err != nil {
			return nil, fmt.Errorf("%w: -stop: %v", errUsage, err)
		}
	}
	start := time.Now()
	st, err := t.eng.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	g := &generation{promptToks: len(req.Prompt)}
	dec := t.tok.NewStreamDecoder(true)
	var text strings.Builder
	printed := 0
	// flush sends what is safe; it reports a stop string (the text ends at it).
	flush := func(final bool) bool {
		s := text.String()
		limit, stopped := len(s), false
		if sm != nil {
			if final {
				if i, _ := sm.Find(s, printed); i >= 0 {
					limit, stopped = i, true
				}
			} else {
				stop, safe := sm.Next(s, printed)
				limit, stopped = safe, stop >= 0
			}
		}
		if limit > printed {
			io.WriteString(w, s[printed:limit])
			printed = limit
		}
		return stopped
	}
	for {
		select {
		case <-st.Ready():
		case <-ctx.Done():
			st.Cancel()
		}
		toks, res := st.Take()
		for _, tk := range toks {
			if g.firstToken == 0 {
				g.firstToken = time.Since(start)
			}
			g.tokens = append(g.tokens, tk.ID)
			text.WriteString(dec.Add(int(tk.ID)))
		}
		if flush(false) {
			st.Cancel()
			_, res, _ = st.Wait(context.Background())
			g.result, g.stopString = res, true
			g.text = text.String()[:printed]
			g.elapsed = time.Since(start)
			return g, nil
		}
		if res != nil {
			text.WriteString(dec.Flush())
			g.stopString = flush(true)
			g.result = res
			g.text = text.String()[:printed]
			g.elapsed = time.Since(start)
			if res.Err != nil && !errors.Is(res.Err, context.Canceled) {
				return g, res.Err
			}
			return g, nil
		}
	}
}

// finish names why the generation ended, as the server does: "stop" for a
// stop token or a stop string, "length" at the token limit, "cancelled"
// when interrupted.
func (g *generation) finish() string {
	if g.stopString {
		return string(engine.FinishStop)
	}
	return string(g.result.Reason)
}

// prefillWithProgress feeds all but the last token of a long prompt through
// the model in chunks with a progress bar, so the engine can resume from the
// state (Request.Resume) with just the last token.
func (t *textModel) prefillWithProgress(prompt []int32, stderr io.Writer) (model.State, []int32) {
	if len(prompt) <= 2*t.maxBatch {
		return nil, prompt
	}
	st := t.m.NewStateCap(len(prompt) + 1)
	bar := newProgress(stderr, "prefill", "tok")
	n := len(prompt) - 1
	for i := 0; i < n; i += t.maxBatch {
		j := min(i+t.maxBatch, n)
		t.m.Forward([]model.Seq{{State: st, Tokens: prompt[i:j]}}, nil)
		bar.update(int64(j), int64(n))
	}
	return st, prompt[n:]
}

// rate formats a speed for the -v summaries.
func rate(n int, d time.Duration) string {
	if d <= 0 || n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f tok/s", float64(n)/d.Seconds())
}

// maxTokensFlag validates -n.
func maxTokensFlag(n int) error {
	if n < 1 || n > math.MaxInt32 {
		return fmt.Errorf("%w: -n must be at least 1", errUsage)
	}
	return nil
}
