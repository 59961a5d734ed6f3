package templates

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"text/template/parse"
	"unicode/utf8"

	"github.com/funnel-email/funnel/campaign"
)

var dataType = reflect.TypeFor[*Data]()

// checker walks a parsed template and reports, with line and column, what
// Go's parser accepts but Funnel refuses: fields the data does not have,
// loops and template calls. It also notes whether the unsubscribe URL is
// used.
type checker struct {
	field           string
	src             string
	errs            []campaign.FieldError
	usesUnsubscribe bool
}

func (c *checker) errAt(pos parse.Pos, format string, args ...any) {
	line, col := position(c.src, int(pos))
	c.errs = append(c.errs, campaign.FieldError{Field: c.field, Line: line, Column: col, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) walk(n parse.Node, dot reflect.Type) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, x := range n.Nodes {
			c.walk(x, dot)
		}
	case *parse.ActionNode:
		c.pipe(n.Pipe, dot)
	case *parse.IfNode:
		c.pipe(n.Pipe, dot)
		c.walk(n.List, dot)
		c.walk(n.ElseList, dot)
	case *parse.WithNode:
		c.walk(n.List, c.pipe(n.Pipe, dot))
		c.walk(n.ElseList, dot)
	case *parse.RangeNode:
		c.errAt(c.keyword(n.Pos, "range"), "{{range}} is not supported: template data holds no lists")
	case *parse.TemplateNode:
		c.errAt(c.keyword(n.Pos, "template"), "{{template}} and {{block}} are not supported")
	}
}

// keyword finds the keyword that starts the action at pos: the parser
// positions range and template nodes after it.
func (c *checker) keyword(pos parse.Pos, kw string) parse.Pos {
	if i := strings.LastIndex(c.src[:min(int(pos)+len(kw), len(c.src))], kw); i >= 0 {
		return parse.Pos(i)
	}
	return pos
}

// pipe checks a pipeline and returns the type it yields, or nil when that
// is not known statically (function results, variables).
func (c *checker) pipe(p *parse.PipeNode, dot reflect.Type) reflect.Type {
	if p == nil {
		return nil
	}
	var t reflect.Type
	for _, cmd := range p.Cmds {
		t = nil
		for i, arg := range cmd.Args {
			at := c.arg(arg, dot)
			if i == 0 && len(cmd.Args) == 1 {
				t = at
			}
		}
	}
	if len(p.Decl) > 0 {
		return nil
	}
	return t
}

func (c *checker) arg(n parse.Node, dot reflect.Type) reflect.Type {
	switch n := n.(type) {
	case *parse.FieldNode:
		// The parser positions a chain of fields at its second field.
		start := n.Pos
		if len(n.Ident) > 1 {
			start -= parse.Pos(len(n.Ident[0]) + 1)
		}
		return c.resolve(dot, n.Ident, start)
	case *parse.VariableNode:
		// $.A.B is positioned at .A, its first field.
		if n.Ident[0] == "$" {
			return c.resolve(dataType, n.Ident[1:], n.Pos)
		}
	case *parse.ChainNode:
		var base reflect.Type
		if p, ok := n.Node.(*parse.PipeNode); ok {
			base = c.pipe(p, dot)
		} else {
			base = c.arg(n.Node, dot)
		}
		return c.resolve(base, n.Field, n.Pos)
	case *parse.PipeNode:
		return c.pipe(n, dot)
	case *parse.DotNode:
		return dot
	}
	return nil
}

// resolve follows a chain of field or method names from type t, reporting
// the first name t does not have. pos is where the chain starts in the
// source; every name is preceded by a dot.
func (c *checker) resolve(t reflect.Type, idents []string, pos parse.Pos) reflect.Type {
	off := 0
	for _, name := range idents {
		if t == nil {
			return nil
		}
		if t == dataType && name == "UnsubscribeURL" {
			c.usesUnsubscribe = true
		}
		next, ok := member(t, name)
		if !ok {
			c.errAt(pos+parse.Pos(off), "unknown field %q in %s (%s)", name, typeName(t), describeFields(members(t)))
			return nil
		}
		t = next
		off += 1 + len(name)
	}
	return t
}

// member returns the type of field or method name of t. A nil type means
// the value is dynamic (an interface), so nothing further can be checked.
func member(t reflect.Type, name string) (reflect.Type, bool) {
	base := t
	for base.Kind() == reflect.Pointer {
		base = base.Elem()
	}
	if m, ok := reflect.PointerTo(base).MethodByName(name); ok && m.IsExported() {
		if m.Type.NumOut() == 0 {
			return nil, true
		}
		return dynamic(m.Type.Out(0)), true
	}
	switch base.Kind() {
	case reflect.Struct:
		if f, ok := base.FieldByName(name); ok && f.IsExported() {
			return dynamic(f.Type), true
		}
		return nil, false
	case reflect.Map, reflect.Interface:
		return nil, true
	}
	return nil, false
}

func dynamic(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

func members(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	if t.Kind() == reflect.Struct && t.PkgPath() != "time" {
		for f := range t.Fields() {
			if f.IsExported() {
				names = append(names, f.Name)
			}
		}
	}
	pt := reflect.PointerTo(t)
	for m := range pt.Methods() {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func typeName(t reflect.Type) string {
	switch t {
	case dataType:
		return "the template data"
	case reflect.TypeFor[ContactData]():
		return ".Contact"
	case reflect.TypeFor[CampaignData]():
		return ".Campaign"
	case reflect.TypeFor[SenderData]():
		return ".Sender"
	}
	return t.String()
}

// position turns a byte offset in src into a 1-based line and a 1-based
// column counted in characters, as an editor shows them.
func position(src string, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	before := src[:off]
	line = 1 + strings.Count(before, "\n")
	start := strings.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCountInString(before[start:])
}
