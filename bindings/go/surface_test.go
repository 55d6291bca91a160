package wasithreads_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// headerFunctions are the functions the header declares: lines that start with a
// return type (words, then stars) and the function's name.
func headerFunctions(t *testing.T) map[string]bool {
	h, err := os.ReadFile(ownHeader)
	if err != nil {
		t.Fatal(err)
	}
	fns := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^(?:[a-z_][a-z0-9_]* )+\**(wt_\w+)\(`)
	for _, m := range decl.FindAllStringSubmatch(string(h), -1) {
		fns[m[1]] = true
	}
	if len(fns) < 40 || !fns["wt_version"] || !fns["wt_run_config_set_stdin_fd"] {
		t.Fatalf("found %d functions in %s: the declaration pattern no longer fits it", len(fns), ownHeader)
	}
	return fns
}

// calledFunctions are the wt_ functions the package's own sources call: C.wt_x( in Go,
// wt_x( in C. Names ending in _t are types (a conversion, C.wt_valkind_t(k), looks like a
// call), which no function of the header is named like.
func calledFunctions(t *testing.T) map[string]bool {
	called := map[string]bool{}
	goCall := regexp.MustCompile(`\bC\.(wt_\w+)\(`)
	cCall := regexp.MustCompile(`\b(wt_\w+)\(`)
	for _, pattern := range []string{"*.go", "*.c"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			re := goCall
			if strings.HasSuffix(f, ".c") {
				re = cCall
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				if !strings.HasSuffix(m[1], "_t") {
					called[m[1]] = true
				}
			}
		}
	}
	return called
}

// surfaceTable reads README.md's table of the C API: for each C function, whether its
// row says the binding leaves it out (the Go column starts with "—").
func surfaceTable(t *testing.T) map[string]bool {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## The C API in Go"
	text := string(readme)
	start := strings.Index(text, heading)
	if start < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	text = text[start+len(heading):]
	if end := strings.Index(text, "\n#"); end >= 0 {
		text = text[:end]
	}
	name := regexp.MustCompile("`(wt_\\w+)`")
	leftOut := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "|") {
			continue
		}
		omitted := strings.HasPrefix(strings.TrimSpace(cells[2]), "—")
		for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
			if _, dup := leftOut[m[1]]; dup {
				t.Errorf("README.md's C API table lists %s twice", m[1])
			}
			leftOut[m[1]] = omitted
		}
	}
	return leftOut
}

// TestCAPISurface: every function of the header is either called by the package or
// listed in README.md's table as left out (with the reason), and the table says which
// functions the package calls truthfully. A function added to the C API fails here
// until the binding uses it or the table says why not.
func TestCAPISurface(t *testing.T) {
	header, called, table := headerFunctions(t), calledFunctions(t), surfaceTable(t)
	var problems []string
	for fn := range header {
		if strings.HasSuffix(fn, "_t") {
			t.Errorf("%s: a function of the header named like a type; calledFunctions ignores such names", fn)
		}
		leftOut, listed := table[fn]
		switch {
		case !listed:
			problems = append(problems, fn+": in the header but not in README.md's C API table")
		case leftOut && called[fn]:
			problems = append(problems, fn+": the table says it is left out, but the package calls it")
		case !leftOut && !called[fn]:
			problems = append(problems, fn+": the package does not call it (expose it, or say in the table why not)")
		}
	}
	for fn := range table {
		if !header[fn] {
			problems = append(problems, fn+": in README.md's table but not in the header")
		}
	}
	for fn := range called {
		if !header[fn] {
			problems = append(problems, fn+": called but not in the header")
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}
