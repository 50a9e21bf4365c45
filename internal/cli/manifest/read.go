// Package manifest reads Kubernetes manifests (files, directories, stdin;
// several YAML or JSON documents each) keeping where every document and field
// came from, and validates them offline against the project's generated CRDs
// with the API server's own schema, defaulting and CEL code.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Stdin is the name that reads standard input, as with kubectl -f -.
const Stdin = "-"

// manifestExts are the file names a directory is read for (kubectl's).
var manifestExts = []string{".yaml", ".yml", ".json"}

// Document is one manifest document and where it came from.
type Document struct {
	// Source is the file name ("<stdin>" for -).
	Source string
	// Line is the document's first line in Source (1-based).
	Line int
	// Object is the document as the API server decodes it.
	Object *unstructured.Unstructured
	root   *yaml3.Node
}

// Where names the document: "file:line".
func (d Document) Where() string { return d.Source + ":" + strconv.Itoa(d.Line) }

// Problem is one thing wrong with a manifest, at a line.
type Problem struct {
	Source  string
	Line    int
	Message string
}

func (p Problem) Error() string { return fmt.Sprintf("%s:%d: %s", p.Source, p.Line, p.Message) }

// Read reads every document of the named files, directories (their *.yaml,
// *.yml and *.json files, not recursive) and "-" (stdin), in order. Empty
// documents are skipped. A document that is not valid YAML is a Problem
// with the line Go's YAML parser names.
func Read(names []string, stdin io.Reader) ([]Document, error) {
	var docs []Document
	for _, name := range names {
		files, err := expand(name)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			var data []byte
			source := f
			if f == Stdin {
				source = "<stdin>"
				data, err = io.ReadAll(stdin)
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", source, err)
			}
			ds, err := Parse(source, data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
		}
	}
	return docs, nil
}

// expand turns a directory into its manifest files, sorted.
func expand(name string) ([]string, error) {
	if name == Stdin {
		return []string{Stdin}, nil
	}
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if !st.IsDir() {
		return []string{name}, nil
	}
	entries, err := os.ReadDir(name)
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", name, err)
	}
	var out []string
	for _, e := range entries {
		for _, ext := range manifestExts {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ext) {
				out = append(out, filepath.Join(name, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// chunk is the text of one document and its first line.
type chunk struct {
	line int
	text []byte
}

// split cuts data at "---" lines, as kubectl's YAML reader does: a separator
// may be followed only by spaces or a comment.
func split(source string, data []byte) ([]chunk, error) {
	var (
		out   []chunk
		cur   bytes.Buffer
		start = 1
		n     = 0
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("---")); ok {
			if t := bytes.TrimSpace(rest); len(t) > 0 && t[0] != '#' {
				return nil, Problem{Source: source, Line: n, Message: "a document separator (---) may only be followed by a comment"}
			}
			out = append(out, chunk{line: start, text: bytes.Clone(cur.Bytes())})
			cur.Reset()
			start = n + 1
			continue
		}
		cur.Write(line)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", source, err)
	}
	return append(out, chunk{line: start, text: cur.Bytes()}), nil
}

// yamlLine finds "line N" in a YAML parser's message.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse decodes every non-empty document of data, read from source.
func Parse(source string, data []byte) ([]Document, error) {
	chunks, err := split(source, data)
	if err != nil {
		return nil, err
	}
	var docs []Document
	for _, c := range chunks {
		var root yaml3.Node
		if err := yaml3.Unmarshal(c.text, &root); err != nil {
			return nil, syntaxProblem(source, c.line, err)
		}
		if len(root.Content) == 0 {
			continue // only comments or blank
		}
		js, err := yaml.YAMLToJSON(c.text)
		if err != nil {
			return nil, syntaxProblem(source, c.line, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, Problem{Source: source, Line: c.line + root.Content[0].Line - 1, Message: "not a Kubernetes object: " + err.Error()}
		}
		docs = append(docs, Document{Source: source, Line: c.line + root.Content[0].Line - 1, Object: u, root: root.Content[0]})
	}
	return docs, nil
}

// syntaxProblem places a YAML parser error at its line in the file.
func syntaxProblem(source string, first int, err error) error {
	msg := err.Error()
	line := first
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			line = first + n - 1
			msg = strings.Replace(msg, m[0]+": ", "", 1)
		}
	}
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "error converting YAML to JSON: "), "yaml: ")
	return Problem{Source: source, Line: line, Message: "invalid YAML: " + msg}
}

// LineOf returns the line of a field path as the API server writes it
// (spec.products[2].productID), or the deepest part of it the document
// has; the document's first line when none. A mapping key's line is where
// its key is written (spec:, not the first line under it).
func (d Document) LineOf(path string) int {
	n := d.root
	if n == nil {
		return d.Line
	}
	best := n.Line
	for _, seg := range pathSegments(path) {
		var line int
		n, line = child(n, seg)
		if n == nil {
			break
		}
		best = line
	}
	return d.Line + best - d.root.Line
}

// pathSegments splits "a.b[2].c" into a, b, [2], c.
func pathSegments(path string) []string {
	var out []string
	for _, part := range strings.Split(path, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			switch {
			case i < 0:
				out, part = append(out, part), ""
			case i > 0:
				out, part = append(out, part[:i]), part[i:]
			default:
				j := strings.IndexByte(part, ']')
				if j < 0 {
					return append(out, part)
				}
				out, part = append(out, part[:j+1]), part[j+1:]
			}
		}
	}
	return out
}

// child steps into a mapping key or a sequence index ("[2]") and returns
// the node and the line that names it (the key's, or the item's).
func child(n *yaml3.Node, seg string) (*yaml3.Node, int) {
	if idx, ok := strings.CutPrefix(seg, "["); ok {
		i, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
		if n.Kind != yaml3.SequenceNode || err != nil || i < 0 || i >= len(n.Content) {
			return nil, 0
		}
		return n.Content[i], n.Content[i].Line
	}
	if n.Kind != yaml3.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i+1], n.Content[i].Line
		}
	}
	return nil, 0
}

// Problems is a list of Problems; it is an error when not empty.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// AsProblems returns the Problems in err, if it holds any.
func AsProblems(err error) (Problems, bool) {
	var ps Problems
	if errors.As(err, &ps) {
		return ps, true
	}
	var p Problem
	if errors.As(err, &p) {
		return Problems{p}, true
	}
	return nil, false
}
