package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lightninglm/lightning/model"
)

// metrics are the server's own figures; engine figures are read at scrape
// time. Everything is written in the Prometheus text format (version 0.0.4)
// without a client library.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]int64 // (path, status) → count

	ttft        *histogram // seconds from arrival to the first token
	itl         *histogram // seconds between tokens of a stream
	duration    *histogram // seconds from arrival to the end of the response
	prefillWait *histogram // seconds from reaching the engine to the first prompt chunk read

	disconnects int64 // requests cancelled because the client went away
	timeouts    int64 // requests cancelled by the request timeout
	tooSlow     int64 // requests refused because their prompt cannot be read within the timeout

	sessionUses       map[string]int64 // chat requests with a session, by outcome (resumed, new, mismatch)
	sessionTokens     int64            // prompt tokens resumed from sessions instead of read
	sessionSaveErrors int64
	sessionLoad       *histogram // seconds to read and check a session file
	sessionSave       *histogram // seconds to write a session file
}

func newMetrics() *metrics {
	return &metrics{
		requests:    map[[2]string]int64{},
		ttft:        newHistogram(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
		itl:         newHistogram(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
		duration:    newHistogram(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
		prefillWait: newHistogram(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),

		sessionUses: map[string]int64{},
		sessionLoad: newHistogram(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
		sessionSave: newHistogram(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
	}
}

// session records a chat request's use of a session.
func (m *metrics) session(status string, resumed int) {
	m.mu.Lock()
	m.sessionUses[status]++
	m.sessionTokens += int64(resumed)
	m.mu.Unlock()
}

func (m *metrics) request(path string, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	m.mu.Lock()
	m.requests[[2]string{path, fmt.Sprint(status)}]++
	m.mu.Unlock()
}

func (m *metrics) count(p *int64) {
	m.mu.Lock()
	*p++
	m.mu.Unlock()
}

// histogram is a cumulative Prometheus histogram.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []int64 // per bucket (not cumulative); last is +Inf
	sum    float64
	n      int64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]int64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	v := d.Seconds()
	i := sort.SearchFloat64s(h.bounds, v)
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

func (h *histogram) write(w io.Writer, name, help string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum int64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b, cum)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.n, name, h.sum, name, h.n)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var sb strings.Builder
	gauge := func(name, help string, v any) {
		fmt.Fprintf(&sb, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	counter := func(name, help string, v any) {
		fmt.Fprintf(&sb, "# HELP %s %s\n# TYPE %s counter\n%s %v\n", name, help, name, name, v)
	}
	ready := 0
	if b := s.backend.Load(); b != nil {
		ready = 1
		st := b.Engine.Stats()
		cfg := b.Engine.Config()
		gauge("lightning_queue_depth", "Requests waiting for a sequence slot or memory.", st.Queued)
		gauge("lightning_running_sequences", "Sequences holding a slot (prefilling or decoding).", st.Running)
		gauge("lightning_prefilling_sequences", "Running sequences still feeding their prompt.", st.Prefilling)
		gauge("lightning_max_sequences", "Configured limit of running sequences.", cfg.MaxSeqs)
		gauge("lightning_memory_reserved_bytes", "Memory reserved for running sequences' states.", st.Reserved)
		gauge("lightning_memory_budget_bytes", "Configured memory budget for sequences (0 = unlimited).", cfg.MaxMemory)
		gauge("lightning_state_bytes", "Memory held by running sequences' states now.", st.StateBytes)
		gauge("lightning_prefix_cache_bytes", "Memory held by prefix-cache checkpoints.", st.CacheBytes)
		gauge("lightning_spare_state_bytes", "Memory held by ended sequences' states kept for reuse.", st.SpareBytes)
		gauge("lightning_prefix_cache_entries", "Checkpoints in the prefix cache.", st.CacheEntries)
		gauge("lightning_memory_accounted_bytes", "Memory the engine accounts for: running states, prefix cache and spare states.", st.StateBytes+st.CacheBytes+st.SpareBytes)
		gauge("lightning_memory_bound_bytes", "Most memory the engine's states may hold (budget, spares, prefix cache; 0 = no bound).", b.Engine.MemoryBound())
		gauge("lightning_generation_tokens_per_second", "Tokens generated per second over the last few seconds.", fmt.Sprintf("%.3f", st.TokensPerSec))
		gauge("lightning_prefill_tokens_per_second", "Measured prefill rate: the fastest recent step mostly made of prompt chunks (decays 5% a step; 0 until one ran).", fmt.Sprintf("%.3f", st.PrefillTokensPerSec))
		counter("lightning_sequences_submitted_total", "Sequences accepted by the engine.", st.Submitted)
		counter("lightning_sequences_finished_total", "Sequences finished for any reason.", st.Finished)
		counter("lightning_sequences_cancelled_total", "Sequences cancelled (client gone, timeout, stop string).", st.Cancelled)
		counter("lightning_sequences_aborted_total", "Sequences aborted by shutdown.", st.Aborted)
		counter("lightning_sequences_rejected_total", "Requests refused by the engine (queue full, draining).", st.Rejected)
		counter("lightning_prompt_tokens_total", "Prompt tokens of finished sequences.", st.PromptTokens)
		counter("lightning_prompt_tokens_cached_total", "Prompt tokens restored from the prefix cache instead of prefilled.", st.CachedTokens)
		counter("lightning_generation_tokens_total", "Tokens generated by finished sequences.", st.GeneratedTokens)
		counter("lightning_engine_steps_total", "Forward passes run by the engine.", st.Steps)
		counter("lightning_engine_step_tokens_total", "Tokens fed by the engine's forward passes.", st.StepTokens)
		counter("lightning_prefix_cache_hits_total", "Sequences that resumed from a checkpoint.", st.CacheHits)
		counter("lightning_prefix_cache_checkpoints_total", "Checkpoints stored.", st.Checkpoints)
		counter("lightning_prefix_cache_evictions_total", "Checkpoints evicted.", st.Evictions)
		if ws, ok := b.Engine.Model().(model.Workers); ok {
			ctx, cancel := context.WithTimeout(r.Context(), workerCheckTimeout)
			writeWorkerMetrics(&sb, ws.Workers(ctx))
			cancel()
		}
	}
	gauge("lightning_ready", "1 when a model is loaded and the server is not draining.", boolInt(ready == 1 && !s.drain.Load()))
	if rss, ok := residentBytes(); ok {
		gauge("lightning_process_resident_bytes", "Resident memory of the whole process (RSS: weights touched, states, Go heap and its headroom).", rss)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauge("lightning_go_memory_bytes", "Memory the Go runtime holds from the OS (heap, stacks, metadata; not released).", ms.Sys-ms.HeapReleased)
	gauge("lightning_go_memory_limit_bytes", "The Go runtime's soft memory limit (debug.SetMemoryLimit; math.MaxInt64 = none).", debug.SetMemoryLimit(-1))

	m := s.metrics
	m.mu.Lock()
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	sb.WriteString("# HELP lightning_http_requests_total HTTP requests by path and status.\n# TYPE lightning_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&sb, "lightning_http_requests_total{path=%q,status=%q} %d\n", k[0], k[1], m.requests[k])
	}
	disc, tmo, slow := m.disconnects, m.timeouts, m.tooSlow
	sessionOn := s.sessions != nil
	if sessionOn {
		sb.WriteString("# HELP lightning_session_requests_total Chat requests naming a session, by outcome (resumed, new, mismatch = read in full).\n# TYPE lightning_session_requests_total counter\n")
		for _, k := range []string{"resumed", "new", "mismatch"} {
			fmt.Fprintf(&sb, "lightning_session_requests_total{outcome=%q} %d\n", k, m.sessionUses[k])
		}
	}
	stok, serr := m.sessionTokens, m.sessionSaveErrors
	m.mu.Unlock()
	counter("lightning_client_disconnects_total", "Requests whose client went away before the end.", disc)
	counter("lightning_request_timeouts_total", "Requests stopped by the request timeout.", tmo)
	counter("lightning_prompt_too_slow_total", "Requests refused (413) because the measured prefill rate cannot read their prompt within the request timeout.", slow)
	m.ttft.write(&sb, "lightning_time_to_first_token_seconds", "Time from request arrival to its first generated token.")
	m.itl.write(&sb, "lightning_inter_token_latency_seconds", "Time between consecutive tokens of a request.")
	m.duration.write(&sb, "lightning_request_duration_seconds", "Time from request arrival to the end of generation.")
	m.prefillWait.write(&sb, "lightning_prefill_wait_seconds", "Time from a request reaching the engine to the step that reads its first prompt chunk (queue and head-of-line wait).")
	if sessionOn {
		counter("lightning_session_resumed_tokens_total", "Prompt tokens restored from session files instead of read.", stok)
		counter("lightning_session_save_errors_total", "Session files that could not be written.", serr)
		m.sessionLoad.write(&sb, "lightning_session_load_seconds", "Time to read and check a session file.")
		m.sessionSave.write(&sb, "lightning_session_save_seconds", "Time to write a session file (fsync included).")
	}
	io.WriteString(w, sb.String())
}

// residentBytes reads the process's resident set size from
// /proc/self/statm (Linux); ok is false where there is none.
func residentBytes() (int64, bool) {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeWorkerMetrics writes one labelled series per model worker (models
// served across processes).
func writeWorkerMetrics(sb *strings.Builder, ws []model.WorkerStatus) {
	series := func(name, typ, help string, v func(model.WorkerStatus) any) {
		fmt.Fprintf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, w := range ws {
			fmt.Fprintf(sb, "%s{rank=\"%d\",addr=%q} %v\n", name, w.Rank, w.Addr, v(w))
		}
	}
	series("lightning_worker_up", "gauge", "1 when the model worker answered its check.", func(w model.WorkerStatus) any { return boolInt(w.Ready) })
	series("lightning_worker_check_seconds", "gauge", "Round trip of the last check of the worker.", func(w model.WorkerStatus) any { return fmt.Sprintf("%.6f", w.Check.Seconds()) })
	series("lightning_worker_sent_bytes_total", "counter", "Bytes sent to the worker.", func(w model.WorkerStatus) any { return w.BytesSent })
	series("lightning_worker_received_bytes_total", "counter", "Bytes received from the worker.", func(w model.WorkerStatus) any { return w.BytesRecv })
	series("lightning_worker_peer_bytes_total", "counter", "Bytes a stage leader exchanged with its expert peers (both ways).", func(w model.WorkerStatus) any { return w.PeerBytesSent + w.PeerBytesRecv })
	series("lightning_worker_steps_total", "counter", "Steps sent to the worker (stage leaders).", func(w model.WorkerStatus) any { return w.Steps })
	series("lightning_worker_step_seconds_total", "counter", "Time spent waiting for the worker's step replies (stage leaders).", func(w model.WorkerStatus) any { return fmt.Sprintf("%.6f", w.StepWait.Seconds()) })
}
