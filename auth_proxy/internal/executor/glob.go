package executor

import (
	"fmt"
	"path"
	"strings"
)

// Glob matches slash paths relative to a search root with deepagents' rules:
// a pattern without "/" matches the basename at any depth; otherwise segments
// match in order, "**" spans zero or more directories (never dot-directories);
// a leading "/" anchors to the root; names starting with "." match only a
// segment pattern starting with "."; {a,b} alternatives are expanded.
type Glob struct {
	alts [][]string // each alternative split into segments; len 1 = basename match
	base []bool
}

// NewGlob compiles a pattern.
func NewGlob(pattern string) (*Glob, error) {
	if pattern == "" {
		return nil, fmt.Errorf("pattern must not be empty")
	}
	alts, err := expandBraces(pattern, 0)
	if err != nil {
		return nil, err
	}
	g := &Glob{}
	for _, a := range alts {
		isBase := !strings.Contains(a, "/")
		a = strings.TrimPrefix(a, "/")
		segs := strings.Split(a, "/")
		for _, s := range segs {
			if s == ".." {
				return nil, fmt.Errorf("pattern %q: '..' segments are not allowed", pattern)
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("pattern %q: %v", pattern, err)
			}
		}
		g.alts = append(g.alts, segs)
		g.base = append(g.base, isBase)
	}
	return g, nil
}

func expandBraces(p string, depth int) ([]string, error) {
	if depth > 8 {
		return nil, fmt.Errorf("pattern %q: brace expansion too deep", p)
	}
	open := strings.IndexByte(p, '{')
	if open < 0 {
		return []string{p}, nil
	}
	level, closeAt := 0, -1
	var parts []string
	last := open + 1
	for i := open; i < len(p); i++ {
		switch p[i] {
		case '{':
			level++
		case ',':
			if level == 1 {
				parts = append(parts, p[last:i])
				last = i + 1
			}
		case '}':
			level--
			if level == 0 {
				closeAt = i
			}
		}
		if closeAt >= 0 {
			break
		}
	}
	if closeAt < 0 {
		return nil, fmt.Errorf("pattern %q: unbalanced braces", p)
	}
	parts = append(parts, p[last:closeAt])
	var out []string
	for _, part := range parts {
		more, err := expandBraces(p[:open]+part+p[closeAt+1:], depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
		if len(out) > 256 {
			return nil, fmt.Errorf("pattern %q: too many brace alternatives", p)
		}
	}
	return out, nil
}

func matchSeg(pattern, name string) bool {
	if strings.HasPrefix(name, ".") && !strings.HasPrefix(pattern, ".") {
		return false
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

func matchSegs(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		if matchSegs(pat[1:], name) {
			return true
		}
		for i := 0; i < len(name)-1; i++ { // ** spans directories only, never the file
			if strings.HasPrefix(name[i], ".") {
				return false
			}
			if matchSegs(pat[1:], name[i+1:]) {
				return true
			}
		}
		return false
	}
	return len(name) > 0 && matchSeg(pat[0], name[0]) && matchSegs(pat[1:], name[1:])
}

// Match reports whether rel (slash separated, relative to the root) matches.
func (g *Glob) Match(rel string) bool {
	name := strings.Split(rel, "/")
	for i, segs := range g.alts {
		if g.base[i] {
			if matchSeg(segs[0], name[len(name)-1]) {
				return true
			}
			continue
		}
		if matchSegs(segs, name) {
			return true
		}
	}
	return false
}
