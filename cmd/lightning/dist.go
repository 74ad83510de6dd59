package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lightninglm/lightning/dist"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

func init() {
	register(&command{
		name:    "worker",
		summary: "hold a slice of a model for a hub (serve/generate/logits -workers) and serve it over gRPC",
		usage:   "[-model DIR] -plan PLAN -rank R|-lws -listen ADDR [-token T] [-tls-cert F -tls-key F -tls-ca F] [-quant FMT] [-probe-listen ADDR]",
		help: `Loads only the tensors of rank R under PLAN (pp=N: a range of layers; ep=N: a range of each MoE
layer's experts; pp=N,ep=M: both; rank r is stage r/M, expert rank r%M, and expert rank 0 of a stage also
holds its attention; sp=N: every layer, and long prompts are cut into N chunks run at once, passing
lightning states and softmax keys/values to rank (R+1) mod N), reports its memory and serves them until
SIGINT/SIGTERM. docs/distributed.md has the design. The first line on stdout is "... listening on ADDR" (-listen 127.0.0.1:0 picks a free port).

Security: every RPC must carry the shared token (-token or $LIGHTNING_TOKEN; required). With -tls-cert,
-tls-key and -tls-ca the worker speaks mutual TLS and accepts only clients whose certificate the CA signed.
Without TLS it listens only on loopback unless -insecure-listen.

Kubernetes: in a LeaderWorkerSet group, -lws takes the rank from the pod's index ($LWS_WORKER_INDEX − 1;
the leader pod runs 'serve -lws-port PORT'), and -probe-listen serves /healthz and /readyz for the
probes. deploy/kubernetes has the manifests.

Weights: -quant FMT quantizes them at load as one process would; the hub (serve/generate/logits) must be
given the same -quant, and refuses workers whose weights are quantized otherwise.

Examples:
  lightning worker -model DIR -plan pp=2 -rank 1 -listen 127.0.0.1:7001 -token T
  lightning worker -model /models/M -plan pp=4 -quant q8 -lws -listen 0.0.0.0:7000 -probe-listen 0.0.0.0:8081 \
      -tls-cert tls.crt -tls-key tls.key -tls-ca ca.crt`,
		run: runWorker,
	})
}

// distFlags are the flags of the commands that can drive workers.
type distFlags struct {
	plan, workers            *string
	local, lwsPort           *int
	timeout, wait            *time.Duration
	lws                      *bool
	micro                    *int
	token, cert, key, ca     *string
	insecureListen, showPlan *bool
	wire                     *string
}

func addDistFlags(fs *flag.FlagSet, hub bool) *distFlags {
	d := &distFlags{
		plan:  fs.String("plan", "", "how the model is split over workers: pp=N (layers), ep=N (experts), pp=N,ep=M, or sp=N (sequence-parallel prefill, LASP)"),
		token: fs.String("token", "", "shared token of hub and workers (default $"+dist.TokenEnv+")"),
		cert:  fs.String("tls-cert", "", "mutual TLS: this process's certificate (PEM)"),
		key:   fs.String("tls-key", "", "mutual TLS: its private key (PEM)"),
		ca:    fs.String("tls-ca", "", "mutual TLS: the CA that signs every hub and worker certificate (PEM)"),
	}
	if hub {
		d.workers = fs.String("workers", "", "worker addresses in rank order, comma-separated (see 'lightning worker')")
		d.local = fs.Int("local-workers", 0, "start this many worker processes on this machine (loopback) for -plan")
		d.lwsPort = fs.Int("lws-port", 0, "run as the leader of a Kubernetes LeaderWorkerSet group: the workers are the group's other pods, at this port (addresses from $"+lwsLeaderAddressEnv+" and $"+lwsGroupSizeEnv+"; deploy/kubernetes)")
		d.wait = fs.Duration("worker-wait", 0, "at start, wait this long for workers that are not up yet (still loading, or their names not resolving yet) instead of failing at once")
		d.timeout = fs.Duration("worker-timeout", dist.DefaultStepTimeout, "a step whose workers do not answer within this fails")
		d.micro = fs.Int("micro-batches", 0, "cut each forward pass into this many micro-batches so pipeline stages overlap (0 = the number of stages)")
		d.wire = fs.String("wire", "fp32", "type of the hidden states between this hub and its workers: fp32 (exact) or bf16 (half the bytes; each stage's input and output rounded to bf16, which moves the logits: docs/distributed.md)")
	} else {
		d.timeout = fs.Duration("peer-timeout", dist.DefaultStepTimeout/2, "a stage leader's wait for an expert peer (keep below the hub's -worker-timeout)")
		d.lws = fs.Bool("lws", false, "run as a worker of a Kubernetes LeaderWorkerSet group: the rank is $"+lwsWorkerIndexEnv+" − 1 (pod 0 is the hub), and $"+lwsGroupSizeEnv+" must be 1 + the plan's workers (deploy/kubernetes)")
	}
	return d
}

// enabled reports whether the command drives workers.
func (d *distFlags) enabled() bool {
	return d.workers != nil && (*d.workers != "" || *d.local > 0 || *d.lwsPort > 0)
}

func (d *distFlags) security() dist.Security {
	tok := *d.token
	if tok == "" {
		tok = os.Getenv(dist.TokenEnv)
	}
	return dist.Security{Token: tok, CertFile: *d.cert, KeyFile: *d.key, CAFile: *d.ca}
}

// wireType reads -wire: quant.F32 or quant.BF16.
func (d *distFlags) wireType() (quant.Type, error) {
	switch *d.wire {
	case "fp32":
		return quant.F32, nil
	case "bf16":
		return quant.BF16, nil
	}
	return quant.Invalid, fmt.Errorf("%w: -wire %q: want fp32 or bf16", errUsage, *d.wire)
}

// checkSingle refuses the flags that need workers when the command runs
// the model in this process (!d.enabled()).
func (d *distFlags) checkSingle() error {
	if *d.plan != "" {
		return fmt.Errorf("%w: -plan needs -workers, -local-workers or -lws-port", errUsage)
	}
	if *d.wire != "fp32" {
		return fmt.Errorf("%w: -wire %s needs -plan and workers: one process sends no hidden states", errUsage, *d.wire)
	}
	return nil
}

// checkPartable refuses a model that cannot be loaded in parts: a GGUF file
// (minimax01 loads GGUF whole only).
func checkPartable(dir string) error {
	if minimax01.IsGGUF(dir) {
		return fmt.Errorf("%w: %s: a GGUF file cannot be served across processes yet; convert it with 'lightning convert -to hf'", errUsage, dir)
	}
	return nil
}

// openModel loads the model, or with -workers/-local-workers only its ends
// and a hub that drives the workers. The returned function releases it.
// Local workers share the command's output (fs.Output()), which becomes
// safe for concurrent writes.
func openModel(dir string, opt minimax01.Options, d *distFlags, fs *flag.FlagSet) (model.Model, *dist.Model, func(), error) {
	stderr := fs.Output()
	wire, err := d.wireType()
	if err != nil {
		return nil, nil, nil, err
	}
	if !d.enabled() {
		if err := d.checkSingle(); err != nil {
			return nil, nil, nil, err
		}
		m, err := loadModel(dir, opt, stderr)
		if err != nil {
			return nil, nil, nil, err
		}
		return m, nil, func() { m.Close() }, nil
	}
	if n := btoi(*d.workers != "") + btoi(*d.local > 0) + btoi(*d.lwsPort > 0); n > 1 {
		return nil, nil, nil, fmt.Errorf("%w: give one of -workers, -local-workers and -lws-port", errUsage)
	}
	if *d.wait < 0 {
		return nil, nil, nil, fmt.Errorf("%w: -worker-wait %v is negative", errUsage, *d.wait)
	}
	if err := checkPartable(dir); err != nil {
		return nil, nil, nil, err
	}
	plan, err := dist.ParsePlan(*d.plan)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: -plan: %v", errUsage, err)
	}
	sec := d.security()
	var stop func()
	var addrs []string
	if *d.local > 0 {
		if *d.local != plan.Workers() {
			return nil, nil, nil, fmt.Errorf("%w: -local-workers %d, but plan %s has %d workers", errUsage, *d.local, plan, plan.Workers())
		}
		if sec.Token == "" { // the local workers inherit a fresh token
			var b [16]byte
			rand.Read(b[:])
			sec.Token = hex.EncodeToString(b[:])
		}
		lw := &lockedWriter{w: stderr} // the workers' stderr and ours share it
		stderr = lw
		fs.SetOutput(lw)
		addrs, stop, err = startLocalWorkers(dir, plan, opt, sec, *d.timeout/2, lw)
		if err != nil {
			return nil, nil, nil, err
		}
	} else {
		if *d.lwsPort > 0 {
			if addrs, err = lwsWorkerAddrs(os.Getenv, *d.lwsPort); err != nil {
				return nil, nil, nil, fmt.Errorf("%w: -lws-port: %v", errUsage, err)
			}
			if len(addrs) != plan.Workers() {
				return nil, nil, nil, fmt.Errorf("%w: the LeaderWorkerSet group has %d workers ($%s %s), but plan %s needs %d: set the group's size to %d",
					errUsage, len(addrs), lwsGroupSizeEnv, os.Getenv(lwsGroupSizeEnv), plan, plan.Workers(), plan.Workers()+1)
			}
		} else {
			addrs = strings.Split(*d.workers, ",")
		}
		stop = func() {}
	}
	hubOpt := opt
	hubOpt.Part = &dist.HubPart
	ends, err := loadModel(dir, hubOpt, stderr)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	if *d.wait > 0 {
		fmt.Fprintf(stderr, "lightning: waiting up to %v for %d workers: %s\n", *d.wait, len(addrs), strings.Join(addrs, ", "))
	}
	hub, err := dist.DialWait(ends, plan, addrs, sec, *d.wait)
	if err != nil {
		ends.Close()
		stop()
		return nil, nil, nil, err
	}
	hub.StepTimeout, hub.Wire = *d.timeout, wire
	if *d.micro > 0 {
		hub.MicroBatches = *d.micro
	}
	return hub, hub, func() { hub.Close(); ends.Close(); stop() }, nil
}

// localWorkerTimeout bounds the start of one local worker (load + listen).
const localWorkerTimeout = 2 * time.Minute

// startLocalWorkers starts the workers of plan as child processes of this
// executable on loopback ports, with the token in their environment, and
// returns their addresses and a function that stops them.
func startLocalWorkers(dir string, plan dist.Plan, opt minimax01.Options, sec dist.Security, peerTimeout time.Duration, stderr io.Writer) ([]string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				p.Process.Kill()
				<-done
			}
		}
	}
	var addrs []string
	for r := 0; r < plan.Workers(); r++ {
		args := []string{"worker", "-model", dir, "-plan", plan.String(), "-rank", strconv.Itoa(r), "-listen", "127.0.0.1:0",
			"-batch-tokens", strconv.Itoa(max(opt.MaxBatchTokens, 0)), "-peer-timeout", peerTimeout.String()}
		if sec.TLS() {
			args = append(args, "-tls-cert", sec.CertFile, "-tls-key", sec.KeyFile, "-tls-ca", sec.CAFile)
		}
		if q := opt.Quant; q != nil { // the workers quantize their layers as this process does (-quant FORMAT)
			if *q != minimax01.DefaultQuantSpec(q.Format) {
				stop()
				return nil, nil, fmt.Errorf("local workers take -quant FORMAT with the default head, embedding and scale types, not %s", q)
			}
			args = append(args, "-quant", q.Format.String())
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), dist.TokenEnv+"="+sec.Token)
		cmd.Stderr = stderr
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("start worker %d: %w", r, err)
		}
		procs = append(procs, cmd)
		addr := make(chan string, 1) // closed if the worker's stdout ends first (it exited)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if _, a, ok := strings.Cut(sc.Text(), "listening on "); ok {
					addr <- a
					break
				}
			}
			close(addr)
			io.Copy(io.Discard, out)
		}()
		select {
		case a, ok := <-addr:
			if !ok {
				stop()
				return nil, nil, fmt.Errorf("worker %d exited before it listened (its errors are above)", r)
			}
			addrs = append(addrs, a)
		case <-time.After(localWorkerTimeout):
			stop()
			return nil, nil, fmt.Errorf("worker %d did not start listening within %v", r, localWorkerTimeout)
		}
	}
	return addrs, stop, nil
}

func runWorker(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", modelFlagHelp)
	rank := fs.Int("rank", -1, "this worker's rank in the plan (0-based)")
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on (port 0 picks a free one)")
	batchTokens := fs.Int("batch-tokens", 512, "most tokens per step (the hub uses the smallest of all processes)")
	quantFmt := fs.String("quant", "", "quantize the weights at load (q8, q8b32, q4g64, …; see 'lightning quantize'); the hub must have the same -quant")
	probe := fs.String("probe-listen", "", "also serve unauthenticated HTTP probes here: /healthz (alive) and /readyz (200 once serving, 503 while loading), for Kubernetes")
	d := addDistFlags(fs, false)
	d.insecureListen = fs.Bool("insecure-listen", false, "allow a plaintext listener on a non-loopback address")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	var ready atomic.Bool
	if *probe != "" {
		pl, err := net.Listen("tcp", *probe)
		if err != nil {
			return err
		}
		defer pl.Close()
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !ready.Load() {
				http.Error(w, "loading", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ready\n")
		})
		go (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(pl)
		fmt.Fprintf(stdout, "lightning worker: probes on %s\n", pl.Addr())
	}
	plan, err := dist.ParsePlan(*d.plan)
	if err != nil {
		return fmt.Errorf("%w: -plan: %v", errUsage, err)
	}
	if *d.lws {
		if flagSet(fs, "rank") {
			return fmt.Errorf("%w: give -rank or -lws, not both", errUsage)
		}
		if *rank, err = lwsRank(os.Getenv, plan.Workers()); err != nil {
			return fmt.Errorf("%w: -lws: %v", errUsage, err)
		}
	}
	sec := d.security()
	if err := sec.Check(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := sec.CheckListen(*listen, *d.insecureListen); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := checkPartable(*dir); err != nil {
		return err
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	part, err := plan.Part(cfg, *rank)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	spec, err := quantOption(*quantFmt)
	if err != nil {
		return err
	}
	start := time.Now()
	m, err := loadModel(*dir, minimax01.Options{Part: &part, MaxBatchTokens: *batchTokens, Quant: spec}, fs.Output())
	if err != nil {
		return err
	}
	defer m.Close()
	w, err := dist.NewWorker(m, plan, *rank, sec)
	if err != nil {
		return err
	}
	w.PeerTimeout = *d.timeout
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	state, kv := dist.StateMemory(cfg, part)
	fmt.Fprintf(fs.Output(), "lightning worker: rank %d of %s holds %s: weights %s (%d B), state %s per sequence + %s per token; loaded in %v\n",
		*rank, plan, part, human(float64(m.Info().WeightBytes), "B"), m.Info().WeightBytes,
		human(float64(state), "B"), human(float64(kv), "B"), time.Since(start).Round(time.Millisecond))
	// Ready before the line that announces it: the model is loaded and the
	// listener bound (connections wait in its backlog until Serve runs).
	ready.Store(true)
	fmt.Fprintf(stdout, "lightning worker: rank %d listening on %s\n", *rank, lis.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	served := make(chan error, 1)
	go func() { served <- w.Serve(lis) }()
	select {
	case err := <-served:
		return err
	case <-sig:
		w.Stop()
		return nil
	}
}

// forwardErr runs f and turns a panic with an error value from a hub
// (a worker failed) into an error.
func forwardErr(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	f()
	return nil
}

// lockedWriter serialises writes from several goroutines (the local
// workers' stderr copiers and the command itself).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The environment that the LeaderWorkerSet controller (Kubernetes,
// sigs.k8s.io/lws) sets in every container of a group: a group is one
// leader pod NAME-G and workers NAME-G-1 … NAME-G-(size−1), all under one
// headless-service subdomain.
const (
	lwsLeaderAddressEnv = "LWS_LEADER_ADDRESS" // the leader pod's DNS name: NAME-G.SUBDOMAIN.NAMESPACE
	lwsGroupSizeEnv     = "LWS_GROUP_SIZE"     // pods in the group, the leader included
	lwsWorkerIndexEnv   = "LWS_WORKER_INDEX"   // this pod's index in the group: 0 for the leader
)

// lwsGroupSize reads the group size from getenv.
func lwsGroupSize(getenv func(string) string) (int, error) {
	v := getenv(lwsGroupSizeEnv)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("$%s is %q, want the number of pods in the group (is this a LeaderWorkerSet pod?)", lwsGroupSizeEnv, v)
	}
	return n, nil
}

// lwsWorkerAddrs returns the addresses of the worker pods of this
// LeaderWorkerSet group at port, in index order: worker i of the leader
// NAME-G.REST is NAME-G-i.REST.
func lwsWorkerAddrs(getenv func(string) string, port int) ([]string, error) {
	leader := getenv(lwsLeaderAddressEnv)
	pod, rest, ok := strings.Cut(leader, ".")
	if !ok || pod == "" || rest == "" {
		return nil, fmt.Errorf("$%s is %q, want the leader pod's DNS name POD.SUBDOMAIN.NAMESPACE (is this a LeaderWorkerSet pod?)", lwsLeaderAddressEnv, leader)
	}
	size, err := lwsGroupSize(getenv)
	if err != nil {
		return nil, err
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("port %d outside 1…65535", port)
	}
	addrs := make([]string, size-1)
	for i := range addrs {
		addrs[i] = net.JoinHostPort(fmt.Sprintf("%s-%d.%s", pod, i+1, rest), strconv.Itoa(port))
	}
	return addrs, nil
}

// lwsRank returns a worker pod's rank in a plan of the given number of
// workers: its index in the group less one (index 0 is the hub), after
// checking that the group has one pod per worker plus the hub.
func lwsRank(getenv func(string) string, workers int) (int, error) {
	size, err := lwsGroupSize(getenv)
	if err != nil {
		return 0, err
	}
	if size != workers+1 {
		return 0, fmt.Errorf("the group has %d pods ($%s), the plan %d workers: set the LeaderWorkerSet's size to %d (the hub and the workers)", size, lwsGroupSizeEnv, workers, workers+1)
	}
	v := getenv(lwsWorkerIndexEnv)
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 || i >= size {
		return 0, fmt.Errorf("$%s is %q, want 0…%d", lwsWorkerIndexEnv, v, size-1)
	}
	if i == 0 {
		return 0, fmt.Errorf("$%s is 0: that is the group's leader, which runs the hub (serve -lws-port), not a worker", lwsWorkerIndexEnv)
	}
	return i - 1, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
