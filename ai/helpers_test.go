package ai

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	demoKBDir      = "../node/demo/kb"
	demoIntentFile = "../node/demo/intents.yaml"
)

func loadDemoIntents(t testing.TB) []Intent {
	t.Helper()
	data, err := os.ReadFile(demoIntentFile)
	if err != nil {
		t.Fatal(err)
	}
	var intents []Intent
	if err := yaml.Unmarshal(data, &intents); err != nil {
		t.Fatal(err)
	}
	return intents
}

func demoBuiltin(t testing.TB) *Builtin {
	t.Helper()
	kb, err := LoadKnowledgeDir(demoKBDir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBuiltin(loadDemoIntents(t), kb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type labelled struct{ intent, text string }

func loadHeldOut(t testing.TB) []labelled {
	t.Helper()
	f, err := os.Open("testdata/heldout.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		intent, text, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("heldout.txt: no tab in %q", line)
		}
		out = append(out, labelled{intent, text})
	}
	return out
}
