package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lightninglm/lightning/tokenizer/chat"
	"github.com/lightninglm/lightning/tokenizer/jinja"
)

func init() {
	register(&command{
		name:    "template",
		summary: "render a chat template (tokenizer_config.json's chat_template) for conversations read as JSON",
		usage:   "(-config tokenizer_config.json | -template FILE.jinja) [-jsonl] [flags] < input",
		help: `Renders Hugging Face chat templates exactly as transformers' apply_chat_template(tokenize=False)
does (Jinja2 semantics, special tokens from the config, kwargs overriding them).

Input is a JSON object {"messages": [...], "tools": [...]|null, "documents": [...]|null,
"add_generation_prompt": bool, "kwargs": {...}}; other fields are ignored, so the golden
cases.jsonl files work as input. Without -jsonl one object is read and the rendered text is
written as is. With -jsonl each input line is one object and each output line is
{"id": ..., "rendered": "..."} or {"id": ..., "error": {"type": "UndefinedError", "message": "..."}}
(the Python exception type and message; "id" is copied when the input has one).

MiniMax-M1's and Text-01's own templates want list-of-parts content; -normalize auto rewrites
OpenAI-style messages (string content, role "tool" results) into the shape the template wants.`,
		run: runTemplate,
	})
}

func runTemplate(fs *flag.FlagSet, args []string) error {
	cfgPath := fs.String("config", "", "tokenizer_config.json (its chat_template and special tokens; a chat_template.jinja beside it wins)")
	tmplPath := fs.String("template", "", "template source file, replacing the config's template")
	name := fs.String("name", "", `named template of the config ("default", "tool_use"); default: tool_use when tools are given and present, else default`)
	jsonl := fs.Bool("jsonl", false, "read one JSON object per line and write one JSON result per line")
	normalize := fs.String("normalize", "none", "rewrite messages for the template: none, auto (detect from the template), string, m1_parts or t01_parts")
	now := fs.String("now", "", "pin strftime_now's clock, e.g. 2025-07-01T09:30:00 (local time); default: the current time")
	inPath := fs.String("in", "", "read input from this file instead of standard input")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *cfgPath == "" && *tmplPath == "" {
		return fmt.Errorf("%w: give -config tokenizer_config.json or -template FILE", errUsage)
	}
	var clock func() time.Time
	if *now != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04:05", *now, time.Local)
		if err != nil {
			return fmt.Errorf("%w: -now: %v (want e.g. 2025-07-01T09:30:00)", errUsage, err)
		}
		clock = func() time.Time { return t }
	}
	switch *normalize {
	case "none", "auto", "string", "m1_parts", "t01_parts":
	default:
		return fmt.Errorf("%w: -normalize %q: want none, auto, string, m1_parts or t01_parts", errUsage, *normalize)
	}
	cfg := &chat.Config{Templates: map[string]string{}}
	if *cfgPath != "" {
		var err error
		if cfg, err = chat.LoadConfig(*cfgPath); err != nil {
			return err
		}
	}
	if *tmplPath != "" {
		src, err := os.ReadFile(*tmplPath)
		if err != nil {
			return err
		}
		cfg.Templates = map[string]string{"default": string(src)}
		if *name != "" && *name != "default" {
			return fmt.Errorf("%w: -name %q cannot be used with -template", errUsage, *name)
		}
	}
	in := stdin
	if *inPath != "" {
		f, err := os.Open(*inPath)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	r := &templateRenderer{cfg: cfg, name: *name, normalize: *normalize, now: clock, cache: map[string]*chat.Template{}}
	if !*jsonl {
		data, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		out, err := r.render(data)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, out)
		return err
	}
	return r.renderLines(in, stdout)
}

// templateRenderer renders input objects with the templates of one config.
type templateRenderer struct {
	cfg       *chat.Config
	name      string
	normalize string
	now       func() time.Time
	cache     map[string]*chat.Template // parsed templates by selection key
}

// template returns the template transformers would pick for the request.
func (r *templateRenderer) template(withTools bool) (*chat.Template, error) {
	key := fmt.Sprint(r.name, withTools)
	if t, ok := r.cache[key]; ok {
		return t, nil
	}
	t, err := r.cfg.Template(r.name, withTools)
	if err != nil {
		return nil, err
	}
	r.cache[key] = t
	return t, nil
}

// render renders one input object. Template errors come back as
// *jinja.Error; malformed input as other errors.
func (r *templateRenderer) render(data []byte) (string, error) {
	v, err := jinja.DecodeJSON(data)
	if err != nil {
		return "", err
	}
	obj, ok := v.(*jinja.Dict)
	if !ok {
		return "", errors.New("input is not a JSON object")
	}
	get := func(k string) jinja.Value { v, _ := obj.Get(k); return v }
	req := &chat.Request{Messages: get("messages"), Tools: get("tools"), Documents: get("documents"), Now: r.now}
	switch agp := get("add_generation_prompt").(type) {
	case nil:
	case bool:
		req.AddGenerationPrompt = agp
	default:
		return "", fmt.Errorf("add_generation_prompt is %s, want a bool", jinja.Str(agp))
	}
	if kw := get("kwargs"); kw != nil {
		d, ok := kw.(*jinja.Dict)
		if !ok {
			return "", errors.New("kwargs is not an object")
		}
		req.Kwargs = map[string]jinja.Value{}
		for i, k := range d.Keys() {
			req.Kwargs[k.(string)] = d.Values()[i]
		}
	}
	t, err := r.template(req.Tools != nil)
	if err != nil {
		return "", err
	}
	if r.normalize != "none" {
		format := t.Format
		if r.normalize != "auto" {
			format, _ = chat.ParseContentFormat(r.normalize)
		}
		if req.Messages, err = chat.NormalizeMessages(req.Messages, format); err != nil {
			return "", err
		}
	}
	return t.Render(req)
}

// renderLines renders each non-empty input line and writes its JSON result
// line as soon as it is made, so the results before a malformed line (which
// stops with an error naming it) are kept.
func (r *templateRenderer) renderLines(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if strings.TrimSpace(string(line)) == "" {
			continue
		}
		res := jinja.NewDict()
		if v, err := jinja.DecodeJSON(line); err == nil {
			if d, ok := v.(*jinja.Dict); ok {
				if id, ok := d.Get("id"); ok {
					res.Set("id", id)
				}
			}
		}
		text, err := r.render(line)
		var je *jinja.Error
		switch {
		case err == nil:
			res.Set("rendered", text)
		case errors.As(err, &je):
			e := jinja.NewDict()
			e.Set("type", je.Type)
			e.Set("message", je.Message)
			res.Set("error", e)
		default:
			return fmt.Errorf("input line %d: %w", n, err)
		}
		s, err := jinja.ToJSON(res)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(out, s+"\n"); err != nil {
			return err
		}
	}
	return sc.Err()
}
