//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/internal/testpki"
)

// netLab is a small network built for one test: a network namespace per
// worker and a switch, a bridge in a namespace of its own, that joins them
// and the test's namespace by veth pairs. The workers reach the hub (in the
// test's namespace) and each other (expert peers, the sp ring) over links
// that tc can slow down. The bridge has a namespace of its own so that the
// traffic between workers never passes the test namespace's firewall
// (br_netfilter sends bridged packets through iptables' FORWARD chain,
// which Docker hosts drop). The addresses are one /24 of 198.18.0.0/15, the
// range set aside for testing networks (RFC 2544): the test's end is .1,
// worker i is .(10+i).
//
// The names carry the creating process's id, so parallel runs do not
// collide and the leftovers of a run that was killed are recognised (by a
// creator that no longer exists) and removed by the next run.
type netLab struct {
	sw     string   // the switch's namespace: bridge br0, port hub to the test's namespace, port wI to worker I
	link   string   // the test namespace's end of its veth pair to the switch
	hostIP string   // its address: the hub's
	ns     []string // per worker: its network namespace (its end of the link is eth0)
	ip     []string // per worker: its address, inside its namespace
}

const (
	labNSPrefix   = "lightning-test-" // namespaces: lightning-test-PID-LAB-WORKER and lightning-test-PID-LAB-sw
	labLinkPrefix = "lgt"             // the test namespace's link: lgt + PID (6 hex digits) + LAB (1 hex digit)
)

// labSeq numbers the labs of this process.
var labSeq atomic.Uint32

// labNSName and labLinkName match the names a lab gives, capturing the
// creator's pid.
var (
	labNSName   = regexp.MustCompile(`^` + labNSPrefix + `([0-9]+)-[0-9a-f]-([0-9]+|sw)$`)
	labLinkName = regexp.MustCompile(`^` + labLinkPrefix + `([0-9a-f]{6})[0-9a-f]$`)
)

// ipCmd runs ip (iproute2) with args and returns its combined output.
func ipCmd(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// newNetLab builds a lab for n workers, removed at the test's cleanup. It
// skips the test when the machine cannot: not root, no ip command, or
// namespaces, veth pairs or bridges not permitted (an unprivileged
// container); a test that cannot build its network is not a failure of
// Lightning.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: no ip command (iproute2) to make network namespaces")
	}
	removeStaleLabs(t)
	pid, k := os.Getpid(), labSeq.Add(1)&0xf
	subnet, err := freeSubnet()
	if err != nil {
		t.Skipf("skipped: %v", err)
	}
	lab := &netLab{sw: fmt.Sprintf("%s%d-%x-sw", labNSPrefix, pid, k), link: fmt.Sprintf("%s%06x%x", labLinkPrefix, pid, k), hostIP: subnet + ".1"}
	for i := range n {
		lab.ns = append(lab.ns, fmt.Sprintf("%s%d-%x-%d", labNSPrefix, pid, k, i))
		lab.ip = append(lab.ip, fmt.Sprintf("%s.%d", subnet, 10+i))
	}
	// Registered before anything exists, so that it runs after the
	// cleanups of the workers started later (which stop them) and even
	// when the setup below fails half-way.
	t.Cleanup(func() {
		if left := lab.remove(); len(left) > 0 {
			t.Errorf("network lab not removed: %s", strings.Join(left, ", "))
		}
	})
	setup := [][]string{
		{"netns", "add", lab.sw},
		{"-n", lab.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", lab.sw, "link", "set", "br0", "up"},
		{"link", "add", lab.link, "type", "veth", "peer", "name", "hub", "netns", lab.sw},
		{"-n", lab.sw, "link", "set", "hub", "master", "br0", "up"},
		{"addr", "add", lab.hostIP + "/24", "dev", lab.link},
		{"link", "set", lab.link, "up"},
	}
	for i := range n {
		port := fmt.Sprintf("w%d", i)
		setup = append(setup,
			[]string{"netns", "add", lab.ns[i]},
			[]string{"-n", lab.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", lab.ns[i]},
			[]string{"-n", lab.sw, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", lab.ns[i], "addr", "add", lab.ip[i] + "/24", "dev", "eth0"},
			[]string{"-n", lab.ns[i], "link", "set", "eth0", "up"},
			[]string{"-n", lab.ns[i], "link", "set", "lo", "up"})
	}
	for _, args := range setup {
		if _, err := ipCmd(args...); err != nil {
			t.Skipf("skipped: cannot build the test network (namespaces, veth pairs, a bridge): %v", err)
		}
	}
	return lab
}

// remove deletes the lab's namespaces (which takes their veth pairs with
// them) and returns the names still present afterwards.
func (lab *netLab) remove() (left []string) {
	for _, ns := range append([]string{lab.sw}, lab.ns...) {
		ipCmd("netns", "delete", ns)
	}
	ipCmd("link", "delete", lab.link) // only there if the setup stopped before moving its peer
	nss, links := existing()
	for _, name := range append([]string{lab.sw, lab.link}, lab.ns...) {
		if slices.Contains(nss, name) || slices.Contains(links, name) {
			left = append(left, name)
		}
	}
	return left
}

// existing returns the names of the network namespaces and of the links
// of this namespace.
func existing() (namespaces, links []string) {
	out, _ := ipCmd("netns", "list")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 { // "NAME" or "NAME (id: 3)"
			namespaces = append(namespaces, f[0])
		}
	}
	out, _ = ipCmd("-o", "link", "show")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 { // "7: NAME@PEER: <...> ..." or "7: NAME: ..."
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			links = append(links, name)
		}
	}
	return namespaces, links
}

// removeStaleLabs removes the namespaces and links of labs whose creating
// process no longer exists, after killing the processes (workers) still
// running in those namespaces.
func removeStaleLabs(t *testing.T) {
	dead := func(pid int64) bool { return syscall.Kill(int(pid), 0) == syscall.ESRCH }
	nss, _ := existing()
	for _, ns := range nss {
		m := labNSName.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		if pid, _ := strconv.ParseInt(m[1], 10, 64); !dead(pid) {
			continue
		}
		pids, _ := ipCmd("netns", "pids", ns)
		for _, p := range strings.Fields(pids) {
			if n, err := strconv.Atoi(p); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
		_, err := ipCmd("netns", "delete", ns)
		t.Logf("removed the namespace %s of a test run that is gone (error: %v)", ns, err)
	}
	_, links := existing() // after the namespaces, which took their veth pairs along
	for _, name := range links {
		m := labLinkName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if pid, _ := strconv.ParseInt(m[1], 16, 64); !dead(pid) {
			continue
		}
		_, err := ipCmd("link", "delete", name)
		t.Logf("removed the link %s of a test run that is gone (error: %v)", name, err)
	}
}

// freeSubnet picks a /24 of 198.18.0.0/15 that no address of this
// namespace is in, and returns its first three octets.
func freeSubnet() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for range 64 {
		r := rand.IntN(512)
		subnet := fmt.Sprintf("198.%d.%d", 18+r/256, r%256)
		_, block, _ := net.ParseCIDR(subnet + ".0/24")
		used := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && (block.Contains(ipn.IP) || ipn.Contains(block.IP)) {
				used = true
			}
		}
		if !used {
			return subnet, nil
		}
	}
	return "", errors.New("no free /24 in 198.18.0.0/15")
}

// slowLink limits the traffic towards worker i to rate (tc's token bucket
// filter on the switch's port to it, which queues what exceeds the rate for
// up to a minute instead of dropping it) and returns the function that
// lifts the limit. It skips the test without tc. tbf rather than netem's
// delay: netem is often not built into the kernel (it is not on the
// machine this was written on).
func (lab *netLab) slowLink(t *testing.T, i int, rate string) (lift func()) {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("skipped: no tc command (iproute2) to slow a link")
	}
	port := fmt.Sprintf("w%d", i)
	if out, err := exec.Command("tc", "-n", lab.sw, "qdisc", "add", "dev", port, "root", "tbf", "rate", rate, "burst", "3000", "latency", "60s").CombinedOutput(); err != nil {
		t.Skipf("skipped: tc cannot shape the link to worker %d with tbf: %v: %s", i, err, out)
	}
	return func() {
		if out, err := exec.Command("tc", "-n", lab.sw, "qdisc", "del", "dev", port, "root").CombinedOutput(); err != nil {
			t.Errorf("tc qdisc del dev %s root: %v: %s", port, err, out)
		}
	}
}

// TestWorkersInNetworkNamespaces runs 'lightning worker' processes each in
// a network namespace of its own (newNetLab), with the shared token and
// mutual TLS, and drives them from this test's namespace:
//   - pp=2, ep=2 and sp=2 give the single process's logits on the golden
//     prompts within the golden tolerance (2e-4) and the reference's greedy
//     tokens (ep=2 and sp=2 also send between the namespaces: expert peers
//     and the ring);
//   - it logs the time per decode step of one process, of pp=2 on loopback
//     and of pp=2 across the namespaces;
//   - with the link of one worker slowed down (tbf), a request to 'serve'
//     fails with 503 naming the worker's timeout after about -worker-timeout,
//     and once the link is fast again requests succeed with the same text.
//
// It needs root and iproute2 and skips without them; it is skipped with
// -short.
func TestWorkersInNetworkNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: starts several worker processes in network namespaces")
	}
	start := time.Now()
	lab := newNetLab(t, 2)
	t.Logf("lab: this namespace at %s (%s), workers %v in %v, switch %s", lab.hostIP, lab.link, lab.ip, lab.ns, lab.sw)
	ca := testpki.NewCA(t, "lightning-test-ca")
	var ips []net.IP
	for _, a := range lab.ip {
		ips = append(ips, net.ParseIP(a))
	}
	wCert, wKey := ca.Issue(t, "worker", ips...) // every worker's: server to the hub, client to its peers
	hCert, hKey := ca.Issue(t, "hub")
	const tok = "netns-test-token"
	dir, err := filepath.Abs(filepath.Join(goldenDir, "tiny-a"))
	if err != nil {
		t.Fatal(err)
	}
	// workers starts the workers of plan for model, in the lab's
	// namespaces or (inLab false) on loopback, and returns the hub's flags
	// that reach them.
	workers := func(t *testing.T, model, plan string, inLab bool) []string {
		var addrs []string
		for r := range lab.ns {
			ns, listen := lab.ns[r], lab.ip[r]+":0"
			if !inLab {
				ns, listen = "", "127.0.0.1:0"
			}
			_, a, _ := workerChildIn(t, ns, "-model", model, "-plan", plan, "-rank", fmt.Sprint(r), "-listen", listen,
				"-token", tok, "-tls-cert", wCert, "-tls-key", wKey, "-tls-ca", ca.File)
			addrs = append(addrs, a)
		}
		if inLab && !strings.HasPrefix(addrs[0], lab.ip[0]+":") {
			t.Fatalf("worker 0 listens on %s, not in its namespace at %s", addrs[0], lab.ip[0])
		}
		return []string{"-plan", plan, "-workers", strings.Join(addrs, ","), "-token", tok, "-tls-cert", hCert, "-tls-key", hKey, "-tls-ca", ca.File}
	}

	man := readManifest(t, dir)
	ids := func(prompt string) string { return joinIDs(man.Prompts[prompt]) }
	// logits runs 'logits' on p257 and returns them.
	logits := func(t *testing.T, args ...string) []float32 {
		out := filepath.Join(t.TempDir(), "logits.safetensors")
		_, stderr, code := runCLI(t, append([]string{"logits", "-model", dir, "-ids", ids("p257"), "-o", out}, args...)...)
		if code != 0 {
			t.Fatalf("logits %v: exit %d: %s", args, code, stderr)
		}
		f, err := safetensors.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		x, ok := f.Tensor("logits")
		if !ok {
			t.Fatalf("%s has no logits", out)
		}
		return slices.Clone(x.F32()) // x is mapped from the file, unmapped by Close
	}
	single := logits(t, "-chunk", "100")

	for _, tc := range []struct {
		plan   string
		chunk  string // logits -chunk
		greedy string // a greedy prompt besides p7: sp cuts only long inputs into chunks
	}{{"pp=2", "100", ""}, {"ep=2", "100", ""}, {"sp=2", "257", "p255"}} {
		t.Run(tc.plan, func(t *testing.T) {
			hub := workers(t, dir, tc.plan, true)
			got := logits(t, append(hub, "-chunk", tc.chunk)...)
			var worst float64
			for i, v := range got {
				worst = max(worst, math.Abs(float64(v-single[i])))
			}
			if len(got) != len(single) || worst > 2e-4 {
				t.Errorf("p257: %d logits, max |Δ| %.3g against the single process (%d logits)", len(got), worst, len(single))
			}
			for _, c := range man.Cases {
				if c.Kind != "greedy" || c.Prompt != "p7" && c.Prompt != tc.greedy {
					continue
				}
				out, stderr, code := runCLI(t, append([]string{"generate", "-model", dir, "-ids", ids(c.Prompt), "-n", fmt.Sprint(c.NewTokens), "-v"}, hub...)...)
				if code != 0 {
					t.Fatalf("generate: exit %d: %s", code, stderr)
				}
				if got, want := strings.TrimSpace(out), joinIDs(c.Generated); got != want {
					t.Errorf("%s: got %s, want %s", c.Name, got, want)
				}
				if !strings.Contains(stderr, "traffic: prefill") {
					t.Errorf("%s: no traffic reported:\n%s", c.Name, stderr)
				}
			}
			t.Logf("p257 max |Δ| %.2g against the single process", worst)
		})
	}

	t.Run("decode step", func(t *testing.T) {
		// The time per decode step (p7, 128 new tokens) of one process,
		// pp=2 on loopback and pp=2 across the namespaces, the best of five
		// rounds that run each once (so that the load of the machine
		// weighs on all three alike); all must generate the same tokens.
		const n, rounds = 129, 5
		setups := []struct {
			name string
			args []string
			best time.Duration
			text string
		}{{"one process", nil, 0, ""}, {"pp=2 over loopback", workers(t, dir, "pp=2", false), 0, ""},
			{"pp=2 across namespaces", workers(t, dir, "pp=2", true), 0, ""}}
		for range rounds {
			for i := range setups {
				s := &setups[i]
				out, stderr, code := runCLI(t, append([]string{"generate", "-model", dir, "-ids", ids("p7"), "-n", fmt.Sprint(n), "-v"}, s.args...)...)
				if code != 0 {
					t.Fatalf("generate %v: exit %d: %s", s.args, code, stderr)
				}
				var steps int
				var took string
				if _, after, ok := strings.Cut(stderr, "decode "); !ok {
					t.Fatalf("no decode time in: %s", stderr)
				} else if _, err := fmt.Sscanf(after, "%d tokens in %s", &steps, &took); err != nil {
					t.Fatalf("decode time %q: %v", after, err)
				}
				d, err := time.ParseDuration(took)
				if err != nil || steps != n-1 {
					t.Fatalf("decode %d tokens in %q: %v", steps, took, err)
				}
				if step := d / time.Duration(steps); s.best == 0 || step < s.best {
					s.best = step
				}
				if s.text = strings.TrimSpace(out); s.text != setups[0].text {
					t.Errorf("%s generated %s, one process %s", s.name, s.text, setups[0].text)
				}
			}
		}
		msg := fmt.Sprintf("decode step (p7, %d tokens, best of %d; the machine is shared, so these are rough): %s %v",
			n-1, rounds, setups[0].name, setups[0].best)
		for _, s := range setups[1:] {
			msg += fmt.Sprintf("; %s %v (%+.0f µs)", s.name, s.best, float64(s.best-setups[0].best)/1e3)
		}
		t.Log(msg)
	})

	t.Run("slow link", func(t *testing.T) {
		// pp=2 under serve with a 2 s step timeout. Worker 1's link is cut
		// to 16 kbit/s: the hidden states of the 200-token prompt (64
		// floats a token, 51 KB) then take ~25 s to reach it.
		model := tinyWithTokenizer(t)
		const timeout = 2 * time.Second
		base := serveChild(t, append([]string{"-model", model, "-worker-timeout", timeout.String()}, workers(t, model, "pp=2", true)...)...)
		client := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
		complete := func(prompt string) (string, error) {
			resp, err := client.Completions.New(context.Background(), openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(filepath.Base(model)),
				Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)}, MaxTokens: openai.Int(8), Temperature: openai.Float(0)})
			if err != nil {
				return "", err
			}
			return resp.Choices[0].Text, nil
		}
		long := strings.Repeat("the cat sat on the mat and looked at the door. ", 6) // 200 tokens
		want, err := complete(long)
		if err != nil {
			t.Fatal(err)
		}
		lift := lab.slowLink(t, 1, "16kbit")
		start := time.Now()
		_, err = complete(long)
		took := time.Since(start)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || !strings.Contains(apiErr.Message, "worker is unavailable") ||
			!strings.Contains(apiErr.Message, "timed out") {
			lift()
			t.Fatalf("request over the slow link: %v after %v; want 503 naming the worker's timeout", err, took)
		}
		if took < timeout || took > timeout+3*time.Second {
			t.Errorf("the 503 came after %v; want about the %v timeout", took, timeout)
		}
		t.Logf("slow link: 503 after %v (timeout %v): %s", took.Round(time.Millisecond), timeout, apiErr.Message)
		lift()
		start = time.Now()
		for {
			got, err := complete(long)
			if err == nil {
				if got != want {
					t.Errorf("after the link recovered: %q, before %q", got, want)
				}
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("not recovered 30 s after the link was fast again: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("recovered %v after the limit was lifted", time.Since(start).Round(time.Millisecond))
	})
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}
