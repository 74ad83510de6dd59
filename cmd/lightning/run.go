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
		usage:   "[-model DIR] [flags] \"prompt\"   (or -prompt-file FILE, or the prompt on stdin)  |  [-model DIR] -jsonl IN.jsonl [-o OUT.jsonl] [flags]",
		help: `Streams the model's answer to one prompt. When the model folder has a chat template
(tokenizer_config.json) the prompt is sent as one user message (with -system as the system message)
and the template's generation prompt is appended; -raw feeds the text as it is instead.
Generation stops at the model's end-of-turn/EOS tokens, at -n tokens, or at any -stop string.
Long prompts (-prompt-file) show a progress bar with tokens/s and ETA while they are read.
Without -model it runs the built-in model mini, embedded in this binary (no download, no file written).

Batch mode: -jsonl FILE answers every line of a JSONL file, -parallel at a time, and writes each line
back in order with the reply added as "answer" (-answer-field) and every other field unchanged. A line is
{"messages": [{"role": "user", "content": "..."}, ...]} (rendered with the chat template, generation
prompt added) or {"prompt": "..."} (raw text). Answers are greedy unless -temperature is given; -n, -stop
and the other sampling flags apply to every line. A conversation that ends with an assistant message (a
reference answer, as in the corpus's chat-heldout.jsonl) is refused unless -drop-reply drops that message.

Examples:
  lightning run "Write a haiku about thunder."
  lightning run -model /models/MiniMax-Text-01 "Explain lightning attention in two sentences."
  lightning run -model DIR -prompt-file book.txt -system "Summarize the document." -n 400
  lightning run -model DIR -raw -temperature 0 "Once upon a time"
  lightning run -model DIR -jsonl chat-heldout.jsonl -drop-reply -n 96 -o answers.jsonl`,
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
	jsonlIn := fs.String("jsonl", "", "batch mode: answer every line of this JSONL file (- = stdin), each {\"messages\": [...]} or {\"prompt\": \"...\"}")
	out := fs.String("o", "", "with -jsonl: write the answered lines to this file (default stdout)")
	field := fs.String("answer-field", "answer", "with -jsonl: the field that receives the reply")
	dropReply := fs.Bool("drop-reply", false, "with -jsonl: drop a conversation's final assistant message (a reference answer) before answering")
	parallel := fs.Int("parallel", 4, "with -jsonl: lines answered at once (batched in each forward step)")
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
	if *jsonlIn != "" {
		switch {
		case prompt != "" || *promptFile != "":
			return fmt.Errorf("%w: -jsonl reads the prompts from the file; give no prompt or -prompt-file", errUsage)
		case *system != "" || *raw:
			return fmt.Errorf("%w: with -jsonl each line says what it is: put a system message in its \"messages\", or give raw text as \"prompt\"", errUsage)
		case *profile:
			return fmt.Errorf("%w: -profile works on one prompt, not with -jsonl", errUsage)
		case *field == "":
			return fmt.Errorf("%w: -answer-field is empty", errUsage)
		case *parallel < 1:
			return fmt.Errorf("%w: -parallel must be at least 1", errUsage)
		}
		if !flagSet(fs, "temperature") {
			p.Temperature = 0 // batch answers are greedy unless asked otherwise
		}
		return runBatch(&tf, batchOptions{in: *jsonlIn, out: *out, field: *field, dropReply: *dropReply, parallel: *parallel,
			maxTokens: *n, params: p, stopStrings: stops}, fs.Output())
	}
	for _, name := range []string{"o", "answer-field", "drop-reply", "parallel"} {
		if flagSet(fs, name) {
			return fmt.Errorf("%w: -%s goes with -jsonl", errUsage, name)
		}
	}
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
