package train

// The two types of train-core's model API (train/model.go on branch
// train-core, issue 12) that the loop uses, declared here only so this branch
// builds and tests before train-core is merged. Delete this file when main
// brings train/model.go.

// Batch is one packed sequence: several documents back to back.
type Batch struct {
	Tokens    []int32
	DocStarts []int // first row of each document, ascending; the first is 0
}

// Loss is the objective of one batch, forward only.
type Loss struct {
	CE          float64 // mean cross-entropy over Predictions
	Aux         float64 // the router's load-balancing loss over all layers and tokens
	Total       float64 // CE + RouterAuxCoef·Aux, what the gradient is of
	Predictions int     // next-token predictions inside documents
}
