package cpu

import (
	"syscall"

	xcpu "golang.org/x/sys/cpu"
)

// amxUsable reports whether the CPU has AMX-BF16 and Linux lets this
// process use the tile data: the state is off until the process asks for
// it (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+), which this does.
func amxUsable() bool {
	if !xcpu.X86.HasAMXTile || !xcpu.X86.HasAMXBF16 {
		return false
	}
	const archReqXcompPerm, xfeatureXtiledata = 0x1023, 18
	_, _, errno := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtiledata, 0)
	return errno == 0
}
