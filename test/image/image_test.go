// Package image checks the controller image's build without a container
// engine: it builds the binary with the Dockerfile's own `go build` line (read
// from the Dockerfile, so the two cannot drift) and checks that the binary is
// static, stripped and path-free, that it starts, and that the final stage is
// distroless and non-root. It must not need a container engine or the
// network.
package image

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// dockerfile is one parsed Dockerfile: its logical lines (continuations
// joined), in order.
type dockerfile struct {
	lines []string
}

func readDockerfile(t *testing.T, root string) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var df dockerfile
	var cur strings.Builder
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		df.lines = append(df.lines, cur.String())
		cur.Reset()
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return df
}

// finalStage returns the lines from the last FROM on.
func (d dockerfile) finalStage() []string {
	for i := len(d.lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.ToUpper(d.lines[i]), "FROM ") {
			return d.lines[i:]
		}
	}
	return nil
}

// argDefaults returns the ARG defaults (ARG NAME=value).
func (d dockerfile) argDefaults() map[string]string {
	out := map[string]string{}
	for _, l := range d.lines {
		if rest, ok := strings.CutPrefix(l, "ARG "); ok {
			if k, v, ok := strings.Cut(rest, "="); ok {
				out[k] = v
			}
		}
	}
	return out
}

// goBuild is the Dockerfile's `RUN [ENV=...] go build ...` line, split into
// its environment and its arguments after `go build`.
type goBuild struct {
	env  []string
	args []string
}

func (d dockerfile) goBuild(vars map[string]string) (goBuild, error) {
	for _, l := range d.lines {
		rest, ok := strings.CutPrefix(l, "RUN ")
		if !ok || !strings.Contains(rest, "go build") {
			continue
		}
		words, err := shellWords(os.Expand(rest, func(k string) string { return vars[k] }))
		if err != nil {
			return goBuild{}, err
		}
		var b goBuild
		for i, w := range words {
			if w == "go" && i+1 < len(words) && words[i+1] == "build" {
				b.args = words[i+2:]
				return b, nil
			}
			if !strings.Contains(w, "=") {
				return goBuild{}, fmt.Errorf("unexpected word %q before go build in %q", w, l)
			}
			b.env = append(b.env, w)
		}
	}
	return goBuild{}, errors.New("the Dockerfile has no RUN ... go build line")
}

// shellWords splits a command line as a POSIX shell would for the subset a
// Dockerfile RUN line uses: blanks, single and double quotes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case strings.ContainsRune("|&;<>()$`\\", r):
			return nil, fmt.Errorf("shell syntax %q in %q: keep the RUN go build line a plain command", r, s)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildAsDockerfile builds the binary with the Dockerfile's flags (its
// TARGETARCH is this machine's, so the binary runs here) and returns its
// path.
func buildAsDockerfile(t *testing.T, root string, df dockerfile) string {
	t.Helper()
	vars := df.argDefaults()
	vars["TARGETOS"], vars["TARGETARCH"] = "linux", runtime.GOARCH
	b, err := df.goBuild(vars)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux"} {
		if !slices.Contains(b.env, want) {
			t.Errorf("the Dockerfile's go build runs without %s (env %v)", want, b.env)
		}
	}
	out := filepath.Join(t.TempDir(), "manager")
	args := slices.Clone(b.args)
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("the Dockerfile's go build has no -o: %v", args)
	}
	args[i+1] = out
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), b.env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, msg)
	}
	return out
}

func TestBinaryBuiltAsTheDockerfileSays(t *testing.T) {
	root := repoRoot(t)
	df := readDockerfile(t, root)
	bin := buildAsDockerfile(t, root, df)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary has a program interpreter (PT_INTERP): it is dynamically linked and needs a libc distroless/static lacks")
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("the binary needs shared libraries (DT_NEEDED) %v (%v)", libs, err)
		}
		for _, name := range []string{".symtab", ".debug_info"} {
			if f.Section(name) != nil {
				t.Errorf("the binary has a %s section: not stripped (-ldflags \"-s -w\")", name)
			}
		}
	})
	t.Run("no build paths (-trimpath)", func(t *testing.T) {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(root+string(filepath.Separator))) {
			t.Errorf("the binary contains the build directory %s", root)
		}
	})
	t.Run("starts", func(t *testing.T) {
		out, err := exec.Command(bin, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("manager --help: %v\n%s", err, out)
		}
		for _, flag := range []string{"-leader-election-id", "-watch-namespaces", "-watch-label-selector", "-max-concurrent-reconciles", "-ca-file"} {
			if !strings.Contains(string(out), flag) {
				t.Errorf("manager --help does not list %s:\n%s", flag, out)
			}
		}
	})
}

func TestFinalStageIsDistrolessNonRoot(t *testing.T) {
	stage := readDockerfile(t, repoRoot(t)).finalStage()
	if len(stage) == 0 || !strings.HasPrefix(stage[0], "FROM gcr.io/distroless/static") || !strings.HasSuffix(stage[0], ":nonroot") {
		t.Fatalf("final stage %q: want FROM gcr.io/distroless/static...:nonroot", stage)
	}
	if !slices.Contains(stage, "USER 65532:65532") {
		t.Errorf("final stage %q: want USER 65532:65532", stage)
	}
	if !slices.Contains(stage, `ENTRYPOINT ["/manager"]`) {
		t.Errorf("final stage %q: want ENTRYPOINT [\"/manager\"]", stage)
	}
}

// TestDockerfileCopiesEverySource: each package the binary is built from
// lies under a directory the builder stage copies, so a new top-level
// package cannot break the image build unnoticed.
func TestDockerfileCopiesEverySource(t *testing.T) {
	root := repoRoot(t)
	var copied []string
	for _, l := range readDockerfile(t, root).lines {
		fields := strings.Fields(l)
		if len(fields) >= 3 && fields[0] == "COPY" && !strings.HasPrefix(fields[1], "--from") {
			for _, src := range fields[1 : len(fields)-1] {
				copied = append(copied, strings.TrimSuffix(src, "/"))
			}
		}
	}
	list := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		top := strings.Split(filepath.ToSlash(rel), "/")[0]
		if !slices.Contains(copied, top) {
			t.Errorf("package %s is not copied into the builder stage (COPY sources: %v)", rel, copied)
		}
	}
}
