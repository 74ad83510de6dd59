package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
)

func init() {
	register(&command{
		name:    "chat",
		summary: "interactive chat with history, sessions saved to disk, and sampling flags",
		usage:   "[-model DIR] [-system TEXT] [-session FILE] [sampling flags]",
		help: `An interactive conversation through the model's chat template. Each turn resumes from the state
the previous turn left (lightning states and KV cache), so only the new message is read, not the
whole history. With -session FILE the conversation and its state are saved after every turn
(atomically) and restored on the next start, so a long conversation resumes instantly. "serve
-session-dir DIR" reads such a file copied in as DIR/NAME.session; chat does not read the server's files.
Without -model it runs the built-in model mini, embedded in this binary (no download, no file written).

Type a message and press Enter. Commands:
  /reset        forget the conversation (keeps -system)
  /save FILE    write the conversation as JSON messages
  /system TEXT  replace the system message and reset
  /help         this list
  /exit         leave (so does Ctrl-D); Ctrl-C stops the current answer`,
		run: runChat,
	})
}

// chatSessionMeta is what a session file stores besides the state.
type chatSessionMeta struct {
	Messages []message `json:"messages"`
	Tokens   []int32   `json:"tokens"` // the ids the state has absorbed
	Text     string    `json:"text"`   // the rendered text those ids stand for
}

// chatState is the conversation and the model state that follows it.
type chatState struct {
	msgs     []message
	state    model.State // nil: re-read the conversation next turn
	absorbed []int32     // tokens behind state
	text     string      // the rendered conversation text behind absorbed
}

func runChat(fs *flag.FlagSet, args []string) error {
	var tf textFlags
	tf.register(fs)
	params := samplingFlags(fs)
	n := fs.Int("n", 1024, "maximum new tokens per answer")
	system := fs.String("system", "", "system message")
	session := fs.String("session", "", "save the conversation and its state to FILE after every turn, and resume from it")
	verbose := fs.Bool("v", false, "print token counts and speeds after each answer")
	var stops stopFlag
	fs.Var(&stops, "stop", "stop at this string (repeatable)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := maxTokensFlag(*n); err != nil {
		return err
	}
	p, err := params()
	if err != nil {
		return err
	}
	stderr := fs.Output()
	t, err := loadText(&tf, engine.Config{MaxSeqs: 1, MaxQueue: 1, PrefixCacheBytes: 256 << 20}, stderr)
	if err != nil {
		return err
	}
	defer t.close()
	if t.tmpl == nil {
		return errors.New("the model folder has no chat template (tokenizer_config.json chat_template); use 'lightning run -raw' for plain completion")
	}
	cs := &chatState{}
	if *system != "" {
		cs.msgs = []message{{Role: "system", Content: *system}}
	}
	if *session != "" {
		if err := cs.load(t.m, *session, stderr); err != nil {
			return err
		}
	}
	// Ctrl-C cancels the answer in progress, not the program.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	var mu sync.Mutex
	var cancel context.CancelFunc
	go func() {
		for range interrupts {
			mu.Lock()
			if cancel != nil {
				cancel()
			}
			mu.Unlock()
		}
	}()

	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	interactive := stdin == os.Stdin && isTerminal(os.Stdin)
	if interactive {
		fmt.Fprintln(stderr, "Type a message; /help lists commands, /exit or Ctrl-D leaves.")
	}
	for {
		if interactive {
			fmt.Fprint(stdout, "> ")
		}
		if !in.Scan() {
			if interactive {
				fmt.Fprintln(stdout)
			}
			return in.Err()
		}
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "/") {
			done, err := cs.command(line, *system)
			if err != nil {
				fmt.Fprintf(stderr, "error: %v\n", err)
			}
			if done {
				return nil
			}
			continue
		}
		cs.msgs = append(cs.msgs, message{Role: "user", Content: line})
		text, err := t.render(cs.msgs)
		if err != nil {
			cs.msgs = cs.msgs[:len(cs.msgs)-1]
			fmt.Fprintf(stderr, "error: chat template: %v\n", err)
			continue
		}
		// Resume from the last turn's state when the new rendering extends
		// the text it absorbed: only the new part is tokenized and read. The
		// model keeps seeing its own generated ids, as llama.cpp does.
		var ids []int32
		req := engine.Request{MaxTokens: *n, Params: p, StopTokens: t.stops, KeepState: true}
		if rest, ok := strings.CutPrefix(text, cs.text); ok && cs.state != nil && rest != "" {
			req.Resume, req.Prompt = cs.state, t.encode(rest, false)
			ids = append(slices.Clone(cs.absorbed), req.Prompt...)
		} else {
			ids = t.encode(text, false)
			req.Prompt = ids
		}
		cs.state = nil // the engine owns it now
		ctx, c := context.WithCancel(context.Background())
		mu.Lock()
		cancel = c
		mu.Unlock()
		g, err := t.generate(ctx, req, stops, stdout)
		mu.Lock()
		cancel = nil
		mu.Unlock()
		c()
		fmt.Fprintln(stdout)
		if err != nil {
			cs.msgs = cs.msgs[:len(cs.msgs)-1]
			fmt.Fprintf(stderr, "error: %v\n", err)
			continue
		}
		cs.msgs = append(cs.msgs, message{Role: "assistant", Content: g.text})
		cs.keep(t, text, ids, g)
		if *verbose {
			fmt.Fprintf(stderr, "[read %d new of %d prompt tokens, generated %d (%s), first token after %v, %s]\n",
				len(req.Prompt), len(ids), len(g.tokens), rate(len(g.tokens), g.elapsed-g.firstToken), g.firstToken.Round(1e6), g.finish())
		}
		if *session != "" {
			if err := cs.save(t.m, *session); err != nil {
				fmt.Fprintf(stderr, "error: saving the session: %v\n", err)
			}
		}
	}
}

// keep records the state a finished answer left: it has absorbed the prompt
// and every sampled token except the pending last one. Answers cut by a
// stop string or cancelled are not resumable (the state ran past the text).
func (cs *chatState) keep(t *textModel, promptText string, prompt []int32, g *generation) {
	cs.state, cs.absorbed, cs.text = nil, nil, ""
	kept, ok := g.result.Absorbed(g.tokens)
	if !ok {
		return
	}
	ids := make([]int, len(kept))
	for i, id := range kept {
		ids[i] = int(id)
	}
	cs.state = g.result.State
	cs.absorbed = append(slices.Clone(prompt), kept...)
	cs.text = promptText + t.tok.Decode(ids, false)
}

// command runs a /command; done reports /exit.
func (cs *chatState) command(line, system string) (done bool, err error) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/exit", "/quit", "/bye":
		return true, nil
	case "/reset":
		cs.reset(system)
		fmt.Fprintln(stdout, "(conversation cleared)")
	case "/system":
		cs.reset(arg)
		fmt.Fprintln(stdout, "(system message set, conversation cleared)")
	case "/save":
		if arg == "" {
			return false, errors.New("/save needs a file name")
		}
		b, _ := json.MarshalIndent(cs.msgs, "", "  ")
		if err := os.WriteFile(arg, append(b, '\n'), 0o644); err != nil {
			return false, err
		}
		fmt.Fprintf(stdout, "(saved %d messages to %s)\n", len(cs.msgs), arg)
	case "/help":
		fmt.Fprintln(stdout, "/reset, /save FILE, /system TEXT, /help, /exit")
	default:
		return false, fmt.Errorf("unknown command %s (try /help)", name)
	}
	return false, nil
}

func (cs *chatState) reset(system string) {
	cs.msgs, cs.state, cs.absorbed, cs.text = nil, nil, nil, ""
	if system != "" {
		cs.msgs = []message{{Role: "system", Content: system}}
	}
}

// save writes the session file (state + conversation) atomically.
func (cs *chatState) save(m *minimax01.Model, path string) error {
	st, ok := cs.state.(*minimax01.State)
	if !ok {
		return nil // nothing resumable yet
	}
	meta, err := json.Marshal(chatSessionMeta{Messages: cs.msgs, Tokens: cs.absorbed, Text: cs.text})
	if err != nil {
		return err
	}
	return m.SaveStateFile(path, st, meta)
}

// load restores a session file if it exists.
func (cs *chatState) load(m *minimax01.Model, path string, stderr io.Writer) error {
	st, meta, err := m.LoadStateFile(path)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "(new session %s)\n", path)
		return nil
	}
	if err != nil {
		if head, _ := readHead(path, 8); string(head) == "LTNGSRVS" {
			return fmt.Errorf("%s is a `lightning serve -session-dir` session file, which chat -session does not read (serve reads chat's files, not the reverse)\nHINT: continue it through the server, or name a new file", path)
		}
		return fmt.Errorf("%w\nHINT: delete or rename the file to start a new session", err)
	}
	var sm chatSessionMeta
	if err := json.Unmarshal(meta, &sm); err != nil {
		return fmt.Errorf("%s: session metadata: %w", path, err)
	}
	if len(sm.Tokens) != st.Len() {
		return fmt.Errorf("%s: session metadata lists %d tokens but the state holds %d", path, len(sm.Tokens), st.Len())
	}
	cs.msgs, cs.state, cs.absorbed, cs.text = sm.Messages, st, sm.Tokens, sm.Text
	fmt.Fprintf(stderr, "(resumed %s: %d messages, %d tokens)\n", path, len(sm.Messages), st.Len())
	return nil
}

// readHead returns up to n first bytes of a file.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	k, err := io.ReadFull(f, b)
	return b[:k], err
}
