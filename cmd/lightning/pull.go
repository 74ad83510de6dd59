package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/lightninglm/lightning/internal/hub"
	"github.com/lightninglm/lightning/model/builtin"
	"github.com/lightninglm/lightning/model/minimax01"
)

func init() {
	register(&command{
		name:    "pull",
		summary: "download a model repository from the Hugging Face Hub into the shared cache",
		usage:   "ORG/REPO [-revision R] [-include GLOB[,GLOB...]] [-o DIR] [-workers N]",
		help: `Downloads the files of a Hugging Face model repository (every file, or those matching -include, a
comma-separated list of globs on the path or the file name) into the Hub's standard cache,
$HF_HUB_CACHE or $HF_HOME/hub (default ~/.cache/huggingface/hub), so files already fetched by other
tools are reused and a second pull is instant. Interrupted downloads resume (HTTP Range); LFS files are
checked against their sha256 and fetched again once if they do not match; several files download at
once. HF_ENDPOINT selects another endpoint; HF_TOKEN authenticates for gated or private repositories.
-o DIR also copies the files into DIR.

Afterwards every command takes -model ORG/REPO (the cached snapshot of main; a repository of GGUF
files resolves to its one .gguf file, or name it: -model ORG/REPO/FILE.gguf).

Examples:
  lightning pull MiniMaxAI/MiniMax-Text-01
  lightning pull ORG/MiniMax-Text-01-GGUF -include '*Q4_K_M*'`,
		run: runPull,
	})
}

func runPull(fs *flag.FlagSet, args []string) error {
	rev := fs.String("revision", "main", "branch, tag or commit")
	include := fs.String("include", "", "comma-separated globs of the files to fetch (default: all)")
	out := fs.String("o", "", "also copy the files into this folder")
	workers := fs.Int("workers", 4, "files downloaded at once")
	var repo string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		repo, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if repo == "" && fs.NArg() == 1 {
		repo = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if !hub.IsRepoID(repo) {
		return fmt.Errorf("%w: give the repository as ORG/REPO, e.g. MiniMaxAI/MiniMax-Text-01", errUsage)
	}
	c := hub.FromEnv()
	c.Workers = *workers
	bar := newProgress(fs.Output(), "pull", "B")
	c.Progress = bar.update
	opt := hub.Options{Revision: *rev, LocalDir: *out}
	for _, g := range strings.Split(*include, ",") {
		if g = strings.TrimSpace(g); g != "" {
			opt.Include = append(opt.Include, g)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dir, err := c.Pull(ctx, repo, opt)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, dir)
	return nil
}

// pulledAs maps a path resolveModelFlag produced back to the ORG/REPO
// argument it came from, for names shown to users.
var pulledAs = map[string]string{}

// servedName is the default model name serve reports: the ORG/REPO a model
// was given as, else the folder or file name without ".gguf".
func servedName(path string) string {
	if path == "" {
		return builtin.Name
	}
	if repo, ok := pulledAs[path]; ok {
		return repo
	}
	return strings.TrimSuffix(filepath.Base(filepath.Clean(path)), ".gguf")
}

// resolveModelFlag rewrites a -model (or -tokenizer) value of the form
// ORG/REPO or ORG/REPO/PATH that is not a local path into the cached
// snapshot of the repository (lightning pull).
func resolveModelFlag(fs *flag.FlagSet) error {
	for _, name := range []string{"model", "tokenizer"} {
		f := fs.Lookup(name)
		if f == nil || f.Value.String() == "" {
			continue
		}
		p, ok, err := resolvePulled(f.Value.String())
		if err != nil {
			return fmt.Errorf("-%s %w", name, err)
		}
		if ok {
			if err := f.Value.Set(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolvePulled maps v, when it is ORG/REPO or ORG/REPO/PATH and not a
// local path, to its place in the cached snapshot of the repository
// (ok false: v is left as it is).
func resolvePulled(v string) (path string, ok bool, err error) {
	if _, err := os.Stat(v); err == nil {
		return "", false, nil
	}
	parts := strings.SplitN(v, "/", 3)
	if len(parts) < 2 || !hub.IsRepoID(parts[0]+"/"+parts[1]) {
		return "", false, nil
	}
	snap, err := hub.FromEnv().Resolve(parts[0]+"/"+parts[1], "")
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", v, err)
	}
	p := snap
	if len(parts) == 3 {
		p = filepath.Join(snap, filepath.FromSlash(parts[2]))
	} else if p, err = pickInSnapshot(snap); err != nil {
		return "", false, fmt.Errorf("%s: %w", v, err)
	}
	pulledAs[p] = v
	return p, true, nil
}

var splitPart = regexp.MustCompile(`-(\d{5})-of-\d{5}\.gguf$`)

// pickInSnapshot returns the snapshot folder when it holds a checkpoint
// (config.json), else its one GGUF model (the first part of a split one).
func pickInSnapshot(snap string) (string, error) {
	if _, err := os.Stat(filepath.Join(snap, "config.json")); err == nil {
		return snap, nil
	}
	var ggufs []string
	filepath.WalkDir(snap, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !minimax01.IsGGUF(p) {
			return nil
		}
		if m := splitPart.FindStringSubmatch(filepath.Base(p)); m != nil && m[1] != "00001" {
			return nil // a later part of a split model
		}
		ggufs = append(ggufs, p)
		return nil
	})
	sort.Strings(ggufs)
	switch len(ggufs) {
	case 0:
		return "", fmt.Errorf("the cached snapshot %s has neither config.json nor a .gguf file", snap)
	case 1:
		return ggufs[0], nil
	}
	var rel []string
	for _, g := range ggufs {
		r, _ := filepath.Rel(snap, g)
		rel = append(rel, r)
	}
	return "", fmt.Errorf("the cached snapshot holds several GGUF models %v; name one as ORG/REPO/FILE.gguf", rel)
}
