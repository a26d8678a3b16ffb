package ai

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strings"
)

// BM25 parameters and field weights: a term in the title counts as
// titleWeight occurrences, in a heading as headingWeight.
const (
	bm25K1        = 1.2
	bm25B         = 0.75
	titleWeight   = 3
	headingWeight = 2
)

// Article is one markdown file of the knowledge base.
type Article struct {
	ID         string   // file name without .md (its path under the root, for subdirectories)
	Title      string   // the first "# " heading, else the id
	Headings   []string // every other heading, in order
	Body       string   // the file's text
	Paragraphs []string // the body's paragraphs, headings excluded, lines joined
}

// Hit is one search result.
type Hit struct {
	ID, Title string
	Score     float64
}

// Knowledge is a BM25 index over articles; immutable and safe for concurrent use.
type Knowledge struct {
	articles []Article
	byID     map[string]int
	postings map[string][]posting
	idf      map[string]float64
	docLen   []float64 // weighted length
	avgLen   float64
	paraTerm [][]map[string]bool // per article, per paragraph: its terms
}

type posting struct {
	doc int
	tf  float64 // weighted
}

// LoadKnowledge reads every *.md file under the root of fsys.
func LoadKnowledge(fsys fs.FS) (*Knowledge, error) {
	var articles []Article
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".md") {
			return nil
		}
		if len(articles) == ArticlesMax {
			return fmt.Errorf("more than %d articles (ArticlesMax)", ArticlesMax)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > ArticleBytesMax {
			return fmt.Errorf("article %s: %d bytes, more than %d (ArticleBytesMax)", p, info.Size(), ArticleBytesMax)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		if len(data) > ArticleBytesMax {
			return fmt.Errorf("article %s: more than %d bytes (ArticleBytesMax)", p, ArticleBytesMax)
		}
		articles = append(articles, parseArticle(strings.TrimSuffix(p, ".md"), string(data)))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ai: knowledge: %w", err)
	}
	return newKnowledge(articles)
}

// LoadKnowledgeDir reads the articles of a directory.
func LoadKnowledgeDir(dir string) (*Knowledge, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("ai: knowledge directory %q: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("ai: knowledge directory %q is not a directory", dir)
	}
	return LoadKnowledge(os.DirFS(dir))
}

// parseArticle splits a markdown text into title, headings and paragraphs.
func parseArticle(id, text string) Article {
	a := Article{ID: id, Body: text}
	var para []string
	endPara := func() {
		if len(para) > 0 {
			a.Paragraphs = append(a.Paragraphs, strings.Join(para, " "))
			para = para[:0]
		}
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if h, ok := heading(line); ok {
			endPara()
			if a.Title == "" && strings.HasPrefix(line, "# ") {
				a.Title = h
			} else {
				a.Headings = append(a.Headings, h)
			}
			continue
		}
		if line == "" {
			endPara()
			continue
		}
		para = append(para, cleanLine(line))
	}
	endPara()
	if a.Title == "" {
		a.Title = path.Base(id)
	}
	return a
}

// cleanLine drops a line's list marker and emphasis, so an answer built
// from a paragraph reads as text.
func cleanLine(line string) string {
	for _, marker := range []string{"- ", "* ", "+ ", "> "} {
		if strings.HasPrefix(line, marker) {
			line = strings.TrimSpace(line[len(marker):])
			break
		}
	}
	return strings.NewReplacer("**", "", "__", "", "`", "").Replace(line)
}

func heading(line string) (string, bool) {
	t := strings.TrimLeft(line, "#")
	if len(t) == len(line) || len(line)-len(t) > 6 || !strings.HasPrefix(t, " ") {
		return "", false
	}
	return strings.TrimSpace(t), true
}

func newKnowledge(articles []Article) (*Knowledge, error) {
	slices.SortFunc(articles, func(a, b Article) int { return strings.Compare(a.ID, b.ID) })
	k := &Knowledge{
		articles: articles,
		byID:     make(map[string]int, len(articles)),
		postings: make(map[string][]posting),
		idf:      make(map[string]float64),
		docLen:   make([]float64, len(articles)),
		paraTerm: make([][]map[string]bool, len(articles)),
	}
	var errs []error
	for i, a := range articles {
		if _, dup := k.byID[a.ID]; dup {
			errs = append(errs, fmt.Errorf("ai: knowledge: two articles with id %q", a.ID))
		}
		k.byID[a.ID] = i
		k.index(i, a)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := float64(len(articles))
	total := 0.0
	for _, l := range k.docLen {
		total += l
	}
	if n > 0 {
		k.avgLen = total / n
	}
	for term, ps := range k.postings {
		df := float64(len(ps))
		k.idf[term] = math.Log(1 + (n-df+0.5)/(df+0.5))
	}
	return k, nil
}

// index adds article i's weighted term counts to the postings.
func (k *Knowledge) index(i int, a Article) {
	tf := make(map[string]float64)
	add := func(text string, w float64) {
		for _, t := range tokens(nil, text, math.MaxInt) {
			tf[t] += w
			k.docLen[i] += w
		}
	}
	add(a.Title, titleWeight)
	for _, h := range a.Headings {
		add(h, headingWeight)
	}
	for _, p := range a.Paragraphs {
		add(p, 1)
		terms := make(map[string]bool)
		for _, t := range tokens(nil, p, math.MaxInt) {
			terms[t] = true
		}
		k.paraTerm[i] = append(k.paraTerm[i], terms)
	}
	for t, f := range tf {
		k.postings[t] = append(k.postings[t], posting{doc: i, tf: f})
	}
}

// Len is the number of articles.
func (k *Knowledge) Len() int { return len(k.articles) }

// Article returns the article with this id.
func (k *Knowledge) Article(id string) (Article, bool) {
	i, ok := k.byID[id]
	if !ok {
		return Article{}, false
	}
	return k.articles[i], true
}

// Search returns at most n articles matching query, best first (BM25).
func (k *Knowledge) Search(query string, n int) []Hit {
	terms := tokens(make([]string, 0, 16), query, QueryTokensMax)
	return k.search(terms, n)
}

// search ranks the articles for already tokenized terms (duplicates count once).
func (k *Knowledge) search(terms []string, n int) []Hit {
	if k == nil || n <= 0 || len(k.articles) == 0 {
		return nil
	}
	scores := make([]float64, len(k.articles))
	for i, t := range terms {
		if slices.Contains(terms[:i], t) {
			continue
		}
		idf := k.idf[t]
		for _, p := range k.postings[t] {
			norm := bm25K1 * (1 - bm25B + bm25B*k.docLen[p.doc]/k.avgLen)
			scores[p.doc] += idf * p.tf * (bm25K1 + 1) / (p.tf + norm)
		}
	}
	var hits []Hit
	for i, s := range scores {
		if s > 0 {
			hits = append(hits, Hit{ID: k.articles[i].ID, Title: k.articles[i].Title, Score: s})
		}
	}
	slices.SortFunc(hits, func(a, b Hit) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(hits) > n {
		hits = hits[:n]
	}
	return hits
}

// idealScore is what a query's distinct terms would score against an article
// of average length holding each of them once in its title, once in a
// heading and once in its body (weighted tf idealTF): a practical
// ceiling for normalizing a hit's score to [0, 1]. A term unknown to the
// knowledge base counts with the idf of the rarest known term, so an
// off-topic word pulls the ratio down.
func (k *Knowledge) idealScore(terms []string) float64 {
	if k == nil || len(k.articles) == 0 {
		return 0
	}
	n := float64(len(k.articles))
	rare := math.Log(1 + (n-1+0.5)/(1+0.5))
	const idealTF = titleWeight + headingWeight + 1
	per := idealTF * (bm25K1 + 1) / (idealTF + bm25K1)
	total := 0.0
	for i, t := range terms {
		if slices.Contains(terms[:i], t) {
			continue
		}
		idf, ok := k.idf[t]
		if !ok {
			idf = rare
		}
		total += idf * per
	}
	return total
}

// bestParagraphs returns the index of article doc's paragraph that shares
// the most query weight (idf) with terms; 0 when none shares any.
func (k *Knowledge) bestParagraph(doc int, terms []string) int {
	best, bestScore := 0, 0.0
	for p, set := range k.paraTerm[doc] {
		s := 0.0
		for i, t := range terms {
			if set[t] && !slices.Contains(terms[:i], t) {
				s += k.idf[t]
			}
		}
		if s > bestScore {
			best, bestScore = p, s
		}
	}
	return best
}
