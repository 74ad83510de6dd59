package jinja

// Statement nodes.
type (
	node interface{}

	dataNode   struct{ text string }
	outputNode struct{ e expr }

	ifNode struct {
		tests  []expr   // if and elif conditions
		bodies [][]node // one per test
		els    []node
	}

	forNode struct {
		target    expr // nameExpr or tupleExpr of names
		iter      expr
		cond      expr // inline "if" filter, or nil
		recursive bool
		body, els []node
	}

	setNode struct {
		target expr // nameExpr, nsRefExpr or tupleExpr
		value  expr
	}

	setBlockNode struct {
		target expr
		filter *filterExpr // filters applied to the captured text, innermost base nil; or nil
		body   []node
	}

	macroNode struct {
		m *macroDef
	}

	callBlockNode struct {
		call   *callExpr
		caller *macroDef // the body as the caller() macro
	}

	filterBlockNode struct {
		filter *filterExpr // innermost base is nil: the rendered body
		body   []node
	}

	withNode struct {
		targets []expr
		values  []expr
		body    []node
	}

	// generationNode is transformers' {% generation %} block: its body is
	// rendered unchanged, in its own scope (it is a call block in Python).
	generationNode struct{ body []node }

	loopCtlNode struct{ isBreak bool }
)

// macroDef is a parsed macro (or the body of a call block).
type macroDef struct {
	name         string
	params       []string
	defaults     []expr // defaults for the last len(defaults) params
	body         []node
	usesCaller   bool
	usesKwargs   bool
	usesVarargs  bool
	explicitCall bool // "caller" is a declared parameter
}

// Expression nodes.
type (
	expr interface{}

	constExpr struct{ v Value }
	nameExpr  struct{ name string }
	nsRefExpr struct{ name, attr string }
	listExpr  struct{ items []expr }
	tupleExpr struct{ items []expr }
	dictExpr  struct{ keys, vals []expr }

	getattrExpr struct {
		obj  expr
		attr string
	}
	getitemExpr struct {
		obj, key expr
	}
	sliceExpr struct{ start, stop, step expr } // nil parts are None

	callArgs struct {
		args      []expr
		kwNames   []string
		kwVals    []expr
		dynArgs   expr
		dynKwargs expr
	}
	callExpr struct {
		fn expr
		callArgs
	}
	filterExpr struct {
		base expr // nil inside a filter block or block set
		name string
		callArgs
	}
	testExpr struct {
		base expr
		name string
		callArgs
		soft bool
	}

	negExpr struct{ x expr }
	posExpr struct{ x expr }
	notExpr struct{ x expr }
	binExpr struct {
		op   string // + - * / // % **
		l, r expr
	}
	concatExpr  struct{ items []expr }
	compareExpr struct {
		first expr
		ops   []string // eq ne lt lteq gt gteq in notin
		rest  []expr
	}
	andExpr  struct{ l, r expr }
	orExpr   struct{ l, r expr }
	condExpr struct {
		test, yes, no expr // no may be nil
		line          int
	}
)
