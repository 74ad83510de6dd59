package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/lightninglm/lightning/dist"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
)

// bench -plan: the single-process engine against the same model served by
// workers (package dist) under a plan, in one run, on the same prompts.

// planBenchOptions are the flags bench adds for -plan.
type planBenchOptions struct {
	rounds   int     // interleaved rounds of every measurement
	linkGbps float64 // the link of the sp projection, Gbit/s
}

// planReport is what bench -plan prints (-json gives it verbatim).
type planReport struct {
	Model       string        `json:"model"`
	Plan        string        `json:"plan"`
	Workers     int           `json:"workers"`
	Local       bool          `json:"local_workers"` // started by this run on loopback
	StepTokens  int           `json:"step_tokens"`   // rows per step message (and the single process's step)
	Threads     int           `json:"threads"`
	LoadAvg     float64       `json:"load_avg_1m"`
	Rounds      int           `json:"rounds"`
	Warnings    []string      `json:"warnings,omitempty"`
	Prefill     []planPrefill `json:"prefill,omitempty"`
	Decode      []planDecode  `json:"decode,omitempty"`
	ElapsedSecs float64       `json:"elapsed_seconds"`
}

// planPrefill is one prompt length: one Forward of the whole prompt from a
// fresh state, as generate and logits run it.
type planPrefill struct {
	Tokens          int       `json:"tokens"`
	SingleTokPerSec float64   `json:"single_tok_per_s"` // medians over the rounds
	DistTokPerSec   float64   `json:"dist_tok_per_s"`
	Ratio           float64   `json:"ratio_dist_to_single"` // median of the rounds' paired ratios
	RatioMin        float64   `json:"ratio_min"`
	RatioMax        float64   `json:"ratio_max"`
	Bytes           planBytes `json:"bytes_per_prompt_token"`
	NetworkShare    float64   `json:"network_share"` // median over the rounds (networkShare)
	// Projection is the sp=N speed-up on N machines (nil for other plans).
	Projection *spProjection `json:"projection,omitempty"`
}

// planDecode is one decode context: -decode-n steps of one token after a
// prompt of that length.
type planDecode struct {
	Context         int       `json:"context"`
	Tokens          int       `json:"tokens_per_round"`
	SingleTokPerSec float64   `json:"single_tok_per_s"`
	DistTokPerSec   float64   `json:"dist_tok_per_s"`
	Ratio           float64   `json:"ratio_dist_to_single"`
	AddedMsPerStep  float64   `json:"added_ms_per_step"` // median of the rounds' paired differences
	Bytes           planBytes `json:"bytes_per_generated_token"`
	NetworkShare    float64   `json:"network_share"`
}

// planBytes is the traffic of a measurement per token: as the dist
// counters measured it (the last round) and as Model.Traffic predicts it
// for the same messages.
type planBytes struct {
	Measured      float64 `json:"measured"`
	HubMeasured   float64 `json:"hub_measured"`   // hub ↔ workers
	PeersMeasured float64 `json:"peers_measured"` // between workers: expert exchanges or the sp ring
	Analytic      float64 `json:"analytic"`
	HubAnalytic   float64 `json:"hub_analytic"`
	PeersAnalytic float64 `json:"peers_analytic"`
	Exact         bool    `json:"analytic_exact"` // false: ep's expert exchanges, expected under uniform routing
	StateOps      int64   `json:"state_ops"`      // state operations the messages carried (in the analytic figure)
}

// spProjection projects an sp=N prefill onto N machines like this one
// joined by links of LinkGbps (projectionModel says how).
type spProjection struct {
	Machines      int     `json:"machines"`
	LinkGbps      float64 `json:"link_gbps"`
	SingleSeconds float64 `json:"single_seconds"` // median single-process prefill
	// Medians over the rounds of the prefill run with each rank alone
	// (dist.Model.SerialRounds): summed over the chunk rounds, the slowest
	// rank's compute; every rank's compute, also as the median of its
	// paired ratios to the single process (the work LASP adds); and the
	// hub's own work (embedding, LM head, packing: the wall time less its
	// waits).
	SlowestRankSeconds float64 `json:"slowest_rank_seconds"`
	AllRanksSeconds    float64 `json:"all_ranks_seconds"`
	AllRanksRatio      float64 `json:"all_ranks_to_single"`
	HubSeconds         float64 `json:"hub_seconds"`
	// Bytes: summed over the chunk rounds, the ring bytes of the busiest
	// rank boundary; and everything between the hub and the ranks.
	RingBytes       uint64  `json:"ring_busiest_boundary_bytes"`
	HubBytes        uint64  `json:"hub_bytes"`
	TransferSeconds float64 `json:"transfer_seconds"`
	// The projected time (median over the rounds) and the speed-up: the
	// median of the rounds' paired single-process time ÷ projected time.
	ProjectedSeconds float64 `json:"projected_seconds"`
	SpeedUp          float64 `json:"speed_up"`
	SpeedUpMin       float64 `json:"speed_up_min"`
	SpeedUpMax       float64 `json:"speed_up_max"`
	Model            string  `json:"model"`
}

// projectionModel states how spProjection is computed.
const projectionModel = "projected time = hub's own work + Σ over chunk rounds of the slowest rank's compute (each rank measured alone, as on a machine of its own) + (ring bytes of the busiest rank boundary + hub bytes) ÷ link rate; transfers are not overlapped with compute and link latency is left out"

// benchPlanMode runs bench -plan and prints the report.
func benchPlanMode(w io.Writer, fs *flag.FlagSet, o modelBenchOptions, po planBenchOptions, d *distFlags) error {
	start := time.Now()
	dir := o.dir
	if o.preset != "" {
		var err error
		if dir, err = presetModelDir(o.preset, fs.Output()); err != nil {
			return err
		}
	}
	q, err := quantOption(o.quant)
	if err != nil {
		return err
	}
	opt := minimax01.Options{MaxBatchTokens: o.chunk, Quant: q}
	dm, hub, closeDist, err := openModel(dir, opt, d, fs)
	if err != nil {
		return err
	}
	defer closeDist()
	stderr := fs.Output() // shared with local workers now
	opt.MaxBatchTokens = hub.MaxBatchTokens()
	single, err := loadModel(dir, opt, stderr)
	if err != nil {
		return err
	}
	defer single.Close()
	plan := hub.Plan()
	r := &planReport{Model: modelLabel(dir), Plan: plan.String(), Workers: plan.Workers(), Local: *d.local > 0,
		StepTokens: hub.MaxBatchTokens(), Threads: kernels.Threads(), LoadAvg: loadAvg(), Rounds: po.rounds}
	if r.LoadAvg > 0.5*float64(kernels.Threads()) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("load average %.2f on %d threads: other work shares the machine, times are noisy", r.LoadAvg, kernels.Threads()))
	}
	if r.Local {
		r.Warnings = append(r.Warnings, "the workers share this machine's cores: expect the distributed run to be slower, not faster")
	}
	V := single.Config.Vocab
	logits := make([]float32, V)
	// distRun runs one Forward of toks on the hub from st and returns its
	// time and the dist counters for it.
	distRun := func(st model.State, toks []int32) (time.Duration, dist.Stats, error) {
		hub.Stats()
		t0 := time.Now()
		err := forwardErr(func() { dm.Forward([]model.Seq{{State: st, Tokens: toks, Logits: model.LogitsLast}}, logits) })
		return time.Since(t0), hub.Stats(), err
	}
	for _, n := range o.prefill {
		p, err := benchPlanPrefill(single, dm, hub, distRun, n, po, stderr)
		if err != nil {
			return err
		}
		r.Prefill = append(r.Prefill, p)
	}
	for _, ctx := range o.decodeCtx {
		dp, err := benchPlanDecode(single, dm, hub, distRun, ctx, o.decodeN, po, stderr)
		if err != nil {
			return err
		}
		r.Decode = append(r.Decode, dp)
	}
	r.ElapsedSecs = time.Since(start).Seconds()
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printPlanReport(w, r)
	return nil
}

// distRunner runs one Forward on the hub (benchPlanMode's distRun).
type distRunner func(st model.State, toks []int32) (time.Duration, dist.Stats, error)

// benchPlanPrefill times a prompt of n tokens po.rounds times in each
// process, alternating which goes first, and under sp once more per round,
// next to the single process, with the ranks alone for the projection.
func benchPlanPrefill(single *minimax01.Model, dm model.Model, hub *dist.Model, distRun distRunner, n int, po planBenchOptions, stderr io.Writer) (planPrefill, error) {
	V := single.Config.Vocab
	prompt := benchPrompt(n, V)
	logits := make([]float32, V)
	pp := planPrefill{Tokens: n}
	var singleSec, distSec, ratios, shares []float64
	var last dist.Stats
	sp := hub.Plan().SP > 1
	var pr *spProjection
	var hubSec, slowest, all, allRatios, projected, speedUps []float64
	if sp {
		pr = &spProjection{Machines: hub.Plan().SP, LinkGbps: po.linkGbps, Model: projectionModel}
	}
	for round := range po.rounds {
		fmt.Fprintf(stderr, "prefill %d tokens: round %d of %d...\n", n, round+1, po.rounds)
		var ts, td float64
		runSingle := func() error {
			st := single.NewStateCap(n)
			t0 := time.Now()
			single.Forward([]model.Seq{{State: st, Tokens: prompt, Logits: model.LogitsLast}}, logits)
			ts = time.Since(t0).Seconds()
			return nil
		}
		runDist := func() error {
			el, s, err := distRun(dm.NewState(), prompt)
			td, last = el.Seconds(), s
			shares = append(shares, networkShare(s))
			return err
		}
		var serialEl time.Duration
		var serial dist.Stats
		runSerial := func() error {
			if !sp {
				return nil
			}
			hub.SerialRounds = true
			defer func() { hub.SerialRounds = false }()
			var err error
			serialEl, serial, err = distRun(dm.NewState(), prompt)
			return err
		}
		order := []func() error{runSingle, runSerial, runDist} // the serial run next to the single one
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, f := range order {
			if err := f(); err != nil {
				return pp, err
			}
		}
		singleSec, distSec = append(singleSec, ts), append(distSec, td)
		ratios = append(ratios, ts/td)
		if sp {
			pr.RingBytes, pr.HubBytes = serial.RoundRing, serial.HubSent+serial.HubRecv
			pr.TransferSeconds = float64(pr.RingBytes+pr.HubBytes) * 8 / (po.linkGbps * 1e9)
			h, sl := (serialEl - serial.Wait).Seconds(), serial.RoundCompute.Seconds()
			proj := h + sl + pr.TransferSeconds
			hubSec, slowest, projected = append(hubSec, h), append(slowest, sl), append(projected, proj)
			all, allRatios = append(all, serial.Compute.Seconds()), append(allRatios, serial.Compute.Seconds()/ts)
			speedUps = append(speedUps, ts/proj)
		}
	}
	pp.SingleTokPerSec, pp.DistTokPerSec = float64(n)/median(slices.Clone(singleSec)), float64(n)/median(slices.Clone(distSec))
	pp.Ratio, pp.RatioMin, pp.RatioMax = median(slices.Clone(ratios)), slices.Min(ratios), slices.Max(ratios)
	pp.NetworkShare = median(shares)
	pp.Bytes = trafficPerToken(last, hub.Traffic(0, n, int(last.Ops)), n)
	if sp {
		pr.SingleSeconds, pr.SlowestRankSeconds, pr.AllRanksSeconds = median(singleSec), median(slowest), median(all)
		pr.AllRanksRatio, pr.HubSeconds, pr.ProjectedSeconds = median(allRatios), median(hubSec), median(projected)
		pr.SpeedUp, pr.SpeedUpMin, pr.SpeedUpMax = median(slices.Clone(speedUps)), slices.Min(speedUps), slices.Max(speedUps)
		pp.Projection = pr
	}
	return pp, nil
}

// benchPlanDecode decodes decodeN tokens po.rounds times in each process
// at context ctx, alternating which goes first.
func benchPlanDecode(single *minimax01.Model, dm model.Model, hub *dist.Model, distRun distRunner, ctx, decodeN int, po planBenchOptions, stderr io.Writer) (planDecode, error) {
	V := single.Config.Vocab
	logits := make([]float32, V)
	dp := planDecode{Context: ctx, Tokens: decodeN}
	fmt.Fprintf(stderr, "decode at context %d: prefill...\n", ctx)
	prompt := benchPrompt(max(ctx, 1), V)
	tok := []int32{1}
	ss := single.NewStateCap(len(prompt) + (po.rounds*decodeN + 1))
	single.Forward([]model.Seq{{State: ss, Tokens: prompt, Logits: model.LogitsLast}}, logits)
	single.Forward([]model.Seq{{State: ss, Tokens: tok, Logits: model.LogitsLast}}, logits) // warm up
	ds := dm.NewState()
	for _, toks := range [][]int32{prompt, tok} {
		if _, _, err := distRun(ds, toks); err != nil {
			return dp, err
		}
	}
	var singleTps, distTps, ratios, added, shares []float64
	var last dist.Stats
	var analytic dist.Traffic
	for round := range po.rounds {
		fmt.Fprintf(stderr, "decode at context %d: round %d of %d...\n", ctx, round+1, po.rounds)
		var ts, td float64 // seconds per step
		for k := range 2 {
			if (k+round)%2 == 0 {
				t0 := time.Now()
				for range decodeN {
					single.Forward([]model.Seq{{State: ss, Tokens: tok, Logits: model.LogitsLast}}, logits)
				}
				ts = time.Since(t0).Seconds() / float64(decodeN)
				continue
			}
			var sum dist.Stats
			analytic = dist.Traffic{}
			var el time.Duration
			for range decodeN {
				pos := ds.Len()
				e, s, err := distRun(ds, tok)
				if err != nil {
					return dp, err
				}
				el += e
				sum.Add(s)
				a := hub.Traffic(pos, 1, int(s.Ops))
				analytic.HubSent += a.HubSent
				analytic.HubRecv += a.HubRecv
				analytic.Peers += a.Peers
				analytic.Exact = a.Exact
			}
			td, last = el.Seconds()/float64(decodeN), sum
			shares = append(shares, networkShare(sum))
		}
		singleTps, distTps = append(singleTps, 1/ts), append(distTps, 1/td)
		ratios = append(ratios, ts/td)
		added = append(added, 1000*(td-ts))
	}
	dp.SingleTokPerSec, dp.DistTokPerSec, dp.Ratio = median(singleTps), median(distTps), median(ratios)
	dp.AddedMsPerStep, dp.NetworkShare = median(added), median(shares)
	dp.Bytes = trafficPerToken(last, analytic, decodeN)
	return dp, nil
}

// benchPrompt is the prompt of n tokens that bench feeds: ids spread over
// the vocabulary of V tokens.
func benchPrompt(n, V int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32((i*7919 + 13) % V)
	}
	return p
}

// networkShare is the share of the time the hub waited for the workers'
// replies that they did not spend computing: moving and encoding the
// messages, and waiting for expert peers or the ring.
func networkShare(s dist.Stats) float64 {
	if s.Wait <= 0 {
		return 0
	}
	return 1 - s.Compute.Seconds()/s.Wait.Seconds()
}

// trafficPerToken divides measured and analytic traffic by tokens.
func trafficPerToken(s dist.Stats, a dist.Traffic, tokens int) planBytes {
	n := float64(tokens)
	return planBytes{Measured: float64(s.Total()) / n, HubMeasured: float64(s.HubSent+s.HubRecv) / n,
		PeersMeasured: float64(s.PeersSent+s.PeersRecv) / n, Analytic: a.Total() / n,
		HubAnalytic: float64(a.HubSent+a.HubRecv) / n, PeersAnalytic: a.Peers / n, Exact: a.Exact, StateOps: s.Ops}
}

func printPlanReport(w io.Writer, r *planReport) {
	where := "given by -workers"
	if r.Local {
		where = "started here, on loopback"
	}
	fmt.Fprintf(w, "plan %s of model %s: %d workers (%s); steps of %d tokens; %d threads; load average %.2f\n",
		r.Plan, r.Model, r.Workers, where, r.StepTokens, r.Threads, r.LoadAvg)
	fmt.Fprintf(w, "each figure: the median of %d interleaved rounds of the single process and the plan on the same prompts\n", r.Rounds)
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", x)
	}
	approx := func(b planBytes) string {
		if b.Exact {
			return ""
		}
		return "~"
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Prefill) > 0 {
		fmt.Fprintf(tw, "prefill tokens\tsingle tok/s\t%s tok/s\tratio\tB/token\t(hub + peers)\tanalytic\t(hub + peers)\tnetwork\t\n", r.Plan)
		for _, p := range r.Prefill {
			b := p.Bytes
			fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.3f\t%.1f\t(%.1f + %.1f)\t%s%.1f\t(%.1f + %.1f)\t%.0f%%\t\n", p.Tokens, p.SingleTokPerSec, p.DistTokPerSec, p.Ratio,
				b.Measured, b.HubMeasured, b.PeersMeasured, approx(b), b.Analytic, b.HubAnalytic, b.PeersAnalytic, 100*p.NetworkShare)
		}
		fmt.Fprintln(tw)
	}
	if len(r.Decode) > 0 {
		fmt.Fprintf(tw, "decode context\tsingle tok/s\t%s tok/s\tratio\tadded ms/step\tB/token\t(hub + peers)\tanalytic\tnetwork\t\n", r.Plan)
		for _, d := range r.Decode {
			b := d.Bytes
			fmt.Fprintf(tw, "%d\t%.2f\t%.2f\t%.3f\t%+.3f\t%.1f\t(%.1f + %.1f)\t%s%.1f\t%.0f%%\t\n", d.Context, d.SingleTokPerSec, d.DistTokPerSec, d.Ratio,
				d.AddedMsPerStep, b.Measured, b.HubMeasured, b.PeersMeasured, approx(b), b.Analytic, 100*d.NetworkShare)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nratio: the plan's tok/s ÷ the single process's; network: the share of the hub's wait for workers not spent computing;")
	fmt.Fprintln(w, "~: expected under uniform routing (expert exchanges depend on the router)")
	for _, p := range r.Prefill {
		pr := p.Projection
		if pr == nil {
			continue
		}
		fmt.Fprintf(w, "\nprojected, %d tokens on %d machines at %g Gb/s: single process %.3f s; ranks alone: slowest %.3f s (all ranks %.3f s = %.2f× the single process), hub %.3f s;\n",
			p.Tokens, pr.Machines, pr.LinkGbps, pr.SingleSeconds, pr.SlowestRankSeconds, pr.AllRanksSeconds, pr.AllRanksRatio, pr.HubSeconds)
		fmt.Fprintf(w, "  transfer %s on the busiest ring boundary + %s hub, %.3f s → %.3f s: speed-up %.2f× (rounds %.2f … %.2f)\n",
			human(float64(pr.RingBytes), "B"), human(float64(pr.HubBytes), "B"), pr.TransferSeconds, pr.ProjectedSeconds, pr.SpeedUp, pr.SpeedUpMin, pr.SpeedUpMax)
	}
	if len(r.Prefill) > 0 && r.Prefill[0].Projection != nil {
		fmt.Fprintf(w, "  (%s)\n", projectionModel)
	}
	fmt.Fprintf(w, "\n(%.0f s)\n", r.ElapsedSecs)
}
