package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lightninglm/lightning/model/minimax01"
)

func init() {
	register(&command{
		name:    "perplexity",
		summary: "perplexity of a model on a token-id or text file",
		usage:   "[-model DIR] (-ids FILE | -text FILE) [-quant FORMAT] [-ctx 512]",
		help: `Cuts the tokens into windows of -ctx tokens, runs each window from a fresh state and scores every token
after the first of its window by the model's next-token distribution. Prints the tokens scored, the mean
negative log-likelihood (nats/token) and the perplexity exp(mean NLL).

-ids FILE holds token ids (separated by commas, spaces or newlines); -text FILE is tokenized with the model's
tokenizer. -quant FORMAT quantizes the model at load (see 'lightning quantize').
Without -model it runs the built-in model mini, embedded in this binary (no download, no file written).`,
		run: runPerplexity,
	})
}

func runPerplexity(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", modelFlagHelp)
	idsFile := fs.String("ids", "", "token-id file")
	text := fs.String("text", "", "text file (tokenized with the model's tokenizer)")
	q := fs.String("quant", "", "quantize the model at load to this format")
	ctx := fs.Int("ctx", 512, "window length in tokens")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if (*idsFile == "") == (*text == "") {
		return fmt.Errorf("%w: give exactly one of -ids FILE or -text FILE", errUsage)
	}
	if *ctx < 2 {
		return fmt.Errorf("%w: -ctx must be at least 2", errUsage)
	}
	spec, err := quantOption(*q)
	if err != nil {
		return err
	}
	var ids []int32
	if *text != "" {
		ids, err = textIDs(*text, *dir)
	} else {
		var b []byte
		if b, err = os.ReadFile(*idsFile); err == nil {
			ids, err = parseIDText(string(b))
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", *idsFile, err)
		}
	}
	if err != nil {
		return err
	}
	m, err := loadModel(*dir, minimax01.Options{Quant: spec}, fs.Output())
	if err != nil {
		return err
	}
	defer m.Close()
	V := m.Config.Vocab
	if err := checkIDs(ids, V); err != nil {
		return err
	}
	start := time.Now()
	var nll float64
	var n int
	for i := 0; i+1 < len(ids); i += *ctx {
		w := ids[i:min(i+*ctx, len(ids))]
		logits := allLogits(m, w)
		for r := 0; r+1 < len(w); r++ {
			nll -= logSoftmax(logits[r*V : (r+1)*V])[w[r+1]]
			n++
		}
	}
	mean := nll / float64(n)
	fmt.Fprintf(stdout, "tokens %d  windows of %d  mean NLL %.5f nats  perplexity %.4f\n", n, *ctx, mean, math.Exp(mean))
	fmt.Fprintf(fs.Output(), "scored in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// errNoTokens is returned when a perplexity input is too short.
var errNoTokens = errors.New("need at least 2 tokens")

// parseIDText parses a token-id file's whole contents (commas, spaces and
// newlines separate ids).
func parseIDText(s string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, int32(v))
	}
	if len(ids) < 2 {
		return nil, errNoTokens
	}
	return ids, nil
}
