package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/sample"
)

// batchOptions are run's -jsonl settings.
type batchOptions struct {
	in, out     string // input file ("-" = stdin) and output file ("" = stdout)
	field       string // the output field that receives the reply
	dropReply   bool   // drop a conversation's final assistant message
	parallel    int
	maxTokens   int
	params      sample.Params
	stopStrings []string
}

// batchLine is one input line: its number in the file, its bytes, and the
// prompt it asks for, as messages for the chat template or as raw text.
type batchLine struct {
	num    int
	raw    []byte
	msgs   []message // chat lines
	prompt string    // raw lines
	isChat bool
	ids    []int32
}

// parseBatchLines reads a JSONL input: every non-blank line is an object
// with "messages" (a conversation for the chat template) or "prompt" (raw
// text), and no field named field yet. A final assistant message is dropped
// with dropReply and an error otherwise. Errors name the line.
func parseBatchLines(data []byte, name, field string, dropReply bool) ([]batchLine, error) {
	var out []batchLine
	for num, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		bl, err := parseBatchLine(line, field, dropReply)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, num+1, err)
		}
		bl.num = num + 1
		out = append(out, bl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no lines", name)
	}
	return out, nil
}

func parseBatchLine(line []byte, field string, dropReply bool) (batchLine, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil || fields == nil {
		return batchLine{}, fmt.Errorf("not a JSON object (want {\"messages\": [...]} or {\"prompt\": \"...\"}): %v", err)
	}
	if _, ok := fields[field]; ok {
		return batchLine{}, fmt.Errorf("already has a field %q; choose another with -answer-field", field)
	}
	rawMsgs, hasMsgs := fields["messages"]
	rawPrompt, hasPrompt := fields["prompt"]
	bl := batchLine{raw: line, isChat: hasMsgs}
	switch {
	case hasMsgs == hasPrompt:
		return bl, errors.New(`want exactly one of "messages" and "prompt"`)
	case hasPrompt:
		if err := json.Unmarshal(rawPrompt, &bl.prompt); err != nil {
			return bl, fmt.Errorf(`"prompt" is not a string`)
		}
		if bl.prompt == "" {
			return bl, errors.New(`"prompt" is empty`)
		}
		return bl, nil
	}
	if err := json.Unmarshal(rawMsgs, &bl.msgs); err != nil {
		return bl, fmt.Errorf(`"messages" is not a list of {"role": ..., "content": "..."}: %v`, err)
	}
	if dropReply && len(bl.msgs) > 0 && bl.msgs[len(bl.msgs)-1].Role == "assistant" {
		bl.msgs = bl.msgs[:len(bl.msgs)-1]
	}
	switch {
	case len(bl.msgs) == 0:
		return bl, errors.New(`"messages" is empty`)
	case bl.msgs[len(bl.msgs)-1].Role == "assistant":
		return bl, errors.New("the conversation ends with an assistant message\nHINT: -drop-reply drops it (for sets that carry the reference answer there)")
	}
	for i, m := range bl.msgs {
		if m.Role == "" {
			return bl, fmt.Errorf("message %d has no role", i)
		}
	}
	return bl, nil
}

// withField returns the JSON object line with field: value appended, every
// other byte of it unchanged.
func withField(line []byte, field, value string) []byte {
	body := bytes.TrimSpace(line[:bytes.LastIndexByte(line, '}')]) // "{…" without the closing brace
	out := bytes.NewBuffer(append([]byte{}, body...))
	if len(bytes.TrimSpace(body[1:])) > 0 {
		out.WriteByte(',')
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	enc.Encode(field) // a string always encodes; Encode adds a newline
	out.Truncate(out.Len() - 1)
	out.WriteByte(':')
	enc.Encode(value)
	out.Truncate(out.Len() - 1)
	out.WriteString("}\n")
	return out.Bytes()
}

// runBatch answers every line of a JSONL file and writes each line back,
// in input order, with the reply added.
func runBatch(tf *textFlags, o batchOptions, stderr io.Writer) error {
	var data []byte
	var err error
	name := o.in
	if o.in == "-" {
		name = "stdin"
		data, err = readAll(stdin)
	} else {
		data, err = os.ReadFile(o.in)
	}
	if err != nil {
		return err
	}
	lines, err := parseBatchLines(data, name, o.field, o.dropReply)
	if err != nil {
		return err
	}
	t, err := loadText(tf, engine.Config{MaxSeqs: o.parallel, MaxQueue: o.parallel}, stderr)
	if err != nil {
		return err
	}
	defer t.close()
	for i := range lines {
		bl := &lines[i]
		if !bl.isChat {
			bl.ids = t.encode(bl.prompt, true)
			continue
		}
		if t.tmpl == nil {
			return fmt.Errorf("%s line %d: the model has no chat template; give {\"prompt\": \"...\"} lines for raw text", name, bl.num)
		}
		text, err := t.render(bl.msgs)
		if err != nil {
			return fmt.Errorf("%s line %d: chat template: %w", name, bl.num, err)
		}
		bl.ids = t.encode(text, false)
	}
	w := stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	ctx, stop := interruptContext()
	defer stop()
	err = t.answerLines(ctx, lines, o, bw, newProgress(stderr, "answers", "lines"))
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	if err != nil {
		return err
	}
	if o.out != "" {
		fmt.Fprintf(stderr, "%d answers written to %s\n", len(lines), o.out)
	}
	return nil
}

// answerLines generates the replies, o.parallel lines at a time, and writes
// the lines in input order as soon as all before them are done.
func (t *textModel) answerLines(ctx context.Context, lines []batchLine, o batchOptions, w *bufio.Writer, bar *progress) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		replies  = make([]*string, len(lines))
		next     int // the first line not written yet
		firstErr error
		wg       sync.WaitGroup
	)
	slots := make(chan struct{}, o.parallel)
	bar.update(0, int64(len(lines)))
	for i := range lines {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-slots }()
			req := engine.Request{Prompt: lines[i].ids, MaxTokens: o.maxTokens, Params: o.params, StopTokens: t.stops}
			g, err := t.generate(ctx, req, o.stopStrings, io.Discard)
			if err == nil && ctx.Err() != nil {
				err = ctx.Err() // cut short: not an answer
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("line %d: %w", lines[i].num, err)
				}
				cancel()
				return
			}
			replies[i] = &g.text
			for next < len(lines) && replies[next] != nil {
				w.Write(withField(lines[next].raw, o.field, *replies[next]))
				if err := w.Flush(); err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				next++
			}
			bar.update(int64(next), int64(len(lines)))
		}(i)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
