// Package train trains MiniMax-01 models: a forward pass that keeps what the
// backward needs, the backward through every layer, the loss (chunked
// cross-entropy plus the router's load-balancing loss) and AdamW, all over
// fp32 parameter, gradient and optimizer slabs laid out by
// minimax01.ParamTable.
package train
