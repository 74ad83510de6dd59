// Package kubernetes holds the Kubernetes manifests of Lightning (a
// LeaderWorkerSet of `lightning serve` and `lightning worker` pods) and
// their tests: every manifest decodes strictly into the Kubernetes API
// types, the LeaderWorkerSet into that API's fields, and the command
// lines parse with the real lightning binary. It is its own Go module so
// that the main module does not carry k8s.io/api.
package kubernetes

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// manifests are the objects of every *.yaml file here.
type manifests struct {
	lws      []*leaderWorkerSet
	services []*corev1.Service
	claims   []*corev1.PersistentVolumeClaim
}

// decodeDoc decodes one YAML document strictly (unknown and duplicate
// fields fail) into the type of its apiVersion and kind.
func decodeDoc(m *manifests, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(obj any) error { return yaml.UnmarshalStrict(doc, obj) }
	switch tm.APIVersion + " " + tm.Kind {
	case "leaderworkerset.x-k8s.io/v1 LeaderWorkerSet":
		var l leaderWorkerSet
		if err := strict(&l); err != nil {
			return err
		}
		if err := l.validate(); err != nil {
			return err
		}
		m.lws = append(m.lws, &l)
	case "v1 Service":
		var s corev1.Service
		if err := strict(&s); err != nil {
			return err
		}
		m.services = append(m.services, &s)
	case "v1 PersistentVolumeClaim":
		var c corev1.PersistentVolumeClaim
		if err := strict(&c); err != nil {
			return err
		}
		m.claims = append(m.claims, &c)
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a kind these tests know", tm.APIVersion, tm.Kind)
	}
	return nil
}

// decodeFile decodes every document of a multi-document YAML file.
func decodeFile(m *manifests, data []byte) error {
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if err := decodeDoc(m, doc); err != nil {
			return fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	return nil
}

func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeFile(m, data); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if len(m.lws) != 1 || len(m.services) != 1 || len(m.claims) != 1 {
		t.Fatalf("want one LeaderWorkerSet, one Service and one PersistentVolumeClaim; got %d, %d, %d", len(m.lws), len(m.services), len(m.claims))
	}
	return m
}

// TestStrictDecodingRejects changes lws.yaml in ways the API refuses and
// checks that each change fails: the decoding is strict at every level.
func TestStrictDecodingRejects(t *testing.T) {
	data, err := os.ReadFile("lws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeFile(&manifests{}, data); err != nil {
		t.Fatalf("lws.yaml as it is: %v", err)
	}
	for _, tc := range []struct{ old, new string }{
		{"    size: 5", "    sise: 5"},                                    // a LeaderWorkerSet field
		{"startupPolicy: LeaderCreated", "startupPolicy: LeaderStarted"},  // an enum of the CRD
		{"subdomainPolicy: Shared", "subdomainPolicy: Private"},           // another
		{"containerPort: 8080", "containerPrt: 8080"},                     // a container field (k8s.io/api)
		{"            periodSeconds: 10", "            periodSecond: 10"}, // a probe field
		{"memory: 8Gi", "memory: 8 gigabytes"},                            // a quantity
		{"restartPolicy: None", "restartPolicy: Always"},
		{"kind: LeaderWorkerSet", "kind: LeaderWorkerSets"},
	} {
		bad := strings.Replace(string(data), tc.old, tc.new, 1)
		if bad == string(data) {
			t.Fatalf("%q is not in lws.yaml", tc.old)
		}
		if err := decodeFile(&manifests{}, []byte(bad)); err == nil {
			t.Errorf("%q → %q: accepted", tc.old, tc.new)
		} else {
			t.Logf("%q → %q: %v", tc.old, tc.new, err)
		}
	}
}

// container returns the only container of a pod template.
func container(t *testing.T, p *corev1.PodTemplateSpec) *corev1.Container {
	t.Helper()
	if p == nil || len(p.Spec.Containers) != 1 {
		t.Fatal("want a pod template with one container")
	}
	return &p.Spec.Containers[0]
}

// flagValue returns the value of -name=value in args.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v
		}
	}
	t.Fatalf("no -%s=VALUE in %v", name, args)
	return ""
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// namedPort returns the number of the container's port of that name.
func namedPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

// TestManifestsAreConsistent checks what ties the objects together: the
// ports in the command lines, the container ports, the probes and the
// Service; the Service's selector against the labels LeaderWorkerSet gives
// a leader pod; the volumes and the claim.
func TestManifestsAreConsistent(t *testing.T) {
	m := loadManifests(t)
	l := m.lws[0]
	tmpl := l.Spec.LeaderWorkerTemplate
	hub, worker := container(t, tmpl.LeaderTemplate), container(t, &tmpl.WorkerTemplate)

	// Ports: serve's -port is the container port "http"; every worker
	// listens on the port the hub dials (-lws-port), named "grpc"; the
	// probes listen on "probes".
	if got, want := flagValue(t, hub.Args, "port"), namedPort(t, hub, "http"); got != fmt.Sprint(want) {
		t.Errorf("serve -port=%s, container port http %d", got, want)
	}
	if got, want := portOf(t, flagValue(t, worker.Args, "listen")), namedPort(t, worker, "grpc"); got != want {
		t.Errorf("worker -listen port %d, container port grpc %d", got, want)
	}
	if got, want := flagValue(t, hub.Args, "lws-port"), portOf(t, flagValue(t, worker.Args, "listen")); got != fmt.Sprint(want) {
		t.Errorf("serve -lws-port=%s, workers listen on %d", got, want)
	}
	if got, want := portOf(t, flagValue(t, worker.Args, "probe-listen")), namedPort(t, worker, "probes"); got != want {
		t.Errorf("worker -probe-listen port %d, container port probes %d", got, want)
	}
	for _, f := range []string{"plan", "model", "quant"} { // the hub refuses workers that differ
		if flagValue(t, hub.Args, f) != flagValue(t, worker.Args, f) {
			t.Errorf("hub and workers disagree on -%s", f)
		}
	}
	for _, c := range []*corev1.Container{hub, worker} {
		for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			if p == nil {
				t.Errorf("container %s lacks a startup, liveness or readiness probe", c.Name)
				continue
			}
			port := p.TCPSocket
			if p.HTTPGet != nil {
				port = &corev1.TCPSocketAction{Port: p.HTTPGet.Port}
			}
			if port == nil {
				t.Errorf("container %s: a probe that is neither HTTP nor TCP", c.Name)
				continue
			}
			namedPort(t, c, port.Port.String())
		}
	}
	// The hub's readiness is /health (503 while loading or degraded), its
	// liveness /livez (200 whatever the workers do); the workers' readiness
	// is /readyz on the probe listener.
	if p := hub.ReadinessProbe.HTTPGet; p == nil || p.Path != "/health" {
		t.Errorf("serve readiness probe %+v, want GET /health", hub.ReadinessProbe)
	}
	for _, p := range []*corev1.Probe{hub.StartupProbe, hub.LivenessProbe} {
		if p.HTTPGet == nil || p.HTTPGet.Path != "/livez" {
			t.Errorf("serve startup or liveness probe %+v, want GET /livez", p)
		}
	}
	if p := worker.ReadinessProbe.HTTPGet; p == nil || p.Path != "/readyz" {
		t.Errorf("worker readiness probe %+v, want GET /readyz", worker.ReadinessProbe)
	}

	// The Service selects the leader pods only: LWS labels each pod with
	// the set's name and its index in the group, 0 for the leader.
	svc := m.services[0]
	leaderLabels := map[string]string{"leaderworkerset.sigs.k8s.io/name": l.Name, "leaderworkerset.sigs.k8s.io/worker-index": "0"}
	for k, v := range tmpl.LeaderTemplate.Labels {
		leaderLabels[k] = v
	}
	for k, v := range svc.Spec.Selector {
		if leaderLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the leader pods (%v)", k, v, leaderLabels)
		}
	}
	if svc.Spec.Selector["leaderworkerset.sigs.k8s.io/worker-index"] != "0" && svc.Spec.Selector["app.kubernetes.io/component"] != "hub" {
		t.Errorf("Service selector %v would also select workers", svc.Spec.Selector)
	}
	for _, p := range svc.Spec.Ports {
		namedPort(t, hub, p.TargetPort.String())
	}

	// Volumes: every mount has a volume, the model folder is under a
	// mount, and the claim is in the manifests.
	for _, pt := range []*corev1.PodTemplateSpec{tmpl.LeaderTemplate, &tmpl.WorkerTemplate} {
		c := container(t, pt)
		vols := map[string]corev1.Volume{}
		for _, v := range pt.Spec.Volumes {
			vols[v.Name] = v
		}
		underMount := false
		for _, vm := range c.VolumeMounts {
			v, ok := vols[vm.Name]
			if !ok {
				t.Errorf("%s: mount %s has no volume", c.Name, vm.Name)
			}
			if strings.HasPrefix(flagValue(t, c.Args, "model"), vm.MountPath+"/") {
				underMount = true
				if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != m.claims[0].Name {
					t.Errorf("%s: the model volume is not the claim %s", c.Name, m.claims[0].Name)
				}
			}
			for _, f := range []string{"tls-cert", "tls-key", "tls-ca"} {
				if strings.HasPrefix(flagValue(t, c.Args, f), vm.MountPath+"/") && v.Secret == nil {
					t.Errorf("%s: -%s is not on a Secret volume", c.Name, f)
				}
			}
		}
		if !underMount {
			t.Errorf("%s: -model is on no volume", c.Name)
		}
	}
}

// TestCommandLines runs the real lightning binary with each container's
// command line and the environment LeaderWorkerSet gives the leader and
// every worker of a group (LWS_LEADER_ADDRESS, LWS_GROUP_SIZE,
// LWS_WORKER_INDEX), with the Secret values replaced by test values. Every
// flag must parse and every check before the model is read must pass (the
// plan, the group's size against the plan, the rank, the token, TLS
// listening): each run must fail at the model folder, which is not here,
// and on nothing before it. serve's listener is moved to 127.0.0.1:0 and the
// workers' probe listener too, by flags appended after the manifest's.
func TestCommandLines(t *testing.T) {
	m := loadManifests(t)
	l := m.lws[0]
	tmpl := l.Spec.LeaderWorkerTemplate
	bin := filepath.Join(t.TempDir(), "lightning")
	build := exec.Command("go", "build", "-C", "../..", "-o", bin, "./cmd/lightning")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/lightning: %v\n%s", err, out)
	}
	size := 1
	if tmpl.Size != nil {
		size = int(*tmpl.Size)
	}
	const namespace = "default"
	leaderAddr := fmt.Sprintf("%s-0.%s.%s", l.Name, l.Name, namespace) // group 0, Shared subdomain = the set's name
	runAs := func(c *corev1.Container, index int, extra ...string) {
		t.Helper()
		if len(c.Command) != 1 || c.Command[0] != "lightning" {
			t.Fatalf("%s: command %v, want [lightning]", c.Name, c.Command)
		}
		env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"),
			"LWS_LEADER_ADDRESS=" + leaderAddr, "LWS_GROUP_SIZE=" + strconv.Itoa(size), "LWS_WORKER_INDEX=" + strconv.Itoa(index)}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom == nil:
				env = append(env, e.Name+"="+e.Value)
			case e.ValueFrom.SecretKeyRef != nil && (e.ValueFrom.SecretKeyRef.Optional == nil || !*e.ValueFrom.SecretKeyRef.Optional):
				env = append(env, e.Name+"=test-"+e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, a := range c.Args {
			if strings.Contains(a, "$(") {
				t.Fatalf("%s: argument %q expands a variable, which this test does not", c.Name, a)
			}
		}
		cmd := exec.Command(bin, append(slices.Clone(c.Args), extra...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		model := flagValue(t, c.Args, "model")
		t.Logf("%s (index %d): exit %d: %s", c.Name, index, code, bytes.TrimSpace(out))
		if err == nil || code != 1 || !strings.Contains(string(out), model) {
			t.Errorf("%s (index %d): exit %d, want 1 with an error about the missing model folder %s:\n%s", c.Name, index, code, model, out)
		}
	}
	runAs(container(t, tmpl.LeaderTemplate), 0, "-host=127.0.0.1", "-port=0")
	for i := 1; i < size; i++ {
		runAs(container(t, &tmpl.WorkerTemplate), i, "-probe-listen=127.0.0.1:0")
	}
}
