package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// editConfig rewrites fields of dir/config.json.
func editConfig(t *testing.T, dir string, fields map[string]any) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		cfg[k] = v
	}
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInspectChecksConfigAgainstCheckpoint checks that inspect does not
// size a checkpoint from a config that disagrees with its tensors, from a
// checkpoint with a shard missing, or from sizes that overflow.
func TestInspectChecksConfigAgainstCheckpoint(t *testing.T) {
	t.Run("vocab", func(t *testing.T) {
		dir := t.TempDir()
		if _, stderr, code := runCLI(t, "random-model", "-preset", "tiny", "-o", dir); code != 0 {
			t.Fatalf("random-model: %s", stderr)
		}
		editConfig(t, dir, map[string]any{"vocab_size": 1e12})
		out, stderr, code := runCLI(t, "inspect", "-model", dir)
		if code != 1 || !strings.Contains(stderr, "1000000000000") || !strings.Contains(stderr, "512") {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 naming 1000000000000 and 512", code, out, stderr)
		}
	})
	t.Run("missing shard", func(t *testing.T) {
		dir := t.TempDir()
		if _, stderr, code := runCLI(t, "random-model", "-preset", "tiny", "-shard-mb", "1", "-o", dir); code != 0 {
			t.Fatalf("random-model: %s", stderr)
		}
		shards, _ := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))
		if len(shards) < 2 {
			t.Fatalf("want several shards, have %v", shards)
		}
		os.Remove(shards[1])
		out, stderr, code := runCLI(t, "inspect", "-model", dir)
		if code != 1 || !strings.Contains(stderr, filepath.Base(shards[1])) {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 naming %s", code, out, stderr, filepath.Base(shards[1]))
		}
	})
	t.Run("overflow", func(t *testing.T) {
		for _, fields := range []map[string]any{
			// 2^40 × 2^40 × 2^40 parameters per expert matrix: wraps int64.
			{"hidden_size": 1 << 40, "intermediate_size": 1 << 40, "num_local_experts": 1 << 40, "head_dim": 16},
			// Few enough parameters, but 4M tokens of KV cache overflow
			// int64 bytes: 2^40 kv heads × 128 dims.
			{"hidden_size": 1, "num_attention_heads": 1 << 40, "num_key_value_heads": 1 << 40, "head_dim": 128,
				"rotary_dim": 8, "num_hidden_layers": 1, "attn_type_list": []int{1}, "vocab_size": 2},
		} {
			dir := t.TempDir()
			b, err := os.ReadFile(filepath.Join(goldenDir, "tiny-a", "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			editConfig(t, dir, fields)
			out, stderr, code := runCLI(t, "inspect", "-model", dir)
			if code != 1 || !strings.Contains(stderr, "too large") {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 saying the sizes are too large", fields, code, out, stderr)
			}
		}
	})
}
