//go:build !linux || !amd64

package cpu

// amxUsable is false where Lightning does not ask the OS for the AMX state.
func amxUsable() bool { return false }
