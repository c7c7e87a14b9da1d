package boundaries

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/annals/annals"

// Engines are the storage engines' modules: only the packages that keep
// data in them may depend on them.
var engines = []string{"github.com/cockroachdb/pebble", "github.com/jackc/pgx"}

// rule is what one package of the module may import of the module, and
// whether it may depend on an engine, directly or not. Paths are relative
// to the module; "." is the root package.
type rule struct {
	imports []string
	engines bool
}

// rules hold one entry per package of the module, as docs/design.md's
// table: a new package takes a row in both.
var rules = map[string]rule{
	".":                         {},
	"internal/core":             {imports: []string{"."}},
	"internal/backoff":          {},
	"internal/privfs":           {engines: true},
	"internal/dcbpb":            {imports: []string{"."}},
	"internal/links":            {imports: []string{".", "internal/core"}},
	"memory":                    {imports: []string{".", "internal/core", "internal/links"}},
	"embedded":                  {imports: []string{".", "internal/core", "internal/links", "internal/privfs"}, engines: true},
	"postgres":                  {imports: []string{".", "internal/core"}, engines: true},
	"remote":                    {imports: []string{".", "internal/dcbpb"}},
	"persistent":                {imports: []string{"."}},
	"server":                    {imports: []string{".", "persistent", "internal/dcbpb"}},
	"server/serveproj":          {imports: []string{"server", "projection"}, engines: true},
	"metrics":                   {imports: []string{"."}},
	"tracing":                   {imports: []string{"."}},
	"alert":                     {imports: []string{"."}},
	"process":                   {imports: []string{".", "command"}},
	"process/processtest":       {imports: []string{".", "process"}},
	"console":                   {imports: []string{".", "alert", "metrics", "persistent"}},
	"projection":                {imports: []string{".", "internal/backoff", "internal/privfs"}, engines: true},
	"codec":                     {imports: []string{"."}},
	"command":                   {imports: []string{".", "internal/backoff"}},
	"command/commandtest":       {imports: []string{"command"}},
	"storetest":                 {imports: []string{"."}},
	"projection/projectiontest": {imports: []string{".", "projection"}, engines: true},
	"demo/seats":                {imports: []string{".", "codec", "command", "process"}},
	"demo/todo":                 {imports: []string{".", "codec", "command", "process"}},
	"demo/dcb":                  {imports: []string{".", "command"}},
	"demo/products":             {imports: []string{".", "codec", "command", "projection"}, engines: true},
	"cmd/annals": {imports: []string{".", "demo/products", "demo/seats", "demo/todo", "embedded", "postgres", "projection", "remote",
		"server", "server/serveproj", "metrics", "tracing", "alert", "console", "persistent", "process"}, engines: true},
	"internal/teststores": {imports: []string{".", "embedded", "memory", "postgres", "remote", "server"}, engines: true},
	"internal/testdisk":   {},
	"internal/boundaries": {},
	// Examples are read and copied, never imported: they may use anything
	// but each other.
	"examples/seats": {imports: []string{".", "demo/seats", "embedded", "postgres", "remote"}, engines: true},
	"examples/todo":  {imports: []string{".", "demo/todo", "embedded", "remote"}, engines: true},
}

// pkg is one package as go list reports it.
type pkg struct {
	path          string // relative to the module
	imports, deps []string
}

// listPackages runs go list over the module: the packages, their imports
// and their dependencies (tests' imports apart).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}\t{{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		pkgs = append(pkgs, pkg{path: relative(f[0]), imports: strings.Fields(f[1]), deps: strings.Fields(f[2])})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// relative is p relative to the module, "" outside it.
func relative(p string) string {
	switch {
	case p == module:
		return "."
	case strings.HasPrefix(p, module+"/"):
		return strings.TrimPrefix(p, module+"/")
	}
	return ""
}

func TestImports(t *testing.T) {
	for _, p := range listPackages(t) {
		r, ok := rules[p.path]
		if !ok {
			t.Errorf("%s: not in the rules (here and in docs/design.md's table of packages)", p.path)
			continue
		}
		for _, imp := range p.imports {
			if rel := relative(imp); rel != "" && !slices.Contains(r.imports, rel) {
				t.Errorf("%s imports %s, which its rule does not allow", p.path, rel)
			}
		}
		if dep := engineDep(p.deps); dep != "" && !r.engines {
			t.Errorf("%s depends on %s, a storage engine, through its imports", p.path, dep)
		}
	}
}

// engineDep is the first of deps that is a storage engine's, "" if none.
func engineDep(deps []string) string {
	for _, dep := range deps {
		for _, e := range engines {
			if dep == e || strings.HasPrefix(dep, e+"/") {
				return dep
			}
		}
	}
	return ""
}

// TestNothingImportsExamples: what the product ships is outside examples/.
func TestNothingImportsExamples(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, dep := range p.deps {
			if rel := relative(dep); rel != "" && strings.HasPrefix(rel, "examples/") {
				t.Errorf("%s depends on %s: an example", p.path, rel)
			}
		}
	}
}
