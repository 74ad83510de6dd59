package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the version, the commit it was built from and the Go version (also --version)",
		usage:   "",
		run: func(fs *flag.FlagSet, args []string) error {
			if err := parseFlags(fs, args, false); err != nil {
				return err
			}
			fmt.Fprintln(stdout, versionString())
			return nil
		},
	})
}

// versionString describes the build from its embedded build information:
// the module version ("(devel)" for a local build), the VCS commit and
// whether the tree had local changes, and the Go toolchain.
func versionString() string {
	version, commit := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		var rev, when, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = ", modified"
				}
			}
		}
		if rev != "" {
			commit = fmt.Sprintf(" commit %s (%s%s)", rev, when, dirty)
		}
	}
	return fmt.Sprintf("lightning %s%s %s %s/%s", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
