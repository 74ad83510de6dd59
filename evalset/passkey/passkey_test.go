package passkey

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestPromptLiteral(t *testing.T) {
	// Written out by hand: one filler group, needle after it, question.
	want := "There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about it.\n\n" +
		"The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. " +
		"The pass key is 12345. Remember it. 12345 is the pass key." +
		"\n\nWhat is the pass key? The pass key is"
	if got := Prompt(12345, 1, 1); got != want {
		t.Errorf("Prompt(12345, 1, 1) =\n%q\nwant\n%q", got, want)
	}
	if len(Filler) != 90 {
		t.Errorf("filler group is %d bytes, documented as 90", len(Filler))
	}
}

func TestPromptPlacement(t *testing.T) {
	for _, c := range []struct {
		depth  float64
		groups int
		before int
	}{{0, 10, 0}, {1, 10, 10}, {0.5, 10, 5}, {0.25, 10, 3}, {0.24, 10, 2}, {0.5, 3, 2}, {0.5, 0, 0}, {1, 0, 0}} {
		p := Prompt(77777, c.depth, c.groups)
		i := strings.Index(p, "The pass key is 77777.")
		if i < 0 {
			t.Fatalf("depth %v groups %d: no needle in %q", c.depth, c.groups, p)
		}
		if got := strings.Count(p[:i], Filler); got != c.before {
			t.Errorf("depth %v groups %d: %d groups before the needle, want %d", c.depth, c.groups, got, c.before)
		}
		if got := strings.Count(p, "The grass is green."); got != c.groups {
			t.Errorf("depth %v groups %d: %d groups in all", c.depth, c.groups, got)
		}
		if !strings.HasPrefix(p, Intro) || !strings.HasSuffix(p, "again."+Question) && !strings.HasSuffix(p, "pass key."+Question) {
			t.Errorf("depth %v groups %d: bad ends: %q", c.depth, c.groups, p)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("depth 1.5 did not panic")
		}
	}()
	Prompt(12345, 1.5, 3)
}

func TestKeyRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lo, hi := MaxKey, MinKey
	for range 1000000 { // each end missed with probability e^-11
		k := Key(r)
		lo, hi = min(lo, k), max(hi, k)
	}
	if lo != 10000 || hi != 99999 {
		t.Errorf("keys span [%d, %d], want [10000, 99999]", lo, hi)
	}
}

func TestHit(t *testing.T) {
	for _, c := range []struct {
		cont string
		hit  bool
	}{
		{" 12345.", true},
		{"12345", true},
		{" is 12345, I think", true},
		{" 1234", false},            // cut short
		{" 123456", false},          // too long
		{" 54321. 12345.", false},   // the first number counts
		{" 012345", false},          // digit for digit
		{" the key: 12,345", false}, // "12" comes first
		{"", false},
		{" nothing", false},
	} {
		if got := Hit(c.cont, 12345); got != c.hit {
			t.Errorf("Hit(%q, 12345) = %v, want %v", c.cont, got, c.hit)
		}
	}
	if FirstNumber("ab 9x77") != "9" || FirstNumber("x") != "" || Answer(10001) != " 10001." {
		t.Error("FirstNumber or Answer")
	}
}
