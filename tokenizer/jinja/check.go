package jinja

// walkExprs calls f on every expression in nodes (recursively, assignment
// targets excluded), with soft
// set while inside an if statement or an inline if expression (where Jinja
// defers unknown filter and test names to run time).
func walkExprs(nodes []node, soft bool, f func(e expr, soft bool)) {
	for _, n := range nodes {
		switch n := n.(type) {
		case *outputNode:
			walkExpr(n.e, soft, f)
		case *ifNode:
			for i, t := range n.tests {
				walkExpr(t, true, f)
				walkExprs(n.bodies[i], true, f)
			}
			walkExprs(n.els, true, f)
		case *forNode:
			walkExpr(n.iter, soft, f)
			walkExpr(n.cond, false, f)
			walkExprs(n.body, false, f)
			walkExprs(n.els, false, f)
		case *setNode:
			walkExpr(n.value, soft, f)
		case *setBlockNode:
			if n.filter != nil {
				walkExpr(n.filter, soft, f)
			}
			walkExprs(n.body, false, f)
		case *macroNode:
			walkMacro(n.m, f)
		case *callBlockNode:
			walkExpr(n.call, soft, f)
			walkMacro(n.caller, f)
		case *filterBlockNode:
			walkExpr(n.filter, soft, f)
			walkExprs(n.body, false, f)
		case *withNode:
			for _, v := range n.values {
				walkExpr(v, false, f)
			}
			walkExprs(n.body, false, f)
		case *generationNode:
			walkExprs(n.body, false, f)
		}
	}
}

func walkMacro(m *macroDef, f func(e expr, soft bool)) {
	for _, d := range m.defaults {
		walkExpr(d, false, f)
	}
	walkExprs(m.body, false, f)
}

func walkExpr(e expr, soft bool, f func(e expr, soft bool)) {
	if e == nil {
		return
	}
	f(e, soft)
	args := func(a *callArgs) {
		for _, x := range a.args {
			walkExpr(x, soft, f)
		}
		for _, x := range a.kwVals {
			walkExpr(x, soft, f)
		}
		walkExpr(a.dynArgs, soft, f)
		walkExpr(a.dynKwargs, soft, f)
	}
	switch e := e.(type) {
	case *listExpr:
		for _, x := range e.items {
			walkExpr(x, soft, f)
		}
	case *tupleExpr:
		for _, x := range e.items {
			walkExpr(x, soft, f)
		}
	case *dictExpr:
		for i := range e.keys {
			walkExpr(e.keys[i], soft, f)
			walkExpr(e.vals[i], soft, f)
		}
	case *getattrExpr:
		walkExpr(e.obj, soft, f)
	case *getitemExpr:
		walkExpr(e.obj, soft, f)
		walkExpr(e.key, soft, f)
	case *sliceExpr:
		walkExpr(e.start, soft, f)
		walkExpr(e.stop, soft, f)
		walkExpr(e.step, soft, f)
	case *callExpr:
		walkExpr(e.fn, soft, f)
		args(&e.callArgs)
	case *filterExpr:
		walkExpr(e.base, soft, f)
		args(&e.callArgs)
	case *testExpr:
		walkExpr(e.base, soft, f)
		args(&e.callArgs)
	case *negExpr:
		walkExpr(e.x, soft, f)
	case *posExpr:
		walkExpr(e.x, soft, f)
	case *notExpr:
		walkExpr(e.x, soft, f)
	case *binExpr:
		walkExpr(e.l, soft, f)
		walkExpr(e.r, soft, f)
	case *concatExpr:
		for _, x := range e.items {
			walkExpr(x, soft, f)
		}
	case *compareExpr:
		walkExpr(e.first, soft, f)
		for _, x := range e.rest {
			walkExpr(x, soft, f)
		}
	case *andExpr:
		walkExpr(e.l, soft, f)
		walkExpr(e.r, soft, f)
	case *orExpr:
		walkExpr(e.l, soft, f)
		walkExpr(e.r, soft, f)
	case *condExpr:
		walkExpr(e.test, true, f)
		walkExpr(e.yes, true, f)
		walkExpr(e.no, true, f)
	}
}

// walkNames calls f with every variable name loaded in nodes (nested macros
// included, as jinja2's find_undeclared does).
func walkNames(nodes []node, f func(string)) {
	walkExprs(nodes, false, func(e expr, _ bool) {
		if n, ok := e.(*nameExpr); ok {
			f(n.name)
		}
	})
}

// checkNames reports unknown filters and tests as Jinja's compiler does:
// a TemplateAssertionError at parse time, unless inside an if statement or
// inline if, where the error is deferred to run time.
func checkNames(body []node) error {
	var err error
	walkExprs(body, false, func(e expr, soft bool) {
		if err != nil {
			return
		}
		switch e := e.(type) {
		case *filterExpr:
			if _, ok := filters[e.name]; !ok {
				if !soft {
					err = &Error{Type: "TemplateAssertionError", Message: "No filter named " + strRepr(e.name) + "."}
				}
			}
		case *testExpr:
			if _, ok := tests[e.name]; !ok {
				if !soft {
					err = &Error{Type: "TemplateAssertionError", Message: "No test named " + strRepr(e.name) + "."}
				}
			}
		}
	})
	return err
}
