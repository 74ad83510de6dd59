package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/lightninglm/lightning/kernels"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "measure the machine's limits, the kernels against them, the model end to end (or against a plan of workers) and training steps",
		usage:   "-kernels [-json] [-threads N]  |  [-model DIR | -preset NAME] [-prefill N,...] [-decode-ctx N,...] [-long N] [-kv f32|bf16|int8] [-profile] [-json]  |  [-model DIR | -preset NAME] -plan PLAN (-workers ADDR,... | -local-workers N) [-prefill N,...] [-decode-ctx N,...] [-rounds N] [-link-gbps G] [-json]  |  -compare SPEC[:FORMAT],... [-rounds N] [-prefill N,...] [-decode-ctx N,...] [-bw-mb N] [-json]  |  -train [-preset NAME,...] [-seq-len N] [-steps N] [-json]",
		help: `-kernels measures, in one run, the machine's read bandwidth (1 GiB streamed), its fp32 FMA peak,
its VDPBF16PS peak and its AMX-BF16 tile peak on the chosen threads, then times each kernel at
MiniMax shapes and reports it as a ratio to those limits: GEMM GFLOP/s ÷ FMA peak (bf16-dot GEMM
÷ bf16 peak; on a CPU with AMX-BF16 the bf16 GEMMs run on tiles and are quoted against the tile
peak, ÷3 for the exact product, which spends three tile products per multiply-add), decode GEMV
GB/s ÷ read bandwidth. Each kernel runs for about 0.3 s; best and median are shown. The limit a
kernel is compared with is measured again just before and just after it (the higher of the two is
used), so a busy machine slows both sides of a ratio alike; a kernel during which the two differ by
more than 15%, or whose best run beats the limit, is marked as unsteady. It warns when the load average says other work shares the
cores. Needs about 3 GB of memory.

Model mode (-model DIR, -preset NAME, or neither: the built-in model) measures the same machine limits (the best of three probes each), then end-to-end prefill
tok/s at each -prefill length (with the useful-FLOP rate as a ratio to the FMA peak) and decode tok/s
at each -decode-ctx context (with bytes moved per token — active weights, KV cache read, lightning
state read and written — as a ratio to the read bandwidth). -long N adds one chunked prefill of N
tokens reporting ms/token at 8K, 32K, 128K, 512K and 1M and the peak RSS against the memory formula.
It also reports the load time and the first prefill after load (the first -prefill length, run
before anything else) against the same length warm; -lazy-weights loads without prefaulting.
Presets are written once as random BF16 models into the temp folder.

-compare SPEC,SPEC,… times several models, or one model in several weight formats, in one process.
A SPEC is a model folder, a .gguf file, ORG/REPO pulled, a preset or builtin (the built-in model),
optionally with :FORMAT, a format of 'lightning quantize' (q8, q8b32, q4g64, …) to quantize it to at
load as -quant does. Each of -rounds rounds measures the read bandwidth (-bw-mb MiB streamed twice),
then runs every model in turn (A, B, C, then B, C, A, …: each round starts one model later), each
timing a prefill of every -prefill length from a fresh state and -decode-n tokens at every
-decode-ctx context (a state prefilled once to that context, which each round continues). It reports
per model the weight bytes one decoded token reads in their stored formats (a GGUF file's blocks at
their real size: Q8_0 34 B per 32 weights, as q8b32; Q4_K 144 B, Q5_K 176 B, Q6_K 210 B per 256,
used in place), split by format; for each point the median tok/s and the median of the rounds'
paired ratios to the first SPEC, with their range; and for decode the bytes moved per token (weights,
KV cache read, lightning states read and written) × tok/s ÷ the same round's read bandwidth (median).
The models stay loaded together when their weights fit in 70% of the available memory; otherwise each
is loaded in its turn of every round (and its decode states prefilled again). Giving a SPEC twice is an
A/A run: how far its ratio strays from 1 is the noise of the machine. -chunk, -kv, -decode-n,
-threads and -bf16-dot apply to every model.

-profile splits the wall time of each measured prefill and decode point's steps by op class (each
GEMM by the role of its weights, MoE routing, gather and scatter, the lightning inter- and
intra-block parts, softmax attention, norms, activations, residuals, waiting for the kernel pool's
workers) and layer kind, each as a share of the measured step and as a ratio to its own limit
(flops ÷ FMA peak or bytes ÷ read bandwidth, whichever binds); the unattributed remainder is
printed. The lightning core's wall time is split between its two parts in proportion to their CPU
time on all threads. It also counts the kernel pool's dispatches (wake the workers, wait at a
barrier) per step, per layer of each kind and per op.

-ab-dispatch N decodes -decode-n tokens N times at each -decode-ctx with each of two paths, in
alternating order, in the same process: every matrix product with its own pool dispatch (the path
before issue 17) and the products that share an input grouped into one dispatch, with tiny
lightning decodes kept on the calling thread. It reports both medians, the median of the paired
per-round ratios grouped ÷ solo, each path's bytes moved per second ÷ the read bandwidth measured
in the same run, and the pool dispatches per step and per layer of each path.

-ab-prefill N times a prefill of each -prefill length N times with each of two paths, in
alternating order, in the same process. Before: every expert product cut between the threads by
output columns (two grouped dispatches per MoE layer, plus one per product to pack its
activations), a product's last partial row panel computed by the 14-row microkernel. After: all
the experts of a layer in one dispatch cut by tokens (each thread runs W1, W3, SwiGLU and W2 over
its rows), and 4-, 7- and 10-row microkernels for the last panel. It reports both medians with
their useful GFLOP/s ÷ the FMA peak measured in the same run, the median of the paired per-round
ratios, and from one profiled prefill of each path the experts' share of the step (products,
SwiGLU, pool waits) and the pool dispatches per step; with -profile both profiles are printed.
The two paths give bitwise the same results.

-plan PLAN with -workers ADDR,… or -local-workers N (the flags of serve, generate and logits; see
'lightning worker') compares, in one run, the single-process engine with the same model run under the
plan (pp=N, ep=N, pp=N,ep=M, sp=N), on the same prompts: -rounds interleaved rounds of each
measurement, alternating which goes first, and their medians. Each -prefill length is one forward
pass of the whole prompt from a fresh state (as generate and logits run it; sp cuts it into rounds of
N chunks); each -decode-ctx context is -decode-n one-token steps after a prompt of that length. For
each it reports the tok/s of both and the median of the paired ratios plan ÷ single (for decode also
the latency the plan adds per step), the bytes per prompt or generated token that crossed between the
processes as the dist layer counted them (between the hub and the workers, and between workers:
expert exchanges or the sp ring), next to the analytic figure for the same messages (exact, except
ep's expert exchanges, which depend on the router: "~", expected under uniform routing), and the
network share: of the time the hub waited for the workers' replies, the share they did not spend
computing (moving and encoding messages, waiting for expert peers or for the previous rank of the
ring).

For sp=N it also projects the prefill onto N machines like this one joined by -link-gbps links: each
round runs the prefill once more, next to the single process, with the ranks of each chunk round one
after another, so each computes alone as on a machine of its own; the projected time is the hub's own
work + the sum over chunk rounds of the slowest rank's compute + (the ring bytes of the busiest rank
boundary + the hub's bytes) ÷ the link rate, transfers not overlapped with compute and link latency
left out, and the speed-up is the median of the rounds' single-process time ÷ projected time. It also
gives every rank's compute summed against the single process: the work LASP adds. With -local-workers the workers share this
machine's cores, so the measured plan is slower than one process; the projection is the figure to
read. -quant quantizes both at load.

-train times training steps of random fp32 presets (-preset, default tiny,m300): one packed
sequence of -seq-len tokens per step, split into the layers' forward, the LM head with the loss
(forward and backward fused), the layers' backward and the AdamW step; the fastest of -steps after
a warm-up step, with tokens/s and MFU: the step's useful FLOPs (3 × the forward's matrix products,
LM head included, and attention) ÷ the FMA peak measured in the same run. m300 needs about 6 GB
(weights, gradients, AdamW moments).

Examples:
  lightning bench -kernels
  lightning bench -prefill 512 -decode-ctx 0
  lightning bench -preset m300
  lightning bench -preset b2 -prefill 2048 -decode-ctx 0 -json
  lightning random-model -preset b2 -o /tmp/b2
  lightning convert -model /tmp/b2 -to gguf -type q8_0 -o /tmp/b2-q8_0.gguf
  lightning convert -model /tmp/b2 -to gguf -type q4_k_m -o /tmp/b2-q4_k_m.gguf
  lightning bench -compare /tmp/b2:q8,/tmp/b2:q4g64,/tmp/b2-q8_0.gguf,/tmp/b2-q4_k_m.gguf -prefill '' -decode-ctx 0
  lightning bench -preset m300 -prefill 2048 -decode-ctx 0 -profile
  lightning bench -preset m300 -prefill '' -decode-ctx 0 -ab-dispatch 15
  lightning bench -preset m300 -prefill 512,2048 -decode-ctx '' -ab-prefill 9
  lightning bench -preset long -prefill '' -decode-ctx '' -long 1M -chunk 4096
  lightning bench -train -threads 2
  lightning bench -preset long -plan sp=2 -local-workers 2 -prefill 64K -decode-ctx ''
  lightning bench -preset m300 -plan pp=2 -local-workers 2 -prefill 2048 -decode-ctx 0,2048 -rounds 5
  lightning bench -model DIR -plan ep=4 -workers h1:7000,h2:7000,h3:7000,h4:7000 -quant q8 -json`,
		run: runBench,
	})
}

// benchFlags are the flags of "lightning bench"; each mode adds its own.
type benchFlags struct {
	kernels bool
	train   bool
	json    bool
	threads int
}

func runBench(fs *flag.FlagSet, args []string) error {
	var f benchFlags
	fs.BoolVar(&f.kernels, "kernels", false, "benchmark the kernels against the machine's limits")
	fs.BoolVar(&f.train, "train", false, "benchmark training steps (forward, backward, AdamW) of random presets")
	var to trainBenchOptions
	fs.IntVar(&to.seqLen, "seq-len", 512, "train mode: tokens per step (one packed sequence)")
	fs.IntVar(&to.steps, "steps", 3, "train mode: timed steps after one warm-up step")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.IntVar(&f.threads, "threads", 0, "worker threads (0 = one per core)")
	var mo modelBenchOptions
	fs.StringVar(&mo.dir, "model", "", "model mode: benchmark this model folder (default: the built-in model, unless -preset, -kernels or -train)")
	fs.StringVar(&mo.preset, "preset", "", "model mode: benchmark a random-weight preset (tiny, m300, b2, long; written once to the temp folder)")
	prefill := fs.String("prefill", "512,2048,8192,32768", "model mode: prompt lengths to time (comma-separated; empty = none)")
	decodeCtx := fs.String("decode-ctx", "0,8192,32768", "model mode: contexts to time decoding at (comma-separated; empty = none)")
	fs.IntVar(&mo.decodeN, "decode-n", 32, "model mode: tokens decoded per context")
	fs.IntVar(&mo.chunk, "chunk", defaultBatchTokens, "model mode: prefill chunk (tokens per forward step), as run, chat and serve use by default")
	long := fs.String("long", "", "model mode: also run one prefill of this many tokens (e.g. 1M), reporting ms/token at milestones and peak RSS vs the memory formula")
	fs.StringVar(&mo.kvType, "kv", "f32", "model mode: KV cache type: f32, bf16 or int8")
	fs.BoolVar(&mo.profile, "profile", false, "model mode: split each prefill and decode step by op class and layer kind, as shares of the step and ratios to the machine's limits")
	fs.IntVar(&mo.abDispatch, "ab-dispatch", 0, "model mode: rounds of an interleaved A/B at each -decode-ctx: decode with one pool dispatch per matrix product (the path before grouping) against grouped products (0 = off)")
	fs.IntVar(&mo.abPrefill, "ab-prefill", 0, "model mode: rounds of an interleaved A/B at each -prefill length: the prefill before issue 17's expert work (experts cut between threads by output columns, 14-row kernels for partial panels) against after (experts in one dispatch cut by tokens, edge kernels) (0 = off)")
	fs.BoolVar(&mo.lazy, "lazy-weights", false, "model mode: do not prefault the weights at load (the behaviour before prefaulting, to compare the first prefill)")
	fs.BoolVar(&mo.bf16Dot, "bf16-dot", false, "model mode: multiply BF16 attention/expert matrices with the lossy bf16-dot path (activations rounded to bf16: AMX tiles where the CPU has them, else VDPBF16PS)")
	d := addDistFlags(fs, true)
	var po planBenchOptions
	fs.StringVar(&mo.quant, "quant", "", "model mode: quantize the weights at load (q8, q8b32, q4g64, …; see 'lightning quantize')")
	fs.IntVar(&po.rounds, "rounds", 3, "with -plan or -compare: interleaved rounds per measurement (medians, and paired ratios)")
	fs.Float64Var(&po.linkGbps, "link-gbps", 25, "with -plan sp=N: the link rate, in Gbit/s, of the projected speed-up on N machines")
	cf := addCompareFlags(fs, &po.rounds)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	var err error
	if mo.prefill, err = parseCounts("-prefill", *prefill); err != nil {
		return err
	}
	if mo.decodeCtx, err = parseCounts("-decode-ctx", *decodeCtx); err != nil {
		return err
	}
	if l, err := parseCounts("-long", *long); err != nil || len(l) > 1 {
		return fmt.Errorf("%w: -long %q: want one token count such as 131072, 128K or 1M", errUsage, *long)
	} else if len(l) == 1 {
		mo.long = l[0]
	}
	if mo.chunk < 1 || mo.decodeN < 1 {
		return fmt.Errorf("%w: -chunk and -decode-n must be ≥ 1", errUsage)
	}
	mo.json = f.json
	if f.threads < 0 {
		return fmt.Errorf("%w: -threads %d: must be ≥ 0", errUsage, f.threads)
	}
	if cf.given(fs) {
		return runBenchCompare(fs, cf, mo, f.threads)
	}
	if *d.plan != "" || d.enabled() {
		for _, name := range []string{"kernels", "train", "threads", "long", "profile", "ab-dispatch", "ab-prefill", "lazy-weights", "kv", "bf16-dot"} {
			if flagSet(fs, name) {
				return fmt.Errorf("%w: -%s is not available with -plan (it compares the single process with the plan as serve runs them)", errUsage, name)
			}
		}
		if po.rounds < 1 || po.linkGbps <= 0 {
			return fmt.Errorf("%w: -rounds must be ≥ 1 and -link-gbps > 0", errUsage)
		}
		if mo.dir != "" && mo.preset != "" {
			return fmt.Errorf("%w: give -model DIR or -preset NAME, not both", errUsage)
		}
		return benchPlanMode(stdout, fs, mo, po, d)
	}
	if err := d.checkSingle(); err != nil {
		return err
	}
	if flagSet(fs, "rounds") {
		return fmt.Errorf("%w: -rounds needs -plan or -compare", errUsage)
	}
	if flagSet(fs, "link-gbps") {
		return fmt.Errorf("%w: -link-gbps needs -plan", errUsage)
	}
	switch {
	case (f.train || f.kernels) && mo.quant != "":
		return fmt.Errorf("%w: -quant is for model mode (-model, -preset or the built-in model)", errUsage)
	case f.train:
		if f.kernels || mo.dir != "" {
			return fmt.Errorf("%w: -train runs presets only; -kernels and -model are separate runs", errUsage)
		}
		if to.seqLen < 2 || to.steps < 1 {
			return fmt.Errorf("%w: -seq-len must be ≥ 2 and -steps ≥ 1", errUsage)
		}
		if mo.preset == "" {
			mo.preset = "tiny,m300"
		}
		if to.presets, err = parsePresets(mo.preset); err != nil {
			return err
		}
		if f.threads > 0 {
			kernels.SetThreads(f.threads)
		}
		to.json = f.json
		return benchTrain(stdout, fs.Output(), to)
	case f.kernels && (mo.dir != "" || mo.preset != ""):
		return fmt.Errorf("%w: -kernels and model mode (-model/-preset) are separate runs", errUsage)
	case mo.dir != "" && mo.preset != "":
		return fmt.Errorf("%w: give -model DIR or -preset NAME, not both", errUsage)
	case f.kernels:
		return benchKernels(os.Stdout, f.json, f.threads)
	default: // model mode: -model DIR, -preset NAME, or the built-in model
		if f.threads > 0 {
			kernels.SetThreads(f.threads)
		}
		return benchModelMode(stdout, fs.Output(), mo)
	}
}

// kernelsReport is what bench -kernels prints (-json gives it verbatim).
type kernelsReport struct {
	Threads     int            `json:"threads"`
	Cores       int            `json:"cores"`
	LoadAvg     float64        `json:"load_avg_1m"` // -1 when /proc/loadavg is unreadable
	Warnings    []string       `json:"warnings,omitempty"`
	FMAPeak     float64        `json:"fma_peak_gflops"`
	BF16Peak    float64        `json:"bf16dot_peak_gflops"`  // 0 without AVX512_BF16
	AMXPeak     float64        `json:"amx_bf16_peak_gflops"` // TDPBF16PS on 16×16 tiles; 0 without AMX-BF16
	ReadBW      float64        `json:"read_bandwidth_gbs"`
	Kernels     []kernelResult `json:"kernels"`
	ElapsedSecs float64        `json:"elapsed_seconds"`
}

// kernelResult is one kernel at one shape.
type kernelResult struct {
	Name     string  `json:"name"`
	Shape    string  `json:"shape"`
	Runs     int     `json:"runs"`
	BestSec  float64 `json:"best_seconds"`
	MedSec   float64 `json:"median_seconds"`
	GFLOPS   float64 `json:"gflops"`          // at the best time
	GBS      float64 `json:"gbs"`             // bytes of weights (or operands) per best time
	Ratio    float64 `json:"ratio"`           // of Limit, at the best time
	RatioMed float64 `json:"ratio_median"`    // of Limit, at the median time
	Limit    string  `json:"limit,omitempty"` // "fma", "bf16dot", "amx", "amx/3" (the exact bf16 product: three tile products per multiply-add) or "read"
	// The limit measured just before and just after the kernel (GFLOP/s or
	// GB/s); the ratios use the higher one, so they compare the kernel with
	// the machine as it was while the kernel ran.
	LimitBefore float64 `json:"limit_before,omitempty"`
	LimitAfter  float64 `json:"limit_after,omitempty"`
	// Unsteady: the two differ by more than limitDrift (the load changed
	// while the kernel ran), or the best run beat the limit (it caught a
	// quieter moment than the probes did); either way the ratio is
	// unreliable.
	Unsteady bool `json:"unsteady,omitempty"`
}

// limitDrift is how far (as a fraction of the higher one) the limits
// measured before and after a kernel may differ before its ratio is flagged.
// On an idle machine repeated probes agree within a few percent.
const limitDrift = 0.15

// benchKernels runs the kernel mode of bench and writes its report to w.
func benchKernels(w io.Writer, jsonOut bool, threads int) error {
	start := time.Now()
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	old := kernels.Threads()
	kernels.SetThreads(threads)
	defer kernels.SetThreads(old)

	r := kernelsReport{Threads: threads, Cores: runtime.NumCPU(), LoadAvg: loadAvg()}
	if r.LoadAvg > 0.5*float64(r.Cores) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("machine busy: load average %.2f on %d cores; numbers will be low and noisy", r.LoadAvg, r.Cores))
	}
	if !jsonOut {
		for _, s := range r.Warnings {
			fmt.Fprintln(w, "warning:", s)
		}
		fmt.Fprintf(w, "measuring limits on %d thread(s)...\n", threads)
	}

	// One 1 GiB bf16 buffer and one 1 GiB fp32 buffer serve every shape;
	// the bf16 one also is the bandwidth probe's input.
	w16 := make([]uint16, 1<<29)
	w32 := make([]float32, 1<<28)
	fillBench16(w16)
	fillBench32(w32)
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&w16[0])), 2*len(w16))

	r.FMAPeak = best3(func() float64 { return kernels.FMAPeak(300*time.Millisecond) / 1e9 })
	r.BF16Peak = best3(func() float64 { return kernels.BF16DotPeak(300*time.Millisecond) / 1e9 })
	r.AMXPeak = best3(func() float64 { return kernels.AMXPeak(300*time.Millisecond) / 1e9 })
	r.ReadBW = best3(func() float64 { return kernels.ReadBandwidth(raw, 1) / 1e9 })
	// Shorter probes, run around every kernel.
	fmaProbe := func() float64 { return kernels.FMAPeak(100*time.Millisecond) / 1e9 }
	bf16Probe := func() float64 { return kernels.BF16DotPeak(100*time.Millisecond) / 1e9 }
	amxProbe := func() float64 { return kernels.AMXPeak(100*time.Millisecond) / 1e9 }
	amx3Probe := func() float64 { return amxProbe() / 3 }
	// With AMX, MatMulBF16 and MatMulBF16Dot run on tiles from T > 96 on:
	// they are quoted against the tiles' peak instead.
	bf16Limit, bf16Pr, dotLimit, dotPr := "fma", fmaProbe, "bf16dot", bf16Probe
	if r.AMXPeak > 0 {
		bf16Limit, bf16Pr, dotLimit, dotPr = "amx/3", amx3Probe, "amx", amxProbe
	}
	readProbe := func() float64 { return kernels.ReadBandwidth(raw, 1) / 1e9 }

	x := make([]float32, 1024*9216)
	fillBench32(x)
	dst := make([]float32, 1024*65536)
	type gemm struct {
		name       string
		T, in, out int
	}
	gemms := []gemm{
		{"1024³", 1024, 1024, 1024},
		{"m300 expert", 512, 1024, 1024},
		{"b2 expert", 512, 2048, 2048},
		{"kv_proj", 512, 6144, 1024},
		{"output_gate", 512, 6144, 8192},
	}
	for _, g := range gemms {
		shape := fmt.Sprintf("T=%d %d→%d", g.T, g.in, g.out)
		flops := 2 * float64(g.T) * float64(g.in) * float64(g.out)
		r.add("MatMulF32 "+g.name, shape, flops, 4*float64(g.in*g.out), "fma", fmaProbe, func() {
			kernels.MatMulF32(dst, x, w32, g.T, g.in, g.out)
		})
		r.add("MatMulBF16 "+g.name, shape, flops, 2*float64(g.in*g.out), bf16Limit, bf16Pr, func() {
			kernels.MatMulBF16(dst, x, w16, g.T, g.in, g.out)
		})
		if r.BF16Peak > 0 || r.AMXPeak > 0 {
			r.add("MatMulBF16Dot "+g.name, shape, flops, 2*float64(g.in*g.out), dotLimit, dotPr, func() {
				kernels.MatMulBF16Dot(dst, x, w16, g.T, g.in, g.out)
			})
		}
	}
	gemvs := []struct {
		name       string
		f32        bool
		T, in, out int
	}{
		{"MatMulBF16 decode 1 GiB", false, 1, 8192, 65536},
		{"MatMulBF16 decode qkv_proj", false, 1, 6144, 24576},
		{"MatMulBF16 T=8 1 GiB", false, 8, 8192, 65536},
		{"MatMulF32 decode 1 GiB", true, 1, 8192, 32768},
	}
	for _, g := range gemvs {
		shape := fmt.Sprintf("T=%d %d→%d", g.T, g.in, g.out)
		flops := 2 * float64(g.T) * float64(g.in) * float64(g.out)
		if g.f32 {
			r.add(g.name, shape, flops, 4*float64(g.in*g.out), "read", readProbe, func() {
				kernels.MatMulF32(dst, x, w32, g.T, g.in, g.out)
			})
		} else {
			r.add(g.name, shape, flops, 2*float64(g.in*g.out), "read", readProbe, func() {
				kernels.MatMulBF16(dst, x, w16, g.T, g.in, g.out)
			})
		}
	}
	// Lightning attention per head (Sgemm runs on the calling goroutine;
	// 16 heads are spread over the pool as attention does).
	const heads, m, d = 16, 256, 128
	q, s, c := w32[:heads*m*d], w32[heads*m*d:heads*m*d+heads*d*d], dst[:heads*m*m]
	sg := []struct {
		name    string
		m, n, k int
		run     func(h int)
	}{
		{"Sgemm Q·S", m, d, d, func(h int) {
			kernels.Sgemm(false, false, m, d, d, q[h*m*d:], d, s[h*d*d:], d, c[h*m*d:], d, false)
		}},
		{"Sgemm Q·Kᵀ", m, m, d, func(h int) {
			kernels.Sgemm(false, true, m, m, d, q[h*m*d:], d, q[h*m*d:], d, c[h*m*m:], m, false)
		}},
		{"Sgemm Kᵀ·V", d, d, m, func(h int) {
			kernels.Sgemm(true, false, d, d, m, q[h*m*d:], d, q[h*m*d:], d, c[h*d*d:], d, true)
		}},
	}
	for _, g := range sg {
		flops := heads * 2 * float64(g.m*g.n*g.k)
		r.add(g.name, fmt.Sprintf("%d heads × %d×%d×%d", heads, g.m, g.n, g.k), flops, 0, "fma", fmaProbe, func() {
			kernels.ParallelFor(heads, 1, func(lo, hi int) {
				for h := lo; h < hi; h++ {
					g.run(h)
				}
			})
		})
	}
	const n = 9216
	ew := []struct {
		name string
		run  func()
	}{
		{"Exp", func() { kernels.Exp(dst[:n], x[:n]) }},
		{"SiLUMul", func() { kernels.SiLUMul(dst[:n], x[:n], x[n:2*n]) }},
		{"Softmax", func() { copy(dst[:n], x[:n]); kernels.Softmax(dst[:n]) }},
		{"RMSNorm", func() { kernels.RMSNorm(dst[:n], x[:n], x[n:2*n], 1e-5) }},
	}
	for _, e := range ew {
		r.add(e.name, "n=9216, one thread", 0, 8*n, "", nil, e.run)
	}
	r.ElapsedSecs = time.Since(start).Seconds()

	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "threads %d of %d cores, load average %.2f\n", r.Threads, r.Cores, r.LoadAvg)
	fmt.Fprintf(w, "limits: fp32 FMA peak %.1f GFLOP/s, VDPBF16PS peak %.1f GFLOP/s, AMX-BF16 peak %.1f GFLOP/s, read bandwidth %.1f GB/s\n\n",
		r.FMAPeak, r.BF16Peak, r.AMXPeak, r.ReadBW)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\tshape\tbest ms\tmedian ms\tGFLOP/s\tGB/s\t% of limit (best/median)\tlimit before/after\t")
	unsteady := 0
	for _, k := range r.Kernels {
		ratio, around := "-", "-"
		if k.Limit != "" {
			ratio = fmt.Sprintf("%.0f%% / %.0f%% %s", 100*k.Ratio, 100*k.RatioMed, k.Limit)
			around = fmt.Sprintf("%.1f / %.1f", k.LimitBefore, k.LimitAfter)
			if k.Unsteady {
				around += " *"
				unsteady++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%s\t%s\t%s\t%s\t\n", k.Name, k.Shape, 1e3*k.BestSec, 1e3*k.MedSec,
			fmtRate(k.GFLOPS), fmtRate(k.GBS), ratio, around)
	}
	tw.Flush()
	if unsteady > 0 {
		fmt.Fprintf(w, "\n* %d kernel(s): the limit measured before and after differs by more than %.0f%% (the load changed while it ran),\n  or the best run beat the limit (it caught a quieter moment than the probes); the ratio is unreliable.\n",
			unsteady, 100*limitDrift)
	}
	fmt.Fprintf(w, "\n(%.0f s)\n", r.ElapsedSecs)
	return nil
}

// add times run (one warm-up, then repeats for about 0.3 s, at least 3)
// and records it. flops and bytes are per run (0 = not reported); probe
// (nil = no limit) measures the rate, in GFLOP/s or GB/s, the ratio is
// taken against: it runs just before and just after the kernel, and the
// higher result is the limit.
func (r *kernelsReport) add(name, shape string, flops, bytes float64, limitName string, probe func() float64, run func()) {
	var before float64
	if probe != nil {
		before = probe()
	}
	run()
	var times []float64
	for start := time.Now(); len(times) < 3 || time.Since(start) < 300*time.Millisecond; {
		t0 := time.Now()
		run()
		times = append(times, time.Since(t0).Seconds())
	}
	slices.Sort(times)
	k := kernelResult{Name: name, Shape: shape, Runs: len(times), BestSec: times[0], MedSec: times[len(times)/2]}
	k.GFLOPS = flops / k.BestSec / 1e9
	k.GBS = bytes / k.BestSec / 1e9
	if probe != nil {
		k.LimitBefore, k.LimitAfter = before, probe()
	}
	if limit := max(k.LimitBefore, k.LimitAfter); limit > 0 {
		k.Unsteady = min(k.LimitBefore, k.LimitAfter) < (1-limitDrift)*limit
		k.Limit = limitName
		rate, rateMed := k.GFLOPS, flops/k.MedSec/1e9
		if limitName == "read" {
			rate, rateMed = k.GBS, bytes/k.MedSec/1e9
		}
		k.Ratio, k.RatioMed = rate/limit, rateMed/limit
		k.Unsteady = k.Unsteady || k.Ratio > 1
	}
	r.Kernels = append(r.Kernels, k)
}

func fmtRate(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

// best3 returns the largest of three measurements.
func best3(f func() float64) float64 {
	return max(f(), f(), f())
}

// loadAvg returns the 1-minute load average from /proc/loadavg, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	first, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(first, 64)
	if err != nil {
		return -1
	}
	return v
}

// fillBench32 fills s with cheap pseudo-random values in [-1, 1), in
// parallel (a GiB of rand would take seconds).
func fillBench32(s []float32) {
	kernels.ParallelFor(len(s), 1<<16, func(lo, hi int) {
		v := uint32(lo)*2654435761 | 1
		for i := lo; i < hi; i++ {
			v ^= v << 13
			v ^= v >> 17
			v ^= v << 5
			s[i] = float32(int32(v)) / (1 << 31)
		}
	})
}

// fillBench16 fills s with bf16 values in [-1, 1).
func fillBench16(s []uint16) {
	kernels.ParallelFor(len(s), 1<<16, func(lo, hi int) {
		v := uint32(lo)*2654435761 | 1
		for i := lo; i < hi; i++ {
			v ^= v << 13
			v ^= v >> 17
			v ^= v << 5
			s[i] = kernels.RoundBF16(float32(int32(v)) / (1 << 31))
		}
	})
}
