module github.com/lightninglm/lightning

go 1.26.8

require (
	github.com/dlclark/regexp2/v2 v2.13.0
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0
)
