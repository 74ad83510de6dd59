package main

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// lwsEnv is the environment the LeaderWorkerSet controller gives a pod
// (sigs.k8s.io/lws pkg/utils/pod AddLWSVariables): the names follow its
// documented example, group 1 of an LWS "my-lws" in namespace default.
func lwsEnv(size, index int) func(string) string {
	env := map[string]string{
		lwsLeaderAddressEnv: "my-lws-1.my-lws.default",
		lwsGroupSizeEnv:     fmt.Sprint(size),
		lwsWorkerIndexEnv:   fmt.Sprint(index),
	}
	return func(k string) string { return env[k] }
}

func TestLWSWorkerAddrs(t *testing.T) {
	got, err := lwsWorkerAddrs(lwsEnv(3, 0), 7000)
	// LWS names worker i of leader my-lws-1 "my-lws-1-i", under the same
	// subdomain (the headless service my-lws) and namespace.
	want := []string{"my-lws-1-1.my-lws.default:7000", "my-lws-1-2.my-lws.default:7000"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if got, err := lwsWorkerAddrs(lwsEnv(1, 0), 7000); err != nil || len(got) != 0 {
		t.Errorf("group of one: %v, %v; want no workers", got, err)
	}
	for _, tc := range []struct {
		env  func(string) string
		port int
		msg  string
	}{
		{func(string) string { return "" }, 7000, "LWS_LEADER_ADDRESS"},
		{func(k string) string { return map[string]string{lwsLeaderAddressEnv: "leader"}[k] }, 7000, "POD.SUBDOMAIN.NAMESPACE"},
		{func(k string) string { return map[string]string{lwsLeaderAddressEnv: "a.b.c", lwsGroupSizeEnv: "x"}[k] }, 7000, "LWS_GROUP_SIZE"},
		{lwsEnv(3, 0), 70000, "outside"},
	} {
		if _, err := lwsWorkerAddrs(tc.env, tc.port); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("error %v, want one naming %q", err, tc.msg)
		}
	}
}

func TestLWSRank(t *testing.T) {
	for index, want := range map[int]int{1: 0, 2: 1, 4: 3} {
		if got, err := lwsRank(lwsEnv(5, index), 4); err != nil || got != want {
			t.Errorf("index %d: rank %d, %v; want %d", index, got, err, want)
		}
	}
	for _, tc := range []struct {
		size, index, workers int
		msg                  string
	}{
		{5, 0, 4, "leader"},
		{5, 5, 4, "want 0…4"},
		{3, 1, 4, "size to 5"},
	} {
		if _, err := lwsRank(lwsEnv(tc.size, tc.index), tc.workers); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("size %d index %d: %v, want an error naming %q", tc.size, tc.index, err, tc.msg)
		}
	}
}

// TestLWSFlagErrors checks the usage errors of -lws and -lws-port under a
// LeaderWorkerSet environment of the wrong size.
func TestLWSFlagErrors(t *testing.T) {
	dir := filepath.Join(goldenDir, "tiny-a")
	for k, v := range map[string]string{lwsLeaderAddressEnv: "l-0.l.ns", lwsGroupSizeEnv: "3", lwsWorkerIndexEnv: "1"} {
		t.Setenv(k, v)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"worker", "-model", dir, "-plan", "pp=4", "-lws", "-token", "t"}, "size to 5"},
		{[]string{"worker", "-model", dir, "-plan", "pp=2", "-lws", "-rank", "0", "-token", "t"}, "-rank or -lws"},
		{[]string{"generate", "-model", dir, "-ids", "1", "-plan", "pp=4", "-lws-port", "7000", "-token", "t"}, "group's size to 5"},
		{[]string{"generate", "-model", dir, "-ids", "1", "-plan", "pp=2", "-lws-port", "7000", "-workers", "a:1,b:1"}, "one of -workers"},
		{[]string{"generate", "-model", dir, "-ids", "1", "-plan", "pp=2", "-lws-port", "7000", "-worker-wait", "-1s"}, "negative"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.msg)
		}
	}
}

// TestLWSWorkersServe starts two worker processes with -lws as pods 1 and 2
// of a group would be started, and runs generate against them: the hub
// checks that each answers as the rank of its position, and the greedy
// tokens equal the reference's.
func TestLWSWorkersServe(t *testing.T) {
	dir := filepath.Join(goldenDir, "tiny-a")
	man := readManifest(t, dir)
	t.Setenv(lwsLeaderAddressEnv, "l-0.l.ns")
	t.Setenv(lwsGroupSizeEnv, "3")
	var addrs []string
	for _, index := range []string{"2", "1"} { // started out of order: the rank comes from the index
		t.Setenv(lwsWorkerIndexEnv, index)
		_, addr, _ := workerChild(t, "-model", dir, "-plan", "pp=2", "-lws", "-token", "t", "-listen", "127.0.0.1:0")
		addrs = append([]string{addr}, addrs...)
	}
	for _, c := range man.Cases {
		if c.Kind != "greedy" || c.Prompt != "p7" {
			continue
		}
		out, stderr, code := runCLI(t, "generate", "-model", dir, "-ids", joinIDs(man.Prompts[c.Prompt]), "-n", fmt.Sprint(c.NewTokens),
			"-plan", "pp=2", "-workers", strings.Join(addrs, ","), "-token", "t", "-worker-wait", "10s")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if got, want := strings.TrimSpace(out), joinIDs(c.Generated); got != want {
			t.Errorf("%s: got %s, want %s", c.Name, got, want)
		}
		if !strings.Contains(stderr, "waiting up to 10s for 2 workers") {
			t.Errorf("no progress line for -worker-wait:\n%s", stderr)
		}
	}
}
