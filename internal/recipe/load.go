package recipe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"

	"github.com/criu-forge/criu-forge/recipes"
)

// Diagnostic is one problem found in a recipe, at a place in its file.
type Diagnostic struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Path   string `json:"path"` // e.g. series[2].pr
	Msg    string `json:"message"`
}

func (d Diagnostic) String() string {
	where := d.File
	if d.Line > 0 {
		where = fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Column)
	}
	if d.Path != "" {
		return fmt.Sprintf("%s: %s: %s", where, d.Path, d.Msg)
	}
	return fmt.Sprintf("%s: %s", where, d.Msg)
}

// Error lists every problem that makes a recipe unusable.
type Error struct{ Diagnostics []Diagnostic }

func (e *Error) Error() string {
	lines := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads, validates and completes (defaults) the recipe at path. Problems
// that do not stop it from working come back as warnings.
func Load(path string) (*Recipe, []Diagnostic, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read recipe: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for a recipe already in memory; path is used in messages and
// to find the patch directory.
func Parse(path string, data []byte) (*Recipe, []Diagnostic, error) {
	v := &validator{file: path, nodes: map[string]*yaml.Node{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, &Error{[]Diagnostic{yamlSyntaxError(path, err)}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil, &Error{[]Diagnostic{{File: path, Line: 1, Column: 1, Msg: "empty recipe; expected a mapping with name, upstream and targets (see docs/recipes.md)"}}}
	}
	root := doc.Content[0]
	instance, err := v.toJSON(root, nil)
	if err != nil {
		return nil, nil, &Error{[]Diagnostic{*v.diag(err.(nodeError).node, nil, err.Error())}}
	}
	if err := v.schemaCheck(instance); err != nil {
		return nil, nil, err
	}
	r := &Recipe{Path: path}
	if err := root.Decode(r); err != nil {
		return nil, nil, &Error{[]Diagnostic{{File: path, Msg: err.Error()}}}
	}
	v.check(r)
	if len(v.errs) > 0 {
		return nil, v.warns, &Error{v.errs}
	}
	return r, v.warns, nil
}

func yamlSyntaxError(path string, err error) Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			line, _ = strconv.Atoi(n)
			msg = after
		}
	}
	return Diagnostic{File: path, Line: line, Column: 1, Msg: "not valid YAML: " + msg}
}

type validator struct {
	file  string
	nodes map[string]*yaml.Node // JSON pointer -> value node
	keys  map[string]*yaml.Node // JSON pointer -> key node of a mapping entry
	errs  []Diagnostic
	warns []Diagnostic
}

type nodeError struct {
	node *yaml.Node
	msg  string
}

func (e nodeError) Error() string { return e.msg }

// toJSON converts a YAML node into the plain values a JSON Schema validator
// takes, remembering where each value stands in the file.
func (v *validator) toJSON(n *yaml.Node, path []string) (any, error) {
	ptr := pointer(path)
	v.nodes[ptr] = n
	switch n.Kind {
	case yaml.AliasNode:
		return v.toJSON(n.Alias, path)
	case yaml.MappingNode:
		if v.keys == nil {
			v.keys = map[string]*yaml.Node{}
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, nodeError{k, "a key must be a plain word"}
			}
			if _, dup := m[k.Value]; dup {
				return nil, nodeError{k, fmt.Sprintf("key %q appears twice", k.Value)}
			}
			child := append(append([]string(nil), path...), k.Value)
			v.keys[pointer(child)] = k
			x, err := v.toJSON(val, child)
			if err != nil {
				return nil, err
			}
			m[k.Value] = x
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			x, err := v.toJSON(c, append(append([]string(nil), path...), strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			s[i] = x
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			b, err := strconv.ParseBool(n.Value)
			if err != nil {
				var x bool
				if derr := n.Decode(&x); derr != nil {
					return nil, nodeError{n, "not a boolean: " + n.Value}
				}
				return x, nil
			}
			return b, nil
		case "!!int":
			i, err := strconv.ParseInt(n.Value, 0, 64)
			if err != nil {
				return json.Number(n.Value), nil
			}
			return i, nil
		case "!!float":
			return json.Number(n.Value), nil
		default:
			return n.Value, nil
		}
	}
	return nil, nodeError{n, "unsupported YAML node"}
}

func pointer(path []string) string {
	if len(path) == 0 {
		return ""
	}
	return "/" + strings.Join(path, "/")
}

// dotted renders a location the way users read it: series[2].pr
func dotted(path []string) string {
	var b strings.Builder
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			fmt.Fprintf(&b, "[%s]", p)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func (v *validator) diag(n *yaml.Node, path []string, msg string) *Diagnostic {
	d := &Diagnostic{File: v.file, Path: dotted(path), Msg: msg}
	if n != nil {
		d.Line, d.Column = n.Line, n.Column
	}
	return d
}

func (v *validator) errorAt(path []string, msg string) {
	v.errs = append(v.errs, *v.diag(v.nodes[pointer(path)], path, msg))
}

func (v *validator) warnAt(path []string, msg string) {
	v.warns = append(v.warns, *v.diag(v.nodes[pointer(path)], path, msg))
}

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	schemaDoc   map[string]any
	compileErr  error
)

func schema() (*jsonschema.Schema, map[string]any, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(recipes.Schema))
		if err != nil {
			compileErr = fmt.Errorf("recipe schema: %w", err)
			return
		}
		schemaDoc, _ = doc.(map[string]any)
		c := jsonschema.NewCompiler()
		if err := c.AddResource("recipe.json", doc); err != nil {
			compileErr = fmt.Errorf("recipe schema: %w", err)
			return
		}
		compiled, compileErr = c.Compile("recipe.json")
	})
	return compiled, schemaDoc, compileErr
}

var printer = message.NewPrinter(language.English)

func (v *validator) schemaCheck(instance any) error {
	sch, _, err := schema()
	if err != nil {
		return err
	}
	err = sch.Validate(instance)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var leaves []*jsonschema.ValidationError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	seen := map[string]bool{}
	for _, leaf := range leaves {
		d := v.explain(leaf)
		if key := d.String(); !seen[key] {
			seen[key] = true
			v.errs = append(v.errs, d)
		}
	}
	sort.SliceStable(v.errs, func(i, j int) bool {
		if v.errs[i].Line != v.errs[j].Line {
			return v.errs[i].Line < v.errs[j].Line
		}
		return v.errs[i].Column < v.errs[j].Column
	})
	return &Error{v.errs}
}

// explain turns one schema violation into a message that says what is
// expected, in the recipe's own terms.
func (v *validator) explain(e *jsonschema.ValidationError) Diagnostic {
	path := e.InstanceLocation
	node := v.nodes[pointer(path)]
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		child := append(append([]string(nil), path...), k.Properties[0])
		msg := fmt.Sprintf("unknown key %q", k.Properties[0])
		if allowed := allowedKeys(path); len(allowed) > 0 {
			msg += "; expected one of: " + strings.Join(allowed, ", ")
		}
		return *v.diag(v.keys[pointer(child)], child, msg)
	case *kind.Required:
		return *v.diag(node, path, fmt.Sprintf("missing required key %q", k.Missing[0]))
	case *kind.Type:
		return *v.diag(node, path, fmt.Sprintf("wrong type: got %s, expected %s", k.Got, strings.Join(k.Want, " or ")))
	case *kind.Enum:
		var want []string
		for _, w := range k.Want {
			want = append(want, fmt.Sprint(w))
		}
		return *v.diag(node, path, fmt.Sprintf("%v is not allowed here; expected one of: %s", k.Got, strings.Join(want, ", ")))
	case *kind.Pattern:
		msg := fmt.Sprintf("%q is not well formed", k.Got)
		if desc := describe(path); desc != "" {
			msg += " (" + desc + ")"
		} else {
			msg += fmt.Sprintf(" (must match %s)", k.Want)
		}
		return *v.diag(node, path, msg)
	case *kind.MinProperties, *kind.MaxProperties:
		allowed := allowedKeys(path)
		return *v.diag(node, path, "needs exactly one of: "+strings.Join(allowed, ", "))
	case *kind.MinItems:
		return *v.diag(node, path, fmt.Sprintf("needs at least %d item(s)", k.Want))
	}
	return *v.diag(node, path, e.ErrorKind.LocalizedString(printer))
}

// schemaAt follows an instance location through the schema document
// (properties, items, additionalProperties, $ref) to the schema that
// describes the value there.
func schemaAt(path []string) map[string]any {
	_, doc, err := schema()
	if err != nil {
		return nil
	}
	cur := doc
	resolve := func(s map[string]any) map[string]any {
		for i := 0; i < 8 && s != nil; i++ {
			ref, ok := s["$ref"].(string)
			if !ok {
				break
			}
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			if !ok {
				return nil
			}
			defs, _ := doc["$defs"].(map[string]any)
			s, _ = defs[name].(map[string]any)
		}
		return s
	}
	cur = resolve(cur)
	for _, p := range path {
		if cur == nil {
			return nil
		}
		if _, err := strconv.Atoi(p); err == nil {
			next, _ := cur["items"].(map[string]any)
			cur = resolve(next)
			continue
		}
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[p].(map[string]any)
		if !ok {
			next, _ = cur["additionalProperties"].(map[string]any)
		}
		cur = resolve(next)
	}
	return cur
}

func allowedKeys(path []string) []string {
	s := schemaAt(path)
	props, _ := s["properties"].(map[string]any)
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func describe(path []string) string {
	desc, _ := schemaAt(path)["description"].(string)
	return desc
}
