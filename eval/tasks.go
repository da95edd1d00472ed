package eval

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Item is one task example reduced to texts. Choice i is scored as the
// log-likelihood of Continuations[i] after Contexts[i]; either slice may
// hold a single element shared by all choices (a multiple-choice question
// has one context, a Winogrande schema one continuation). Continuations
// carry their leading delimiter (usually one space).
type Item struct {
	Contexts      []string
	Continuations []string
	// NormLen is the length used by acc_norm for each choice: the choice
	// text's length in Unicode code points without the delimiter, which is
	// Python's len(choice) in lm-evaluation-harness (equal to the length
	// in bytes for the ASCII choices of these files).
	NormLen []int
	// Gold is the index of the correct choice (0 for LAMBADA).
	Gold int
	// Line is the item's line in its file (1-based; for HellaSwag the first
	// of its 6 lines).
	Line int
}

// NumChoices is the number of choices of the item.
func (it *Item) NumChoices() int { return max(len(it.Contexts), len(it.Continuations)) }

// Context returns the context of choice i.
func (it *Item) Context(i int) string {
	if len(it.Contexts) == 1 {
		return it.Contexts[0]
	}
	return it.Contexts[i]
}

// Continuation returns the continuation of choice i.
func (it *Item) Continuation(i int) string {
	if len(it.Continuations) == 1 {
		return it.Continuations[0]
	}
	return it.Continuations[i]
}

// Kind is how a task is scored.
type Kind int

const (
	// MultipleChoice: acc is the rate at which the gold choice has the
	// highest log-likelihood (and acc_norm, where reported, the highest
	// log-likelihood per NormLen).
	MultipleChoice Kind = iota
	// LastWord: one continuation per item; acc is the rate at which it is
	// the greedy continuation, and perplexity is exp(-mean log-likelihood
	// per item), both as the harness's lambada_openai.
	LastWord
)

// Task is one evaluation task over a file of the task directory.
type Task struct {
	// Name is the task's name on the command line.
	Name string
	// File is the file's name in the task directory.
	File string
	Kind Kind
	// Norm is whether acc_norm is reported (the harness reports it for
	// piqa, arc_easy, arc_challenge, openbookqa and hellaswag).
	Norm bool
	// Doc describes the prompt format.
	Doc string
	// parse turns one JSON row into an Item.
	parse func(row []byte) (Item, error)
}

// The prompt formats follow lm-evaluation-harness (which puts one space
// between context and continuation); where a MosaicML row is a shortened
// form of the harness prompt, the harness prompt is rebuilt from it.
var tasks = []*Task{
	{Name: "copa", File: "copa.jsonl", Doc: `context: the query with ", because"/", therefore" turned into " because"/" therefore" (the harness's premise-without-period + connector); continuations: " " + choice with its first letter lowered`,
		parse: parseMC(func(q string) (string, error) {
			for _, c := range []string{"because", "therefore"} {
				if s, ok := strings.CutSuffix(q, ", "+c); ok {
					return s + " " + c, nil
				}
			}
			return "", fmt.Errorf("copa query %q does not end in \", because\" or \", therefore\"", q)
		}, lowerFirst)},
	{Name: "piqa", File: "piqa.jsonl", Norm: true, Doc: `context: the query "Question: {goal}\n" + "Answer:"; continuations: " " + choice`,
		parse: parseMC(func(q string) (string, error) { return strings.TrimRight(q, "\n") + "\nAnswer:", nil }, nil)},
	{Name: "openbook_qa", File: "openbook_qa.jsonl", Norm: true, Doc: `context: the query (the question stem); continuations: " " + choice`,
		parse: parseMC(nil, nil)},
	{Name: "arc_easy", File: "arc_easy.jsonl", Norm: true, Doc: `context: the query "Question: {question}" + "\nAnswer:"; continuations: " " + choice`,
		parse: parseMC(func(q string) (string, error) { return q + "\nAnswer:", nil }, nil)},
	{Name: "arc_challenge", File: "arc_challenge.jsonl", Norm: true, Doc: `as arc_easy`,
		parse: parseMC(func(q string) (string, error) { return q + "\nAnswer:", nil }, nil)},
	{Name: "boolq", File: "boolq.jsonl", Doc: `context: the query "Passage: {passage}\nQuestion: {question}?" without "Passage: ", + "\nAnswer:" (the harness's SuperGLUE BoolQ prompt); continuations: " no", " yes"`,
		parse: parseMC(func(q string) (string, error) { return strings.TrimPrefix(q, "Passage: ") + "\nAnswer:", nil }, nil)},
	{Name: "winogrande", File: "winogrande.jsonl", Doc: `partial scoring: contexts: each context option (the sentence up to the blank, filled in); continuation: " " + the rest of the sentence, shared`,
		parse: parseSchema},
	{Name: "winograd_wsc", File: "winograd_wsc.jsonl", Doc: `partial scoring as winogrande (the harness's wsc273)`,
		parse: parseSchema},
	{Name: "lambada_openai", File: "lambada_openai.jsonl", Kind: LastWord, Doc: `context: the passage without its last word; continuation: " " + the last word; acc: the continuation is greedy; perplexity: exp(-mean log-likelihood)`,
		parse: parseLambada},
	{Name: "hellaswag", File: "hellaswag_val_full.txt.bz2", Norm: true, Doc: `llama.cpp's 6-line format (context, gold index, 4 endings, already preprocessed as the harness does); context: line 1; continuations: " " + ending`},
	{Name: "rte", File: "rte_val.jsonl", Doc: `context: "{premise}\nQuestion: {hypothesis} True or False?\nAnswer:"; continuations: " True", " False"; label 0/"entailment" is True (the harness's SuperGLUE RTE)`,
		parse: parseRTE},
}

// TaskNames lists the task names in a fixed order.
func TaskNames() []string {
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.Name
	}
	return names
}

// LookupTask returns the task called name.
func LookupTask(name string) (*Task, error) {
	for _, t := range tasks {
		if t.Name == name {
			return t, nil
		}
	}
	known := TaskNames()
	sort.Strings(known)
	return nil, fmt.Errorf("eval: unknown task %q (known: %s)", name, strings.Join(known, ", "))
}

// Load reads the first limit items (all when limit ≤ 0) of the task's file
// in dir. Errors name the file and line.
func (t *Task) Load(dir string, limit int) ([]Item, error) {
	path := filepath.Join(dir, t.File)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: task %s: %w", t.Name, err)
	}
	defer f.Close()
	if t.parse == nil {
		return readHellaSwag(path, bzip2.NewReader(bufio.NewReader(f)), limit)
	}
	return readJSONL(path, f, limit, t.parse)
}

func readJSONL(path string, r io.Reader, limit int, parse func([]byte) (Item, error)) ([]Item, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var items []Item
	for line := 1; limit <= 0 || len(items) < limit; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			it, perr := parse(b)
			if perr != nil {
				return nil, fmt.Errorf("eval: %s:%d: %w", path, line, perr)
			}
			it.Line = line
			if g := it.Gold; g < 0 || g >= it.NumChoices() {
				return nil, fmt.Errorf("eval: %s:%d: gold %d is not a choice index [0, %d)", path, line, g, it.NumChoices())
			}
			items = append(items, it)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", path, err)
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("eval: %s: no items", path)
	}
	return items, nil
}

// parseMC parses a MosaicML multiple-choice row {"query","choices","gold"}:
// the context is ctx(query) (the query when ctx is nil) and continuation i
// is " " + choice(choices[i]) (the choice when choice is nil).
func parseMC(ctx func(string) (string, error), choice func(string) string) func([]byte) (Item, error) {
	return func(b []byte) (Item, error) {
		var r struct {
			Query   *string  `json:"query"`
			Choices []string `json:"choices"`
			Gold    *int     `json:"gold"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return Item{}, err
		}
		if r.Query == nil || r.Gold == nil || len(r.Choices) < 2 {
			return Item{}, fmt.Errorf(`want "query", "gold" and at least 2 "choices"`)
		}
		c := *r.Query
		if ctx != nil {
			var err error
			if c, err = ctx(c); err != nil {
				return Item{}, err
			}
		}
		it := Item{Contexts: []string{c}, Gold: *r.Gold}
		for _, ch := range r.Choices {
			if choice != nil {
				ch = choice(ch)
			}
			it.Continuations = append(it.Continuations, " "+ch)
			it.NormLen = append(it.NormLen, utf8.RuneCountInString(ch))
		}
		return it, nil
	}
}

// lowerFirst lowers the first letter, as the harness's COPA convert_choice.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}

// parseSchema parses a MosaicML schema row {"context_options","continuation","gold"}.
func parseSchema(b []byte) (Item, error) {
	var r struct {
		Options      []string `json:"context_options"`
		Continuation *string  `json:"continuation"`
		Gold         *int     `json:"gold"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Item{}, err
	}
	if r.Continuation == nil || r.Gold == nil || len(r.Options) < 2 {
		return Item{}, fmt.Errorf(`want "continuation", "gold" and at least 2 "context_options"`)
	}
	return Item{Contexts: r.Options, Continuations: []string{" " + *r.Continuation}, Gold: *r.Gold}, nil
}

// parseLambada parses a MosaicML language-modeling row {"context","continuation"}.
func parseLambada(b []byte) (Item, error) {
	var r struct {
		Context      *string `json:"context"`
		Continuation *string `json:"continuation"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Item{}, err
	}
	if r.Context == nil || r.Continuation == nil {
		return Item{}, fmt.Errorf(`want "context" and "continuation"`)
	}
	return Item{Contexts: []string{*r.Context}, Continuations: []string{" " + *r.Continuation}}, nil
}

// parseRTE parses a SuperGLUE RTE row {"premise","hypothesis","label"}
// with an integer label (0 = entailment) or a string one.
func parseRTE(b []byte) (Item, error) {
	var r struct {
		Premise    *string         `json:"premise"`
		Hypothesis *string         `json:"hypothesis"`
		Label      json.RawMessage `json:"label"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Item{}, err
	}
	if r.Premise == nil || r.Hypothesis == nil || r.Label == nil {
		return Item{}, fmt.Errorf(`want "premise", "hypothesis" and "label"`)
	}
	var gold int
	switch l := strings.Trim(string(r.Label), `"`); l {
	case "0", "entailment":
		gold = 0
	case "1", "not_entailment":
		gold = 1
	default:
		return Item{}, fmt.Errorf("label %s is not 0, 1, \"entailment\" or \"not_entailment\"", r.Label)
	}
	ctx := *r.Premise + "\nQuestion: " + *r.Hypothesis + " True or False?\nAnswer:"
	return Item{Contexts: []string{ctx}, Continuations: []string{" True", " False"}, NormLen: []int{4, 5}, Gold: gold}, nil
}

// readHellaSwag reads llama.cpp's HellaSwag format: 6 lines per item (the
// context, the gold ending's index, the 4 endings).
func readHellaSwag(path string, r io.Reader, limit int) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	var lines []string
	var items []Item
	line := 0
	for sc.Scan() {
		line++
		lines = append(lines, strings.TrimSuffix(sc.Text(), "\r"))
		if len(lines) < 6 {
			continue
		}
		first := line - 5
		gold, err := strconv.Atoi(strings.TrimSpace(lines[1]))
		if err != nil || gold < 0 || gold > 3 {
			return nil, fmt.Errorf("eval: %s:%d: gold ending index %q is not 0-3", path, first+1, lines[1])
		}
		it := Item{Contexts: []string{lines[0]}, Gold: gold, Line: first}
		for _, e := range lines[2:] {
			it.Continuations = append(it.Continuations, " "+e)
			it.NormLen = append(it.NormLen, utf8.RuneCountInString(e))
		}
		items = append(items, it)
		lines = lines[:0]
		if limit > 0 && len(items) == limit {
			return items, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eval: %s: line %d: %w", path, line+1, err)
	}
	if len(lines) != 0 {
		return nil, fmt.Errorf("eval: %s:%d: the file ends inside an item (%d of its 6 lines)", path, line-len(lines)+1, len(lines))
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("eval: %s: no items", path)
	}
	return items, nil
}
