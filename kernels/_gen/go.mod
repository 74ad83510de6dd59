module github.com/lightninglm/lightning/kernels/_gen

go 1.26.8
