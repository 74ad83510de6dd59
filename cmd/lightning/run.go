package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/internal/trace"
)

func init() {
	register(&command{
		name:    "run",
		summary: "generate text from a prompt and stream it",
		usage:   "-model DIR [flags] \"prompt\"   (or -prompt-file FILE, or the prompt on stdin)",
		help: `Streams the model's answer to one prompt. When the model folder has a chat template
(tokenizer_config.json) the prompt is sent as one user message (with -system as the system message)
and the template's generation prompt is appended; -raw feeds the text as it is instead.
Generation stops at the model's end-of-turn/EOS tokens, at -n tokens, or at any -stop string.
Long prompts (-prompt-file) show a progress bar with tokens/s and ETA while they are read.

Examples:
  lightning run -model /models/MiniMax-Text-01 "Explain lightning attention in two sentences."
  lightning run -model DIR -prompt-file book.txt -system "Summarize the document." -n 400
  lightning run -model DIR -raw -temperature 0 "Once upon a time"`,
		run: runRun,
	})
}

// interruptContext returns a context that ends on Ctrl-C (SIGINT); tests
// replace it.
var interruptContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

func runRun(fs *flag.FlagSet, args []string) error {
	var tf textFlags
	tf.register(fs)
	params := samplingFlags(fs)
	n := fs.Int("n", 512, "maximum new tokens")
	system := fs.String("system", "", "system message (chat-template models)")
	raw := fs.Bool("raw", false, "feed the prompt as raw text, without the chat template")
	promptFile := fs.String("prompt-file", "", "read the prompt from this file")
	verbose := fs.Bool("v", false, "print token counts and speeds to stderr")
	profile := fs.Bool("profile", false, "print to stderr the op-by-op profile of the prefill and decode steps (bench -profile has the same table)")
	var stops stopFlag
	fs.Var(&stops, "stop", "stop at this string (repeatable)")
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if err := maxTokensFlag(*n); err != nil {
		return err
	}
	p, err := params()
	if err != nil {
		return err
	}
	prompt := strings.Join(fs.Args(), " ")
	switch {
	case *promptFile != "" && prompt != "":
		return fmt.Errorf("%w: give the prompt as arguments or with -prompt-file, not both", errUsage)
	case *promptFile != "":
		b, err := os.ReadFile(*promptFile)
		if err != nil {
			return err
		}
		prompt = string(b)
	case prompt == "":
		b, err := readAll(stdin)
		if err != nil {
			return err
		}
		prompt = string(b)
	}
	if strings.TrimSpace(prompt) == "" {
		return fmt.Errorf("%w: the prompt is empty", errUsage)
	}
	stderr := fs.Output()
	t, err := loadText(&tf, engine.Config{MaxSeqs: 1, MaxQueue: 1}, stderr)
	if err != nil {
		return err
	}
	defer t.close()
	var fma, bw float64
	if *profile {
		fma, bw = quickLimits()
		t.m.SetProfile(&trace.Profile{})
	}
	var ids []int32
	if t.tmpl != nil && !*raw {
		var msgs []message
		if *system != "" {
			msgs = append(msgs, message{Role: "system", Content: *system})
		}
		text, err := t.render(append(msgs, message{Role: "user", Content: prompt}))
		if err != nil {
			return fmt.Errorf("chat template: %w", err)
		}
		ids = t.encode(text, false)
	} else {
		if *system != "" {
			return fmt.Errorf("%w: -system needs a chat template (the model has none, or -raw is set)", errUsage)
		}
		ids = t.encode(prompt, true)
	}
	ctx, stop := interruptContext()
	defer stop()
	resume, rest := t.prefillWithProgress(ids, stderr)
	req := engine.Request{Prompt: rest, Resume: resume, MaxTokens: *n, Params: p, StopTokens: t.stops}
	g, err := t.generate(ctx, req, stops, stdout)
	fmt.Fprintln(stdout)
	if ctx.Err() != nil {
		return errInterrupted
	}
	if err != nil {
		return err
	}
	if *profile {
		phases := t.m.TakeProfile()
		for ph := range trace.NumPhases {
			if sp := newStepProfile("run", ph, &phases[ph], 0, fma, bw); sp != nil {
				sp.print(stderr)
			}
		}
	}
	if *verbose {
		fmt.Fprintf(stderr, "prompt %d tokens, generated %d tokens (%s), first token after %v, finish %s, seed %d\n",
			len(ids), len(g.tokens), rate(len(g.tokens), g.elapsed-g.firstToken), g.firstToken.Round(1e6), g.finish(), g.result.Seed)
	}
	return nil
}
