// Package docs checks the repository's own documentation: every relative
// link in README.md and docs/*.md (and every runbook_url an alert carries)
// must name a file inside the repository, and every #anchor a heading of that
// file, spelled the way GitHub spells heading anchors. It reads local files
// only: it never follows an external link and needs no network, so it stays
// fast enough for every `go test ./...`.
package docs

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
)

// RepoURL is the address of this repository on GitHub. A link to
// RepoURL/blob/<branch>/<path> is checked like the relative link <path>:
// alerts carry such links because Alertmanager cannot resolve relative ones.
const RepoURL = "https://github.com/tenantpolicy/purchase-policy-controller"

// Broken is a link that does not resolve.
type Broken struct {
	File    string // the Markdown file, relative to the repository root
	Line    int    // 1-based line of the link
	Link    string // the destination as written
	Problem string
}

func (b Broken) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", b.File, b.Line, b.Link, b.Problem)
}

// Link is one link destination of a Markdown file.
type Link struct {
	Dest string
	Line int
}

var md = goldmark.New(goldmark.WithExtensions(extension.GFM))

// Parse returns the links of a Markdown document and the anchors its
// headings get on GitHub.
func Parse(src []byte) (links []Link, anchors map[string]bool) {
	doc := md.Parser().Parse(text.NewReader(src))
	anchors = map[string]bool{}
	seen := map[string]int{}
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			anchors[Slug(plainText(n, src), seen)] = true
		case *ast.Link:
			links = append(links, Link{Dest: string(n.Destination), Line: lineOf(n, src)})
		case *ast.Image:
			links = append(links, Link{Dest: string(n.Destination), Line: lineOf(n, src)})
		}
		return ast.WalkContinue, nil
	})
	return links, anchors
}

// plainText is a heading's text as GitHub slugs it: the text of every inline
// node, code spans and link texts included, markup left out.
func plainText(n ast.Node, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch c := c.(type) {
		case *ast.Text:
			b.Write(c.Segment.Value(src))
		case *ast.String:
			b.Write(c.Value)
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// lineOf is the 1-based line where a link's text starts (or its block, for a
// link without text).
func lineOf(n ast.Node, src []byte) int {
	offset := -1
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if t, ok := c.(*ast.Text); ok && entering && offset < 0 {
			offset = t.Segment.Start
			return ast.WalkStop, nil
		}
		return ast.WalkContinue, nil
	})
	for p := n; offset < 0 && p != nil; p = p.Parent() {
		if p.Type() == ast.TypeBlock && p.Lines().Len() > 0 {
			offset = p.Lines().At(0).Start
		}
	}
	if offset < 0 {
		return 0
	}
	return bytes.Count(src[:offset], []byte("\n")) + 1
}

// Slug is the anchor GitHub gives a heading with this text: lower case,
// every character but letters, marks, digits, '_', '-' and space dropped,
// each space turned into '-'; a repeated slug gets -1, -2, ... (seen counts
// the slugs of the document so far).
func Slug(heading string, seen map[string]int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r):
			b.WriteRune(r)
		}
	}
	slug := b.String()
	n := seen[slug]
	seen[slug] = n + 1
	if n > 0 {
		return fmt.Sprintf("%s-%d", slug, n)
	}
	return slug
}

// lineAnchor is GitHub's anchor of a line (range) in a file that is not Markdown.
var lineAnchor = regexp.MustCompile(`^L\d+(-L\d+)?$`)

// Checker resolves links against one repository checkout, reading each
// target file once.
type Checker struct {
	Root    string
	anchors map[string]map[string]bool
}

// NewChecker returns a Checker for the repository at root.
func NewChecker(root string) (*Checker, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return &Checker{Root: abs, anchors: map[string]map[string]bool{}}, nil
}

// CheckFiles checks every link of the given Markdown files (paths relative
// to the root) and returns the broken ones, sorted by file and line.
func (c *Checker) CheckFiles(files ...string) ([]Broken, error) {
	var broken []Broken
	for _, f := range files {
		src, err := os.ReadFile(filepath.Join(c.Root, f))
		if err != nil {
			return nil, err
		}
		links, anchors := Parse(src)
		c.anchors[filepath.ToSlash(filepath.Clean(f))] = anchors
		for _, l := range links {
			if problem := c.Resolve(f, l.Dest); problem != "" {
				broken = append(broken, Broken{File: f, Line: l.Line, Link: l.Dest, Problem: problem})
			}
		}
	}
	sort.SliceStable(broken, func(i, j int) bool {
		if broken[i].File != broken[j].File {
			return broken[i].File < broken[j].File
		}
		return broken[i].Line < broken[j].Line
	})
	return broken, nil
}

// Resolve checks one link destination written in file (relative to the
// root) and returns what is wrong with it, "" when it resolves. External
// links (any scheme but this repository's own GitHub address) are not
// checked.
func (c *Checker) Resolve(file, dest string) string {
	target, fragment, ok := c.local(file, dest)
	if !ok {
		return ""
	}
	if target == "" {
		return "leaves the repository"
	}
	info, err := os.Stat(filepath.Join(c.Root, filepath.FromSlash(target)))
	if err != nil {
		return fmt.Sprintf("no file %s", target)
	}
	if fragment == "" {
		return ""
	}
	if info.IsDir() || !strings.EqualFold(filepath.Ext(target), ".md") {
		if lineAnchor.MatchString(fragment) {
			return ""
		}
		return fmt.Sprintf("#%s: %s is not Markdown, only line anchors (#L12) resolve there", fragment, target)
	}
	anchors, err := c.anchorsOf(target)
	if err != nil {
		return err.Error()
	}
	if !anchors[strings.ToLower(fragment)] {
		return fmt.Sprintf("no heading in %s has the anchor #%s", target, fragment)
	}
	return ""
}

// local splits a destination into a repository path (slash-separated,
// relative to the root; "" when it climbs out of the repository) and a
// fragment. ok is false for links this checker leaves alone.
func (c *Checker) local(file, dest string) (target, fragment string, ok bool) {
	u, err := url.Parse(dest)
	if err != nil {
		return "", "", false
	}
	fragment = u.Fragment
	switch {
	case strings.HasPrefix(dest, RepoURL+"/blob/") || strings.HasPrefix(dest, RepoURL+"/tree/"):
		rest := strings.TrimPrefix(strings.TrimPrefix(u.Path, strings.TrimPrefix(RepoURL, "https://github.com")), "/")
		parts := strings.SplitN(rest, "/", 3) // blob, branch, path
		if len(parts) < 3 {
			return "", fragment, true
		}
		return clean(parts[2]), fragment, true
	case u.Scheme != "" || u.Host != "" || strings.HasPrefix(dest, "//"):
		return "", "", false
	case u.Path == "":
		return filepath.ToSlash(filepath.Clean(file)), fragment, true
	case strings.HasPrefix(u.Path, "/"):
		return clean(strings.TrimPrefix(u.Path, "/")), fragment, true // GitHub resolves /x from the repository root
	}
	return clean(filepath.ToSlash(filepath.Join(filepath.Dir(file), u.Path))), fragment, true
}

// clean normalises a repository path; "" when it leaves the repository.
func clean(p string) string {
	p = filepath.ToSlash(filepath.Clean(p))
	if p == ".." || strings.HasPrefix(p, "../") {
		return ""
	}
	return p
}

func (c *Checker) anchorsOf(target string) (map[string]bool, error) {
	if a, ok := c.anchors[target]; ok {
		return a, nil
	}
	src, err := os.ReadFile(filepath.Join(c.Root, filepath.FromSlash(target)))
	if err != nil {
		return nil, err
	}
	_, a := Parse(src)
	c.anchors[target] = a
	return a, nil
}
