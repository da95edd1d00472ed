package eval

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dejavu"
)

const shared = "../../shared/data"

var taskDir = filepath.Join(shared, "tasks")

func needTasks(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(taskDir); err != nil {
		t.Skip(taskDir + " is not present")
	}
}

// TestTaskFiles parses every task file in full and checks the prompts of
// its first item.
func TestTaskFiles(t *testing.T) {
	needTasks(t)
	want := map[string]struct {
		n            int
		ctx0, cont0  string // first item, choice 0
		cont1, ctx1  string // first item, choice 1 ("" to skip)
		gold, nchoic int
	}{
		"copa": {100, "The man turned on the faucet therefore", " the toilet filled with water.",
			" water flowed from the spout.", "", 1, 2},
		"piqa": {1838, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:",
			" Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.", "", "", 0, 2},
		"openbook_qa": {500, "A person wants to start saving money so that they can afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide the best way to save money is to",
			" make more phone calls", " quit eating lunch out", "", 1, 4},
		"arc_easy": {2376, "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:",
			" Sunlight is the source of energy for nearly all ecosystems.", "", "", 0, 4},
		"arc_challenge": {1172, "Question: An astronomer observes that a planet rotates faster after a meteorite impact. Which is the most likely effect of this increase in rotation?\nAnswer:",
			" Planetary density will decrease.", "", "", 2, 4},
		"boolq":          {3270, "", " no", " yes", "", 0, 2},
		"winogrande":     {1267, "Sarah was a much better surgeon than Maria so Sarah", " always got the easier cases.", "", "Sarah was a much better surgeon than Maria so Maria", 1, 2},
		"winograd_wsc":   {273, "The city councilmen refused the demonstrators a permit because the city councilmen", " feared violence.", "", "The city councilmen refused the demonstrators a permit because the demonstrators", 0, 2},
		"lambada_openai": {5153, "", " signs", "", "", 0, 1},
		"hellaswag": {10042, "Roof shingle removal: A man is sitting on a roof. he", " is using wrap to wrap a pair of skis.",
			" is ripping level tiles off.", "", 3, 4},
		"rte": {277, "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to the Christopher Reeve Foundation.\nQuestion: Christopher Reeve had an accident. True or False?\nAnswer:",
			" True", " False", "", 1, 2},
	}
	for _, name := range TaskNames() {
		w, ok := want[name]
		if !ok {
			t.Errorf("task %s has no test case", name)
			continue
		}
		task, err := LookupTask(name)
		if err != nil {
			t.Fatal(err)
		}
		items, err := task.Load(taskDir, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(items) != w.n {
			t.Errorf("%s: %d items, want %d", name, len(items), w.n)
		}
		it := items[0]
		if it.Line != 1 || it.Gold != w.gold || it.NumChoices() != w.nchoic {
			t.Errorf("%s: first item line %d gold %d choices %d, want 1 %d %d", name, it.Line, it.Gold, it.NumChoices(), w.gold, w.nchoic)
		}
		if w.ctx0 != "" && it.Context(0) != w.ctx0 {
			t.Errorf("%s: context 0\n%q\nwant\n%q", name, it.Context(0), w.ctx0)
		}
		if it.Continuation(0) != w.cont0 {
			t.Errorf("%s: continuation 0 %q, want %q", name, it.Continuation(0), w.cont0)
		}
		if w.cont1 != "" && it.Continuation(1) != w.cont1 {
			t.Errorf("%s: continuation 1 %q, want %q", name, it.Continuation(1), w.cont1)
		}
		if w.ctx1 != "" && it.Context(1) != w.ctx1 {
			t.Errorf("%s: context 1 %q, want %q", name, it.Context(1), w.ctx1)
		}
		for _, it := range items {
			for i := 0; i < it.NumChoices(); i++ {
				if !strings.HasPrefix(it.Continuation(i), " ") || strings.TrimSpace(it.Context(i)) == "" {
					t.Fatalf("%s line %d choice %d: context %q continuation %q", name, it.Line, i, it.Context(i), it.Continuation(i))
				}
			}
			if task.Norm && len(it.NormLen) != it.NumChoices() {
				t.Fatalf("%s line %d: %d norm lengths for %d choices", name, it.Line, len(it.NormLen), it.NumChoices())
			}
		}
		// A limit takes the first items.
		few, err := task.Load(taskDir, 3)
		if err != nil || len(few) != 3 || few[2].Context(0) != items[2].Context(0) {
			t.Errorf("%s: limit 3: %d items, %v", name, len(few), err)
		}
	}
	// Spot checks of the rewritten prompts.
	boolq, _ := LookupTask("boolq")
	items, _ := boolq.Load(taskDir, 1)
	if c := items[0].Context(0); !strings.HasPrefix(c, "All biomass goes") || !strings.HasSuffix(c, "\nQuestion: does ethanol take more energy make that produces?\nAnswer:") {
		t.Errorf("boolq context %q", c)
	}
	copa, _ := LookupTask("copa")
	items, _ = copa.Load(taskDir, 0)
	for _, it := range items {
		c := it.Context(0)
		if !strings.HasSuffix(c, " because") && !strings.HasSuffix(c, " therefore") || strings.HasSuffix(c, ", because") || strings.HasSuffix(c, ", therefore") {
			t.Errorf("copa line %d: context %q", it.Line, c)
		}
	}
}

// TestTaskFormatErrors: malformed rows give errors that name file and line.
func TestTaskFormatErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := `{"query": "Q", "choices": ["a", "b"], "gold": 1}` + "\n"
	for _, c := range []struct {
		task, file, text, want string
	}{
		{"openbook_qa", "openbook_qa.jsonl", good + "{not json\n", "openbook_qa.jsonl:2: "},
		{"openbook_qa", "openbook_qa.jsonl", good + good + `{"query": "Q", "choices": ["a"], "gold": 0}` + "\n", `openbook_qa.jsonl:3: want "query", "gold" and at least 2 "choices"`},
		{"openbook_qa", "openbook_qa.jsonl", `{"query": "Q", "choices": ["a", "b"], "gold": 2}`, "openbook_qa.jsonl:1: gold 2 is not a choice index [0, 2)"},
		{"copa", "copa.jsonl", good, `copa.jsonl:1: copa query "Q" does not end in ", because" or ", therefore"`},
		{"winogrande", "winogrande.jsonl", `{"context_options": ["a", "b"], "gold": 0}`, `winogrande.jsonl:1: want "continuation"`},
		{"lambada_openai", "lambada_openai.jsonl", "\n" + `{"context": "a"}`, `lambada_openai.jsonl:2: want "context" and "continuation"`},
		{"rte", "rte_val.jsonl", `{"premise": "p", "hypothesis": "h", "label": "maybe"}`, `rte_val.jsonl:1: label "maybe" is not`},
		{"arc_easy", "arc_easy.jsonl", "\n\n", "arc_easy.jsonl: no items"},
	} {
		write(c.file, c.text)
		task, err := LookupTask(c.task)
		if err != nil {
			t.Fatal(err)
		}
		_, err = task.Load(dir, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: err %v, want %q", c.task, c.text, err, c.want)
		}
	}
	// RTE accepts integer labels too.
	write("rte_val.jsonl", `{"premise": "p", "hypothesis": "h", "label": 1}`+"\n"+`{"premise": "p", "hypothesis": "h", "label": 0}`)
	rte, _ := LookupTask("rte")
	if items, err := rte.Load(dir, 0); err != nil || items[0].Gold != 1 || items[1].Gold != 0 {
		t.Errorf("rte integer labels: %v %v", items, err)
	}
	// HellaSwag: a bad gold index and a truncated item.
	hs, _ := LookupTask("hellaswag")
	if _, err := readHellaSwag("hs.txt", strings.NewReader("ctx\nx\na\nb\nc\nd\n"), 0); err == nil || !strings.Contains(err.Error(), `hs.txt:2: gold ending index "x"`) {
		t.Errorf("hellaswag bad gold: %v", err)
	}
	if _, err := readHellaSwag("hs.txt", strings.NewReader("ctx\n0\na\nb\nc\nd\nctx2\n1\n"), 0); err == nil || !strings.Contains(err.Error(), "hs.txt:7: the file ends inside an item") {
		t.Errorf("hellaswag truncated: %v", err)
	}
	if _, err := hs.Load(dir, 0); err == nil || !strings.Contains(err.Error(), "hellaswag") {
		t.Errorf("hellaswag missing file: %v", err)
	}
}

// TestUnknownTask: a bad task name lists the known ones.
func TestUnknownTask(t *testing.T) {
	_, err := LookupTask("mmlu")
	if err == nil || !strings.Contains(err.Error(), `unknown task "mmlu"`) || !strings.Contains(err.Error(), "arc_easy, arc_challenge") && !strings.Contains(err.Error(), "arc_challenge, arc_easy") {
		t.Errorf("err %v", err)
	}
}

// TestRunTasksTestbed scores a few items of three tasks on the OPT test-bed
// and checks that the cache reuse of RunTask gives the log-likelihoods of
// independent passes.
func TestRunTasksTestbed(t *testing.T) {
	needTasks(t)
	path := filepath.Join(shared, "models", "testbed-opt-relu")
	if _, err := os.Stat(path); err != nil {
		t.Skip(path + " is not present")
	}
	m, err := dejavu.Load(path, dejavu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, fresh := m.NewSession(0), m.NewSession(0)
	for _, c := range []struct {
		name  string
		limit int
	}{{"copa", 8}, {"winogrande", 4}, {"lambada_openai", 4}} {
		task, err := LookupTask(c.name)
		if err != nil {
			t.Fatal(err)
		}
		items, err := task.Load(taskDir, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		r, err := RunTask(s, m.Tok, task, items, func() { done++ })
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.N != c.limit || done != c.limit || r.Acc < 0 || r.Acc > 1 || (r.AccNorm != nil) != task.Norm || (r.Perplexity != nil) != (task.Kind == LastWord) {
			t.Errorf("%s: %+v, %d progress calls", c.name, r, done)
		}
		if r.Perplexity != nil && !(*r.Perplexity > 1 && *r.Perplexity < 1e6) {
			t.Errorf("%s: perplexity %v", c.name, *r.Perplexity)
		}
		t.Logf("%s: %+v", c.name, r)

		// The scorer's cache reuse against fresh passes, on the first item.
		sc := NewScorer(s)
		it := items[0]
		for i := 0; i < it.NumChoices(); i++ {
			ctx, cont, err := Encode(m.Tok, it.Context(i), it.Continuation(i))
			if err != nil {
				t.Fatal(err)
			}
			whole, _ := m.Tok.Encode(it.Context(i) + it.Continuation(i))
			if !slices.Equal(append(slices.Clone(ctx), cont...), whole) {
				t.Errorf("%s choice %d: context %v + continuation %v != %v", c.name, i, ctx, cont, whole)
			}
			a, ga, err := sc.LogLikelihood(ctx, cont)
			if err != nil {
				t.Fatal(err)
			}
			b, gb, err := LogLikelihood(fresh, ctx, cont)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(a-b) > 1e-4 || ga != gb {
				t.Errorf("%s choice %d: reused cache %v %v, fresh %v %v", c.name, i, a, ga, b, gb)
			}
		}
	}
}

// TestEncodeMovesTrailingSpace: whitespace at the end of a context goes to
// the continuation, as the harness's _encode_pair does.
func TestEncodeMovesTrailingSpace(t *testing.T) {
	path := filepath.Join(shared, "models", "testbed-opt-relu")
	if _, err := os.Stat(path); err != nil {
		t.Skip(path + " is not present")
	}
	m, err := dejavu.Load(path, dejavu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c1, k1, err := Encode(m.Tok, "The cat sat on the ", "mat")
	if err != nil {
		t.Fatal(err)
	}
	c2, k2, _ := Encode(m.Tok, "The cat sat on the", " mat")
	if !slices.Equal(c1, c2) || !slices.Equal(k1, k2) {
		t.Errorf("trailing space: %v %v, moved %v %v", c1, k1, c2, k2)
	}
	if c1[0] != m.Tok.BOS() {
		t.Errorf("context %v does not start with BOS %d", c1, m.Tok.BOS())
	}
	c3, k3, _ := Encode(m.Tok, "", "Hello")
	want, _ := m.Tok.EncodeNoSpecial("Hello")
	if !slices.Equal(c3, []int{m.Tok.BOS()}) || !slices.Equal(k3, want) {
		t.Errorf("empty context: %v %v", c3, k3)
	}
	if bos, err := AddsBOS(m.Tok); err != nil || bos != m.Tok.BOS() {
		t.Errorf("AddsBOS: %d %v", bos, err)
	}
	ids, err := Documents(m.Tok, "a b", "c")
	if err != nil || ids[0] != m.Tok.BOS() || slices.Index(ids[1:], m.Tok.BOS()) < 0 {
		t.Errorf("Documents: %v %v", ids, err)
	}
}
