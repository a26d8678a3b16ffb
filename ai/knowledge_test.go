package ai

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestSearchRanksKnownQueries(t *testing.T) {
	kb, err := LoadKnowledgeDir("testdata/kb")
	if err != nil {
		t.Fatal(err)
	}
	if kb.Len() != 5 {
		t.Fatalf("loaded %d articles, want 5", kb.Len())
	}
	for query, want := range map[string]string{
		"how do I descale my espresso machine":  "espresso-machine",
		"my bike has a flat tyre":               "bike-tyres",
		"what pressure for mountain bike tyres": "bike-tyres",
		"how long does a passport renewal take": "passport-renewal",
		"penalty for filing taxes late":         "tax-return",
		"my plant's roots rot from watering":    "houseplants",
		"fast-track fee":                        "passport-renewal",
	} {
		hits := kb.Search(query, 3)
		if len(hits) == 0 || hits[0].ID != want {
			t.Errorf("Search(%q) = %v, want %s first", query, hits, want)
			continue
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Score > hits[i-1].Score {
				t.Errorf("Search(%q): hits not best first: %v", query, hits)
			}
		}
	}
	if hits := kb.Search("quantum chromodynamics", 3); len(hits) != 0 {
		t.Errorf("unrelated query found %v", hits)
	}
	if hits := kb.Search("tyre", 0); hits != nil {
		t.Errorf("n=0 returned %v", hits)
	}
}

func TestTitleAndHeadingsWeighUp(t *testing.T) {
	kb, err := LoadKnowledge(fstest.MapFS{
		"title.md": {Data: []byte("# Gift cards\n\nSomething else entirely.\n")},
		"body.md":  {Data: []byte("# Other\n\nWe sell many things, and gift cards are one of the many things we sell.\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if hits := kb.Search("gift cards", 2); len(hits) != 2 || hits[0].ID != "title" {
		t.Errorf("Search = %v, want the article titled so first", hits)
	}
}

func TestLoadKnowledge(t *testing.T) {
	kb, err := LoadKnowledge(fstest.MapFS{
		"a.md":        {Data: []byte("# Alpha title\n\nFirst paragraph\nwrapped.\n\n## Section\n\n- **Second**.\n")},
		"sub/b.md":    {Data: []byte("no heading here\n")},
		"notes.txt":   {Data: []byte("ignored")},
		"sub/c.md.gz": {Data: []byte("ignored")},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := kb.Article("a")
	if !ok || a.Title != "Alpha title" || len(a.Headings) != 1 || a.Headings[0] != "Section" {
		t.Errorf("article a = %+v", a)
	}
	if len(a.Paragraphs) != 2 || a.Paragraphs[0] != "First paragraph wrapped." || a.Paragraphs[1] != "Second." {
		t.Errorf("paragraphs = %q", a.Paragraphs)
	}
	if b, ok := kb.Article("sub/b"); !ok || b.Title != "b" {
		t.Errorf("article sub/b = %+v, %v: want the id's base as title", b, ok)
	}
	if _, ok := kb.Article("notes"); ok || kb.Len() != 2 {
		t.Errorf("non-markdown files were loaded: %d articles", kb.Len())
	}
}

func TestLoadKnowledgeRefuses(t *testing.T) {
	if _, err := LoadKnowledgeDir("testdata/no-such-dir"); err == nil || !strings.Contains(err.Error(), "testdata/no-such-dir") {
		t.Errorf("missing dir: err = %v, want one naming it", err)
	}
	big := fstest.MapFS{"big.md": {Data: []byte(strings.Repeat("x", ArticleBytesMax+1))}}
	if _, err := LoadKnowledge(big); err == nil || !strings.Contains(err.Error(), "ArticleBytesMax") {
		t.Errorf("big article: err = %v, want one naming the limit", err)
	}
	many := fstest.MapFS{}
	for i := range ArticlesMax + 1 {
		many[strings.Repeat("a", 1+i/26)+string(rune('a'+i%26))+".md"] = &fstest.MapFile{Data: []byte("x")}
	}
	if _, err := LoadKnowledge(many); err == nil || !strings.Contains(err.Error(), "ArticlesMax") {
		t.Errorf("too many articles: err = %v, want one naming the limit", err)
	}
}
