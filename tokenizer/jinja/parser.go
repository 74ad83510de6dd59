package jinja

import (
	"strings"
)

// parser is a recursive-descent parser mirroring jinja2.parser.Parser, so
// precedence and error messages follow Jinja's.
type parser struct {
	toks     []token
	pos      int
	tagStack []string   // open block tags, for error messages
	endStack [][]string // end tokens looked for, for error messages
	loops    int        // enclosing for loops, for break/continue
}

func (p *parser) cur() token { return p.toks[p.pos] }

func (p *parser) look() token {
	if p.pos+1 < len(p.toks) {
		return p.toks[p.pos+1]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) isName(v string) bool {
	t := p.cur()
	return t.kind == tName && t.val == v
}

func (p *parser) isOp(v string) bool {
	t := p.cur()
	return t.kind == tOp && t.val == v
}

func (p *parser) skipName(v string) bool {
	if p.isName(v) {
		p.next()
		return true
	}
	return false
}

func (p *parser) skipOp(v string) bool {
	if p.isOp(v) {
		p.next()
		return true
	}
	return false
}

func (p *parser) fail(format string, args ...any) error {
	return syntaxErr(p.cur().line, format, args...)
}

// expectFail is TokenStream.expect's error.
func (p *parser) expectFail(what string) error {
	t := p.cur()
	if t.kind == tEOF {
		return p.fail("unexpected end of template, expected %s.", strRepr(what))
	}
	return p.fail("expected token %s, got %s", strRepr(what), strRepr(t.describe()))
}

func (p *parser) expectOp(v string) error {
	if !p.skipOp(v) {
		return p.expectFail(v)
	}
	return nil
}

func (p *parser) expectName() (string, error) {
	if p.cur().kind != tName {
		return "", p.expectFail("name")
	}
	return p.next().val, nil
}

func (p *parser) expectKind(k tokKind, what string) error {
	if p.cur().kind != k {
		return p.expectFail(what)
	}
	p.next()
	return nil
}

// parseTemplate parses a whole template.
func parseTemplate(toks []token) ([]node, error) {
	p := &parser{toks: toks}
	body, err := p.subparse(nil)
	if err != nil {
		return nil, err
	}
	if err := checkNames(body); err != nil {
		return nil, err
	}
	return body, nil
}

// subparse parses statements until one of endTokens (a block tag name) is
// the current token after a block begin; that name is left current.
func (p *parser) subparse(endTokens []string) ([]node, error) {
	var body []node
	if endTokens != nil {
		p.endStack = append(p.endStack, endTokens)
		defer func() { p.endStack = p.endStack[:len(p.endStack)-1] }()
	}
	for {
		t := p.cur()
		switch t.kind {
		case tEOF:
			return body, nil
		case tData:
			body = append(body, &dataNode{text: t.val})
			p.next()
		case tVarBegin:
			p.next()
			e, err := p.parseTuple(false, true, nil, false)
			if err != nil {
				return nil, err
			}
			body = append(body, &outputNode{e: e})
			if err := p.expectKind(tVarEnd, "end of print statement"); err != nil {
				return nil, err
			}
		case tBlockBegin:
			p.next()
			if endTokens != nil && p.cur().kind == tName {
				for _, e := range endTokens {
					if p.cur().val == e {
						return body, nil
					}
				}
			}
			nodes, err := p.parseStatement()
			if err != nil {
				return nil, err
			}
			body = append(body, nodes...)
			if err := p.expectKind(tBlockEnd, "end of statement block"); err != nil {
				return nil, err
			}
		default:
			return nil, p.fail("internal parsing error")
		}
	}
}

// parseStatements parses a block body up to one of endTokens, leaving the
// end name current (or consuming it when drop).
func (p *parser) parseStatements(endTokens []string, drop bool) ([]node, error) {
	p.skipOp(":")
	if err := p.expectKind(tBlockEnd, "end of statement block"); err != nil {
		return nil, err
	}
	body, err := p.subparse(endTokens)
	if err != nil {
		return nil, err
	}
	if p.cur().kind == tEOF {
		return nil, p.failEOF(endTokens)
	}
	if drop {
		p.next()
	}
	return body, nil
}

// failUnknown builds Parser._fail_ut_eof's message.
func (p *parser) failUnknown(name string, stack [][]string) error {
	var msg []string
	if name == "" {
		msg = append(msg, "Unexpected end of template.")
	} else {
		msg = append(msg, "Encountered unknown tag "+strRepr(name)+".")
	}
	if len(stack) > 0 {
		last := stack[len(stack)-1]
		quoted := make([]string, len(last))
		for i, s := range last {
			quoted[i] = strRepr(s)
		}
		looking := strings.Join(quoted, " or ")
		expected := false
		for _, ends := range stack {
			for _, e := range ends {
				if e == name {
					expected = true
				}
			}
		}
		if name != "" && expected {
			msg = append(msg, "You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for "+looking+".")
		} else {
			msg = append(msg, "Jinja was looking for the following tags: "+looking+".")
		}
	}
	if len(p.tagStack) > 0 {
		msg = append(msg, "The innermost block that needs to be closed is "+strRepr(p.tagStack[len(p.tagStack)-1])+".")
	}
	return p.fail("%s", strings.Join(msg, " "))
}

func (p *parser) failEOF(endTokens []string) error {
	stack := append(append([][]string(nil), p.endStack...), endTokens)
	return p.failUnknown("", stack)
}

func (p *parser) parseStatement() ([]node, error) {
	t := p.cur()
	if t.kind != tName {
		return nil, p.fail("tag name expected")
	}
	p.tagStack = append(p.tagStack, t.val)
	pop := func() { p.tagStack = p.tagStack[:len(p.tagStack)-1] }
	var n node
	var err error
	switch t.val {
	case "for":
		n, err = p.parseFor()
	case "if":
		n, err = p.parseIf()
	case "set":
		n, err = p.parseSet()
	case "macro":
		n, err = p.parseMacro()
	case "call":
		n, err = p.parseCallBlock()
	case "filter":
		n, err = p.parseFilterBlock()
	case "with":
		n, err = p.parseWith()
	case "print":
		pop()
		return p.parsePrint()
	case "generation":
		p.next()
		var body []node
		body, err = p.parseStatements([]string{"endgeneration"}, true)
		n = &generationNode{body: body}
	case "break", "continue":
		p.next()
		if p.loops == 0 {
			err = p.fail("%s outside loop", strRepr(t.val))
		}
		n = &loopCtlNode{isBreak: t.val == "break"}
	case "block", "extends", "include", "import", "from", "autoescape":
		err = p.fail("tag %s is not supported by this renderer", strRepr(t.val))
	default:
		pop()
		return nil, p.failUnknown(t.val, p.endStack)
	}
	pop()
	if err != nil {
		return nil, err
	}
	return []node{n}, nil
}

func (p *parser) parsePrint() ([]node, error) {
	p.next()
	var out []node
	for p.cur().kind != tBlockEnd {
		if len(out) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		out = append(out, &outputNode{e: e})
	}
	return out, nil
}

func (p *parser) parseFor() (node, error) {
	p.next()
	target, err := p.parseAssignTarget(true, false, []string{"in"}, false)
	if err != nil {
		return nil, err
	}
	if !p.skipName("in") {
		return nil, p.expectFail("in")
	}
	iter, err := p.parseTuple(false, false, []string{"recursive"}, false)
	if err != nil {
		return nil, err
	}
	f := &forNode{target: target, iter: iter}
	if p.skipName("if") {
		if f.cond, err = p.parseExpression(true); err != nil {
			return nil, err
		}
	}
	f.recursive = p.skipName("recursive")
	p.loops++
	f.body, err = p.parseStatements([]string{"endfor", "else"}, false)
	p.loops--
	if err != nil {
		return nil, err
	}
	if p.next().val == "endfor" {
		return f, nil
	}
	f.els, err = p.parseStatements([]string{"endfor"}, true)
	return f, err
}

func (p *parser) parseIf() (node, error) {
	p.next()
	n := &ifNode{}
	for {
		test, err := p.parseTuple(false, false, nil, false)
		if err != nil {
			return nil, err
		}
		body, err := p.parseStatements([]string{"elif", "else", "endif"}, false)
		if err != nil {
			return nil, err
		}
		n.tests = append(n.tests, test)
		n.bodies = append(n.bodies, body)
		switch p.next().val {
		case "elif":
			continue
		case "else":
			if n.els, err = p.parseStatements([]string{"endif"}, true); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
}

func (p *parser) parseSet() (node, error) {
	p.next()
	target, err := p.parseAssignTarget(true, false, nil, true)
	if err != nil {
		return nil, err
	}
	if p.skipOp("=") {
		v, err := p.parseTuple(false, true, nil, false)
		if err != nil {
			return nil, err
		}
		return &setNode{target: target, value: v}, nil
	}
	var filter *filterExpr
	if p.isOp("|") {
		f, err := p.parseFilter(nil, false)
		if err != nil {
			return nil, err
		}
		filter = f.(*filterExpr)
	}
	body, err := p.parseStatements([]string{"endset"}, true)
	if err != nil {
		return nil, err
	}
	return &setBlockNode{target: target, filter: filter, body: body}, nil
}

func (p *parser) parseWith() (node, error) {
	p.next()
	n := &withNode{}
	for p.cur().kind != tBlockEnd {
		if len(n.targets) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		target, err := p.parseAssignTarget(true, false, nil, false)
		if err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		n.targets = append(n.targets, target)
		n.values = append(n.values, v)
	}
	body, err := p.parseStatements([]string{"endwith"}, true)
	n.body = body
	return n, err
}

func (p *parser) parseSignature(m *macroDef) error {
	if err := p.expectOp("("); err != nil {
		return err
	}
	for !p.isOp(")") {
		if len(m.params) > 0 {
			if err := p.expectOp(","); err != nil {
				return err
			}
		}
		name, err := p.expectName()
		if err != nil {
			return err
		}
		if p.skipOp("=") {
			d, err := p.parseExpression(true)
			if err != nil {
				return err
			}
			m.defaults = append(m.defaults, d)
		} else if len(m.defaults) > 0 {
			return p.fail("non-default argument follows default argument")
		}
		m.params = append(m.params, name)
	}
	return p.expectOp(")")
}

func (p *parser) parseMacro() (node, error) {
	line := p.next().line
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	m := &macroDef{name: name}
	if err := p.parseSignature(m); err != nil {
		return nil, err
	}
	loops := p.loops
	p.loops = 0
	m.body, err = p.parseStatements([]string{"endmacro"}, true)
	p.loops = loops
	if err != nil {
		return nil, err
	}
	if err := m.analyze(); err != nil {
		return nil, &Error{Type: "TemplateAssertionError", Message: err.Error(), Line: line}
	}
	return &macroNode{m: m}, nil
}

func (p *parser) parseCallBlock() (node, error) {
	p.next()
	m := &macroDef{name: "caller"}
	if p.isOp("(") {
		if err := p.parseSignature(m); err != nil {
			return nil, err
		}
	}
	line := p.cur().line
	e, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	call, ok := e.(*callExpr)
	if !ok {
		return nil, syntaxErr(line, "expected call")
	}
	loops := p.loops
	p.loops = 0
	m.body, err = p.parseStatements([]string{"endcall"}, true)
	p.loops = loops
	if err != nil {
		return nil, err
	}
	if err := m.analyze(); err != nil {
		return nil, &Error{Type: "TemplateAssertionError", Message: err.Error(), Line: line}
	}
	return &callBlockNode{call: call, caller: m}, nil
}

func (p *parser) parseFilterBlock() (node, error) {
	p.next()
	f, err := p.parseFilter(nil, true)
	if err != nil {
		return nil, err
	}
	body, err := p.parseStatements([]string{"endfilter"}, true)
	if err != nil {
		return nil, err
	}
	return &filterBlockNode{filter: f.(*filterExpr), body: body}, nil
}

// parseAssignTarget parses a set/for/with target: a name, a tuple of
// names, or (withNamespace) ns.attr.
func (p *parser) parseAssignTarget(withTuple, nameOnly bool, extraEnd []string, withNamespace bool) (expr, error) {
	line := p.cur().line
	var target expr
	var err error
	switch {
	case nameOnly:
		name, err := p.expectName()
		if err != nil {
			return nil, err
		}
		return &nameExpr{name: name}, nil
	case withTuple:
		target, err = p.parseTuple(true, true, extraEnd, false, withNamespace)
	default:
		target, err = p.parsePrimary(withNamespace)
	}
	if err != nil {
		return nil, err
	}
	if !canAssign(target) {
		return nil, syntaxErr(line, "can't assign to %s", strRepr(nodeTypeName(target)))
	}
	return target, nil
}

func canAssign(e expr) bool {
	switch e := e.(type) {
	case *nameExpr:
		switch e.name {
		case "true", "false", "none", "True", "False", "None":
			return false
		}
		return true
	case *nsRefExpr:
		return true
	case *tupleExpr:
		for _, it := range e.items {
			if !canAssign(it) {
				return false
			}
		}
		return true
	}
	return false
}

func nodeTypeName(e expr) string {
	switch e.(type) {
	case *constExpr:
		return "const"
	case *tupleExpr:
		return "tuple"
	case *listExpr:
		return "list"
	case *dictExpr:
		return "dict"
	}
	return "expr"
}

func (p *parser) parseExpression(withCond bool) (expr, error) {
	if withCond {
		return p.parseCondExpr()
	}
	return p.parseOr()
}

func (p *parser) parseCondExpr() (expr, error) {
	line := p.cur().line
	e1, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.skipName("if") {
		e2, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var e3 expr
		if p.skipName("else") {
			if e3, err = p.parseCondExpr(); err != nil {
				return nil, err
			}
		}
		e1 = &condExpr{test: e2, yes: e1, no: e3, line: line}
		line = p.cur().line
	}
	return e1, nil
}

func (p *parser) parseOr() (expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.skipName("or") {
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &orExpr{l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (expr, error) {
	l, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	for p.skipName("and") {
		r, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		l = &andExpr{l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseNot() (expr, error) {
	if p.skipName("not") {
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &notExpr{x: x}, nil
	}
	return p.parseCompare()
}

var compareOps = map[string]string{"==": "eq", "!=": "ne", "<": "lt", "<=": "lteq", ">": "gt", ">=": "gteq"}

func (p *parser) parseCompare() (expr, error) {
	e, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	c := &compareExpr{first: e}
	for {
		var op string
		t := p.cur()
		switch {
		case t.kind == tOp && compareOps[t.val] != "":
			op = compareOps[t.val]
			p.next()
		case p.isName("in"):
			op = "in"
			p.next()
		case p.isName("not") && p.look().kind == tName && p.look().val == "in":
			op = "notin"
			p.next()
			p.next()
		}
		if op == "" {
			break
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		c.ops = append(c.ops, op)
		c.rest = append(c.rest, r)
	}
	if len(c.ops) == 0 {
		return e, nil
	}
	return c, nil
}

func (p *parser) parseMath1() (expr, error) {
	l, err := p.parseConcat()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.next().val
		r, err := p.parseConcat()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseConcat() (expr, error) {
	e, err := p.parseMath2()
	if err != nil {
		return nil, err
	}
	items := []expr{e}
	for p.skipOp("~") {
		e, err := p.parseMath2()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	if len(items) == 1 {
		return items[0], nil
	}
	return &concatExpr{items: items}, nil
}

func (p *parser) parseMath2() (expr, error) {
	l, err := p.parsePow()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		op := p.next().val
		r, err := p.parsePow()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parsePow() (expr, error) {
	l, err := p.parseUnary(true)
	if err != nil {
		return nil, err
	}
	for p.skipOp("**") {
		r, err := p.parseUnary(true)
		if err != nil {
			return nil, err
		}
		l = &binExpr{op: "**", l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	var n expr
	var err error
	switch {
	case p.skipOp("-"):
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		n = &negExpr{x: x}
	case p.skipOp("+"):
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		n = &posExpr{x: x}
	default:
		if n, err = p.parsePrimary(false); err != nil {
			return nil, err
		}
	}
	if n, err = p.parsePostfix(n); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterExpr(n)
	}
	return n, nil
}

func (p *parser) parsePrimary(withNamespace bool) (expr, error) {
	t := p.cur()
	switch t.kind {
	case tName:
		p.next()
		switch t.val {
		case "true", "True":
			return &constExpr{v: true}, nil
		case "false", "False":
			return &constExpr{v: false}, nil
		case "none", "None":
			return &constExpr{v: nil}, nil
		}
		if withNamespace && p.isOp(".") {
			p.next()
			attr, err := p.expectName()
			if err != nil {
				return nil, err
			}
			return &nsRefExpr{name: t.val, attr: attr}, nil
		}
		return &nameExpr{name: t.val}, nil
	case tString:
		p.next()
		var b strings.Builder
		b.WriteString(t.val)
		for p.cur().kind == tString {
			b.WriteString(p.next().val)
		}
		return &constExpr{v: b.String()}, nil
	case tInt, tFloat:
		p.next()
		return &constExpr{v: t.num}, nil
	case tOp:
		switch t.val {
		case "(":
			p.next()
			e, err := p.parseTuple(false, true, nil, true)
			if err != nil {
				return nil, err
			}
			return e, p.expectOp(")")
		case "[":
			return p.parseList()
		case "{":
			return p.parseDict()
		}
	}
	return nil, p.fail("unexpected %s", strRepr(t.describe()))
}

// isTupleEnd reports whether the current token ends a tuple.
func (p *parser) isTupleEnd(extraEnd []string) bool {
	t := p.cur()
	if t.kind == tVarEnd || t.kind == tBlockEnd || (t.kind == tOp && t.val == ")") {
		return true
	}
	for _, e := range extraEnd {
		if t.kind == tName && t.val == e {
			return true
		}
	}
	return false
}

// parseTuple parses an expression, or a tuple if commas follow. simplified
// parses only primaries (for assignment targets).
func (p *parser) parseTuple(simplified, withCond bool, extraEnd []string, explicitParens bool, withNamespace ...bool) (expr, error) {
	ns := len(withNamespace) > 0 && withNamespace[0]
	var items []expr
	isTuple := false
	for {
		if len(items) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.isTupleEnd(extraEnd) {
			break
		}
		var e expr
		var err error
		if simplified {
			e, err = p.parsePrimary(ns)
		} else {
			e, err = p.parseExpression(withCond)
		}
		if err != nil {
			return nil, err
		}
		items = append(items, e)
		if p.isOp(",") {
			isTuple = true
		} else {
			break
		}
	}
	if !isTuple {
		if len(items) > 0 {
			return items[0], nil
		}
		if !explicitParens {
			return nil, p.fail("Expected an expression, got %s", strRepr(p.cur().describe()))
		}
	}
	return &tupleExpr{items: items}, nil
}

func (p *parser) parseList() (expr, error) {
	p.next()
	l := &listExpr{}
	for !p.isOp("]") {
		if len(l.items) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.isOp("]") {
			break
		}
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		l.items = append(l.items, e)
	}
	return l, p.expectOp("]")
}

func (p *parser) parseDict() (expr, error) {
	p.next()
	d := &dictExpr{}
	for !p.isOp("}") {
		if len(d.keys) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		if p.isOp("}") {
			break
		}
		k, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(":"); err != nil {
			return nil, err
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		d.keys = append(d.keys, k)
		d.vals = append(d.vals, v)
	}
	return d, p.expectOp("}")
}

func (p *parser) parsePostfix(n expr) (expr, error) {
	for {
		var err error
		switch {
		case p.isOp(".") || p.isOp("["):
			n, err = p.parseSubscript(n)
		case p.isOp("("):
			n, err = p.parseCall(n)
		default:
			return n, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) parseFilterExpr(n expr) (expr, error) {
	for {
		var err error
		switch {
		case p.isOp("|"):
			n, err = p.parseFilter(n, false)
		case p.isName("is"):
			n, err = p.parseTest(n)
		case p.isOp("("):
			n, err = p.parseCall(n)
		default:
			return n, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) parseSubscript(n expr) (expr, error) {
	t := p.next()
	if t.val == "." {
		a := p.next()
		switch a.kind {
		case tName:
			return &getattrExpr{obj: n, attr: a.val}, nil
		case tInt:
			return &getitemExpr{obj: n, key: &constExpr{v: a.num}}, nil
		}
		return nil, syntaxErr(a.line, "expected name or number")
	}
	var args []expr
	for !p.isOp("]") {
		if len(args) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		a, err := p.parseSubscribed()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	if err := p.expectOp("]"); err != nil {
		return nil, err
	}
	if len(args) == 1 {
		return &getitemExpr{obj: n, key: args[0]}, nil
	}
	return &getitemExpr{obj: n, key: &tupleExpr{items: args}}, nil
}

func (p *parser) parseSubscribed() (expr, error) {
	var parts []expr
	if p.skipOp(":") {
		parts = []expr{nil}
	} else {
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		if !p.isOp(":") {
			return e, nil
		}
		p.next()
		parts = []expr{e}
	}
	switch {
	case p.isOp(":"):
		parts = append(parts, nil)
	case !p.isOp("]") && !p.isOp(","):
		e, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		parts = append(parts, e)
	default:
		parts = append(parts, nil)
	}
	if p.skipOp(":") {
		if !p.isOp("]") && !p.isOp(",") {
			e, err := p.parseExpression(true)
			if err != nil {
				return nil, err
			}
			parts = append(parts, e)
		} else {
			parts = append(parts, nil)
		}
	} else {
		parts = append(parts, nil)
	}
	return &sliceExpr{start: parts[0], stop: parts[1], step: parts[2]}, nil
}

func (p *parser) parseCallArgs() (callArgs, error) {
	var a callArgs
	line := p.cur().line
	if err := p.expectOp("("); err != nil {
		return a, err
	}
	ensure := func(ok bool) error {
		if !ok {
			return syntaxErr(line, "invalid syntax for function call expression")
		}
		return nil
	}
	requireComma := false
	for !p.isOp(")") {
		if requireComma {
			if err := p.expectOp(","); err != nil {
				return a, err
			}
			if p.isOp(")") {
				break
			}
		}
		switch {
		case p.isOp("*"):
			if err := ensure(a.dynArgs == nil && a.dynKwargs == nil); err != nil {
				return a, err
			}
			p.next()
			e, err := p.parseExpression(true)
			if err != nil {
				return a, err
			}
			a.dynArgs = e
		case p.isOp("**"):
			if err := ensure(a.dynKwargs == nil); err != nil {
				return a, err
			}
			p.next()
			e, err := p.parseExpression(true)
			if err != nil {
				return a, err
			}
			a.dynKwargs = e
		case p.cur().kind == tName && p.look().kind == tOp && p.look().val == "=":
			if err := ensure(a.dynKwargs == nil); err != nil {
				return a, err
			}
			key := p.next().val
			p.next()
			e, err := p.parseExpression(true)
			if err != nil {
				return a, err
			}
			a.kwNames = append(a.kwNames, key)
			a.kwVals = append(a.kwVals, e)
		default:
			if err := ensure(a.dynArgs == nil && a.dynKwargs == nil && len(a.kwNames) == 0); err != nil {
				return a, err
			}
			e, err := p.parseExpression(true)
			if err != nil {
				return a, err
			}
			a.args = append(a.args, e)
		}
		requireComma = true
	}
	return a, p.expectOp(")")
}

func (p *parser) parseCall(n expr) (expr, error) {
	a, err := p.parseCallArgs()
	if err != nil {
		return nil, err
	}
	return &callExpr{fn: n, callArgs: a}, nil
}

// parseFilter parses "| name(args) | ..." (or, with startInline, a filter
// chain without the leading pipe, as in {% filter %}).
func (p *parser) parseFilter(n expr, startInline bool) (expr, error) {
	for p.isOp("|") || startInline {
		if !startInline {
			p.next()
		}
		name, err := p.expectName()
		if err != nil {
			return nil, err
		}
		for p.skipOp(".") {
			part, err := p.expectName()
			if err != nil {
				return nil, err
			}
			name += "." + part
		}
		f := &filterExpr{base: n, name: name}
		if p.isOp("(") {
			if f.callArgs, err = p.parseCallArgs(); err != nil {
				return nil, err
			}
		}
		n = f
		startInline = false
	}
	return n, nil
}

func (p *parser) parseTest(n expr) (expr, error) {
	p.next()
	negated := p.skipName("not")
	name, err := p.expectName()
	if err != nil {
		return nil, err
	}
	for p.skipOp(".") {
		part, err := p.expectName()
		if err != nil {
			return nil, err
		}
		name += "." + part
	}
	t := &testExpr{base: n, name: name}
	c := p.cur()
	switch {
	case c.kind == tOp && c.val == "(":
		if t.callArgs, err = p.parseCallArgs(); err != nil {
			return nil, err
		}
	case (c.kind == tName || c.kind == tString || c.kind == tInt || c.kind == tFloat ||
		(c.kind == tOp && (c.val == "[" || c.val == "{"))) &&
		!(c.kind == tName && (c.val == "else" || c.val == "or" || c.val == "and")):
		if c.kind == tName && c.val == "is" {
			return nil, p.fail("You cannot chain multiple tests with is")
		}
		arg, err := p.parsePrimary(false)
		if err != nil {
			return nil, err
		}
		if arg, err = p.parsePostfix(arg); err != nil {
			return nil, err
		}
		t.args = []expr{arg}
	}
	if negated {
		return &notExpr{x: t}, nil
	}
	return t, nil
}

// analyze records which of caller, kwargs and varargs the macro body
// loads, as the compiler's macro_body does: caller is special even when
// declared (then it needs a default), kwargs and varargs only when not
// declared.
func (m *macroDef) analyze() error {
	declared := map[string]int{}
	for i, name := range m.params {
		declared[name] = i
	}
	walkNames(m.body, func(name string) {
		_, isParam := declared[name]
		switch name {
		case "caller":
			m.usesCaller = true
		case "kwargs":
			m.usesKwargs = m.usesKwargs || !isParam
		case "varargs":
			m.usesVarargs = m.usesVarargs || !isParam
		}
	})
	i, ok := declared["caller"]
	m.explicitCall = ok
	if ok && m.usesCaller && i < len(m.params)-len(m.defaults) {
		return errString(`When defining macros or call blocks the special "caller" argument must be omitted or be given a default.`)
	}
	return nil
}
