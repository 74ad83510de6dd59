// Command lightning runs, serves and inspects MiniMax-01-family models
// (MiniMax-Text-01, MiniMax-M1) on CPUs.
//
// Each subcommand lives in its own file and registers itself in init with
// register, so the dispatcher below never changes when one is added.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string                                      // one line for the command list
	usage   string                                      // argument synopsis after the name, e.g. "-model DIR [flags]"
	help    string                                      // longer text printed by -help before the flags
	run     func(fs *flag.FlagSet, args []string) error // parses args with fs and runs
}

var commands = map[string]*command{}

// stdin and stdout are the command's standard streams; tests replace them.
// (Diagnostics and progress go to the flag set's output, stderr.)
var (
	stdin  io.Reader = os.Stdin
	stdout io.Writer = os.Stdout
)

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("lightning: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// exitError ends a command with exit status code after printing msg (a
// command stopped by a signal exits with 128 + its number, as a shell
// reports it).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// errUsage marks an error that came from bad flags; main prints the usage
// hint and exits with status 2.
var errUsage = errors.New("usage")

// errInterrupted ends a command stopped by Ctrl-C: main exits with status
// 130 (128 + SIGINT), as a shell reports an interrupted program.
var errInterrupted = errors.New("interrupted")

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fs := newFlagSet(c, stderr)
				fs.Usage()
				return 0
			}
		}
		printCommands(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "lightning: unknown command %q\n\n", args[0])
		printCommands(stderr)
		return 2
	}
	fs := newFlagSet(c, stderr)
	err := c.run(fs, args[1:])
	var exit exitError
	switch {
	case errors.As(err, &exit):
		fmt.Fprintf(stderr, "lightning %s: %s\n", c.name, exit.msg)
		return exit.code
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(stderr, "lightning %s: interrupted\n", c.name)
		return 130
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "lightning %s: %v\nRun 'lightning %s -help' for usage.\n", c.name, err, c.name)
		return 2
	default:
		fmt.Fprintf(stderr, "lightning %s: %v\n", c.name, err)
		return 1
	}
}

func newFlagSet(c *command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("lightning "+c.name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: lightning %s %s\n\n", c.name, c.usage)
		if c.help != "" {
			fmt.Fprintln(w, strings.TrimSpace(c.help))
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "Flags:")
		fs.PrintDefaults()
	}
	return fs
}

func printCommands(w io.Writer) {
	fmt.Fprintln(w, "Lightning runs MiniMax-01-family models (MiniMax-Text-01, MiniMax-M1) on CPUs.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: lightning <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'lightning <command> -help' for the flags of one command.")
}

// parseFlags parses args and turns flag errors into errUsage, and rejects
// stray positional arguments unless allowArgs.
//
// The flag package prints the error and the whole usage on a bad flag; that
// output is silenced here, so the user sees the error once (from run) with
// a hint, and the usage only when asking for -help.
func parseFlags(fs *flag.FlagSet, args []string, allowArgs bool) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if !allowArgs && fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return resolveModelFlag(fs) // -model ORG/REPO → the cached snapshot (pull.go)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
