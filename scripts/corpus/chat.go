package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// chatHeldOutPerMyriad is the share of chat entities (words, Go names) held
// out, in units of 1/10000 (5%).
const chatHeldOutPerMyriad = 500

// message is one turn in the OpenAI chat "messages" form.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// conversation is one line of the chat set. Kind and Entity say what was
// asked about; Template is the index of the question template; Reference is
// the fact the answer must carry (for scoring held-out answers).
type conversation struct {
	Messages  []message `json:"messages"`
	Kind      string    `json:"kind"`
	Entity    string    `json:"entity"`
	Template  int       `json:"template"`
	Reference string    `json:"reference"`
	SourceDoc string    `json:"source_doc"` // source/id of the corpus document the answer comes from
}

// chatTemplate is a question and its answer; %[1]s is the entity as asked,
// %[2]s the reference text, %[3]s extra (the part of speech, the package).
type chatTemplate struct{ question, answer string }

var wordTemplates = []chatTemplate{
	{"What does the word %[1]q mean?", "As %[3]s, %[1]q means %[2]s."},
	{"What is the meaning of %[1]q?", "%[1]q (%[3]s): %[2]s."},
	{"Define %[1]s.", "%[4]s, %[3]s: %[2]s."},
	{"Can you tell me what %[1]s means?", "Yes. %[1]q is %[3]s meaning %[2]s."},
	{"I came across the word %[1]q. What does it mean?", "In its most common sense, %[1]q is %[3]s that means %[2]s."},
}

var devilTemplates = []chatTemplate{
	{"How does the Devil's Dictionary define %[1]q?", "Ambrose Bierce's Devil's Dictionary defines it so: %[2]s"},
	{"What is Ambrose Bierce's definition of %[1]s?", "In The Devil's Dictionary, %[4]s: %[2]s"},
	{"Give me the cynic's definition of %[1]q, from The Devil's Dictionary.", "%[4]s, according to Bierce: %[2]s"},
}

var goFuncTemplates = []chatTemplate{
	{"What does %[1]s do?", "%[2]s"},
	{"In Go, what does the function %[1]s do?", "%[2]s"},
	{"Explain %[5]s from the Go package %[3]s.", "In package %[3]s: %[2]s"},
	{"What is the function %[5]s in Go's %[3]s package for?", "%[2]s"},
}

var goTypeTemplates = []chatTemplate{
	{"What is %[1]s in Go?", "%[2]s"},
	{"What does the type %[1]s represent?", "%[2]s"},
	{"Describe the Go type %[5]s from package %[3]s.", "In package %[3]s: %[2]s"},
}

// pickTemplate chooses a template by the entity's hash, so the choice is
// fixed for an entity and spread evenly over templates.
func pickTemplate(kind, entity string, n int) int {
	return int(splitHash("template/"+kind, entity) % uint64(n))
}

// chatSet is the synthesised conversations, split by entity.
type chatSet struct {
	Train, HeldOut []conversation
	Counts         map[string][2]int // kind -> train, held-out
}

func (c *chatSet) add(conv conversation) {
	if c.Counts == nil {
		c.Counts = map[string][2]int{}
	}
	n := c.Counts[conv.Kind]
	if splitHash("chat/"+conv.Kind, conv.Entity)%10000 < chatHeldOutPerMyriad {
		c.HeldOut = append(c.HeldOut, conv)
		n[1]++
	} else {
		c.Train = append(c.Train, conv)
		n[0]++
	}
	c.Counts[conv.Kind] = n
}

var plainWord = regexp.MustCompile(`^[a-z]{3,}$`)

// minWordTagCount is how often a word's commonest sense must be tagged in
// WordNet's semantic concordance for the word to be asked about: it keeps
// common words whose first sense is well attested.
const minWordTagCount = 3

func article(pos string) string {
	if strings.ContainsRune("aeiou", rune(pos[0])) {
		return "an " + pos
	}
	return "a " + pos
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// buildChat synthesises the chat set. An entity whose source document is in
// the corpus's held-out split is left out entirely, so that no held-out text
// reaches training through the chat set; every other entity gives one
// conversation, in chat-train or chat-heldout by a hash of the entity.
func buildChat(wn *wordNet, devil []devilEntry, apis []goAPI) *chatSet {
	c := &chatSet{}
	lemmas := make([]string, 0, len(wn.senses))
	for l := range wn.senses {
		if plainWord.MatchString(l) {
			lemmas = append(lemmas, l)
		}
	}
	sort.Strings(lemmas)
	for _, l := range lemmas {
		s, count := wn.commonestSense(l)
		if s == nil || count < minWordTagCount {
			continue
		}
		def := strings.TrimSuffix(s.Definition(), ".")
		if def == "" || heldOut("wordnet", s.POS+"/"+s.Offset) {
			continue
		}
		t := pickTemplate("word", l, len(wordTemplates))
		tpl := wordTemplates[t]
		c.add(conversation{
			Messages: []message{
				{"user", fmt.Sprintf(tpl.question, l)},
				{"assistant", fmt.Sprintf(tpl.answer, l, def, article(s.POS), capitalize(l))},
			},
			Kind: "word", Entity: l, Template: t, Reference: def, SourceDoc: "wordnet/" + s.POS + "/" + s.Offset,
		})
	}
	for _, e := range devil {
		def := devilDefinition(e.Text)
		if def == "" || e.ID != e.Headword || heldOut("devil", e.ID) || !plainWord.MatchString(e.Headword) {
			continue
		}
		t := pickTemplate("devil", e.Headword, len(devilTemplates))
		tpl := devilTemplates[t]
		c.add(conversation{
			Messages: []message{
				{"user", fmt.Sprintf(tpl.question, e.Headword)},
				{"assistant", fmt.Sprintf(tpl.answer, e.Headword, def, "", capitalize(e.Headword))},
			},
			Kind: "devil", Entity: e.Headword, Template: t, Reference: def, SourceDoc: "devil/" + e.ID,
		})
	}
	// A short name (json.Marshal) is used only where it names one thing.
	short := map[string]int{}
	for _, a := range apis {
		short[a.Package+"."+a.Name]++
	}
	for _, a := range apis {
		if heldOut("go", a.File) {
			continue
		}
		templates, kind := goFuncTemplates, "gofunc"
		if a.Kind == "type" {
			templates, kind = goTypeTemplates, "gotype"
		}
		entity := a.ImportPath + "." + a.Name
		t := pickTemplate(kind, entity, len(templates))
		name := a.Package + "." + a.Name
		if short[name] > 1 || a.Package != path0(a.ImportPath) {
			// Ambiguous or surprising short name: use a template that names the package path.
			t = 2
		}
		tpl := templates[t]
		c.add(conversation{
			Messages: []message{
				{"user", fmt.Sprintf(tpl.question, name, a.Synopsis, a.ImportPath, "", a.Name)},
				{"assistant", fmt.Sprintf(tpl.answer, name, a.Synopsis, a.ImportPath, "", a.Name)},
			},
			Kind: kind, Entity: entity, Template: t, Reference: a.Synopsis, SourceDoc: "go/" + a.File,
		})
	}
	c.addTwoTurn()
	return c
}

// twoTurnEvery is how many training conversations there are per extra
// two-turn conversation.
const twoTurnEvery = 10

// addTwoTurn appends to the training conversations one two-turn conversation
// per twoTurnEvery of them, so the model also sees a second question after an
// answer. Each joins two training conversations (of any kinds) taken in the
// order of a hash of their entities; the held-out set stays single-turn.
func (c *chatSet) addTwoTurn() {
	order := make([]int, len(c.Train))
	for i := range order {
		order[i] = i
	}
	key := func(i int) uint64 { return splitHash("two-turn/"+c.Train[i].Kind, c.Train[i].Entity) }
	sort.Slice(order, func(a, b int) bool { return key(order[a]) < key(order[b]) })
	n := len(c.Train) / twoTurnEvery
	for k := 0; k < n && 2*k+1 < len(order); k++ {
		a, b := c.Train[order[2*k]], c.Train[order[2*k+1]]
		c.Train = append(c.Train, conversation{
			Messages:  append(append([]message{}, a.Messages...), b.Messages...),
			Kind:      "two-turn",
			Entity:    a.Kind + ":" + a.Entity + " + " + b.Kind + ":" + b.Entity,
			Template:  -1,
			Reference: b.Reference,
			SourceDoc: a.SourceDoc + " + " + b.SourceDoc,
		})
	}
	if n > 0 {
		counts := c.Counts["two-turn"]
		counts[0] = n
		c.Counts["two-turn"] = counts
	}
}

// path0 is the last element of an import path, the usual package name.
func path0(importPath string) string {
	return importPath[strings.LastIndexByte(importPath, '/')+1:]
}
