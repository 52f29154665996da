// Command helm-render renders a Helm chart's templates with Go's text/template and the subset
// of Helm's functions the Gatehouse chart uses, so that the chart is tested where no helm
// binary exists (test/deploy/helm.test.ts). It is not Helm: values are merged by the caller,
// and a function the chart starts to use must be added here, or rendering fails with
// "function ... not defined".
//
// Input (stdin, JSON): {"templatesDir", "chartName", "values", "release", "chart", "apiVersions"}.
// Output (stdout, JSON): [{"name": "<chart>/templates/<file>", "content": "..."}] for every
// template file whose name does not start with "_", NOTES.txt included. Errors go to stderr
// with exit status 1.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

type input struct {
	TemplatesDir string                 `json:"templatesDir"`
	ChartName    string                 `json:"chartName"`
	Values       map[string]interface{} `json:"values"`
	Release      map[string]interface{} `json:"release"`
	Chart        map[string]interface{} `json:"chart"`
	APIVersions  []string               `json:"apiVersions"`
	KubeVersion  map[string]interface{} `json:"kubeVersion"`
}

type output struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// APIVersions mirrors Helm's .Capabilities.APIVersions and its Has method.
type APIVersions []string

// Has reports whether the cluster serves an API group version (or version/Kind).
func (a APIVersions) Has(version string) bool {
	for _, v := range a {
		if v == version {
			return true
		}
	}
	return false
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var in input
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	if err := decoder.Decode(&in); err != nil {
		fail(fmt.Errorf("reading the input: %w", err))
	}
	values := normalize(in.Values)
	data := map[string]interface{}{
		"Values":  values,
		"Release": normalize(in.Release),
		"Chart":   normalize(in.Chart),
		"Capabilities": map[string]interface{}{
			"APIVersions": APIVersions(in.APIVersions),
			"KubeVersion": normalize(in.KubeVersion),
		},
	}
	docs, err := render(in.TemplatesDir, in.ChartName, data)
	if err != nil {
		fail(err)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	if err := out.Encode(docs); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err.Error())
	os.Exit(1)
}

// normalize turns json.Number into int64 (integral) or float64, as Helm's YAML values are.
func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		for k, child := range t {
			t[k] = normalize(child)
		}
		return t
	case []interface{}:
		for i, child := range t {
			t[i] = normalize(child)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	default:
		return v
	}
}

func render(dir, chart string, data map[string]interface{}) ([]output, error) {
	var files []string
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	root := template.New("gotpl").Option("missingkey=zero")
	funcs := funcMap(root)
	root.Funcs(funcs)
	names := make([]string, 0, len(files))
	for _, file := range files {
		rel, _ := filepath.Rel(dir, file)
		name := chart + "/templates/" + filepath.ToSlash(rel)
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if _, err := root.New(name).Parse(string(text)); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	var docs []output
	for _, name := range names {
		if strings.HasPrefix(filepath.Base(name), "_") {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return nil, err
		}
		// Helm writes missing values as empty text.
		docs = append(docs, output{Name: name, Content: strings.ReplaceAll(buf.String(), "<no value>", "")})
	}
	return docs, nil
}

func funcMap(root *template.Template) template.FuncMap {
	includeDepth := 0
	return template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			includeDepth++
			defer func() { includeDepth-- }()
			if includeDepth > 100 {
				return "", fmt.Errorf("include %q: too deep", name)
			}
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
		"tpl": func(text string, data interface{}) (string, error) {
			t, err := root.Clone()
			if err != nil {
				return "", err
			}
			t, err = t.New("tpl").Parse(text)
			if err != nil {
				return "", err
			}
			var buf bytes.Buffer
			err = t.Execute(&buf, data)
			return strings.ReplaceAll(buf.String(), "<no value>", ""), err
		},
		"required": func(message string, v interface{}) (interface{}, error) {
			if v == nil {
				return nil, errors.New(message)
			}
			if s, ok := v.(string); ok && s == "" {
				return nil, errors.New(message)
			}
			return v, nil
		},
		"fail": func(message string) (string, error) { return "", errors.New(message) },
		"default": func(d interface{}, given ...interface{}) interface{} {
			if len(given) == 0 || empty(given[0]) {
				return d
			}
			return given[0]
		},
		"empty": empty,
		"coalesce": func(v ...interface{}) interface{} {
			for _, x := range v {
				if !empty(x) {
					return x
				}
			}
			return nil
		},
		"ternary": func(yes, no interface{}, cond bool) interface{} {
			if cond {
				return yes
			}
			return no
		},
		"quote": func(v ...interface{}) string {
			parts := []string{}
			for _, x := range v {
				if x != nil {
					parts = append(parts, strconv.Quote(toString(x)))
				}
			}
			return strings.Join(parts, " ")
		},
		"squote": func(v ...interface{}) string {
			parts := []string{}
			for _, x := range v {
				if x != nil {
					parts = append(parts, "'"+toString(x)+"'")
				}
			}
			return strings.Join(parts, " ")
		},
		"toString": toString,
		"toYaml": func(v interface{}) (string, error) {
			var b strings.Builder
			if err := emitYaml(&b, toPlain(v), 0); err != nil {
				return "", err
			}
			return strings.TrimSuffix(b.String(), "\n"), nil
		},
		"toJson": func(v interface{}) (string, error) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			err := enc.Encode(toPlain(v))
			return strings.TrimSuffix(buf.String(), "\n"), err
		},
		"indent": indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"sha256sum": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		},
		"trunc": func(n int, s string) string {
			if n >= 0 && len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trim":       strings.TrimSpace,
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix":  func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
		"hasSuffix":  func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
		"lower":      strings.ToLower,
		"upper":      strings.ToUpper,
		"regexMatch": func(re, s string) (bool, error) { return regexp.MatchString(re, s) },
		"splitList":  func(sep, s string) []interface{} { return stringsToList(strings.Split(s, sep)) },
		"join": func(sep string, v interface{}) string {
			parts := []string{}
			for _, x := range toList(v) {
				parts = append(parts, toString(x))
			}
			return strings.Join(parts, sep)
		},
		"list": func(v ...interface{}) []interface{} { return append([]interface{}{}, v...) },
		"append": func(l interface{}, v interface{}) []interface{} {
			return append(append([]interface{}{}, toList(l)...), v)
		},
		"first": func(l interface{}) interface{} {
			if items := toList(l); len(items) > 0 {
				return items[0]
			}
			return nil
		},
		"last": func(l interface{}) interface{} {
			if items := toList(l); len(items) > 0 {
				return items[len(items)-1]
			}
			return nil
		},
		"initial": func(l interface{}) []interface{} {
			if items := toList(l); len(items) > 0 {
				return items[:len(items)-1]
			}
			return []interface{}{}
		},
		"dict": func(kv ...interface{}) (map[string]interface{}, error) {
			if len(kv)%2 != 0 {
				return nil, errors.New("dict: odd number of arguments")
			}
			d := map[string]interface{}{}
			for i := 0; i < len(kv); i += 2 {
				d[toString(kv[i])] = kv[i+1]
			}
			return d, nil
		},
		"hasKey": func(d map[string]interface{}, key string) bool { _, ok := d[key]; return ok },
		"get": func(d map[string]interface{}, key string) interface{} {
			if v, ok := d[key]; ok {
				return v
			}
			return ""
		},
		"set":   func(d map[string]interface{}, key string, v interface{}) map[string]interface{} { d[key] = v; return d },
		"unset": func(d map[string]interface{}, key string) map[string]interface{} { delete(d, key); return d },
		"keys": func(d map[string]interface{}) []interface{} {
			out := []string{}
			for k := range d {
				out = append(out, k)
			}
			sort.Strings(out)
			return stringsToList(out)
		},
		"deepCopy": func(v interface{}) interface{} { return deepCopy(toPlain(v)) },
		"mergeOverwrite": func(dst map[string]interface{}, srcs ...map[string]interface{}) map[string]interface{} {
			for _, src := range srcs {
				mergeInto(dst, src)
			}
			return dst
		},
		"kindIs": func(kind string, v interface{}) bool { return kindOf(v) == kind },
		"has": func(needle interface{}, haystack interface{}) bool {
			for _, x := range toList(haystack) {
				if reflect.DeepEqual(toPlain(x), toPlain(needle)) {
					return true
				}
			}
			return false
		},
		"int": func(v interface{}) (int, error) {
			f, err := toFloat(v)
			return int(f), err
		},
		"add": func(a, b interface{}) (int64, error) {
			x, err := toFloat(a)
			if err != nil {
				return 0, err
			}
			y, err := toFloat(b)
			return int64(x + y), err
		},
	}
}

func empty(v interface{}) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return r.Len() == 0
	case reflect.Bool:
		return !r.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return r.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return r.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return r.Float() == 0
	}
	return false
}

func kindOf(v interface{}) string {
	switch v.(type) {
	case nil:
		return "invalid"
	case map[string]interface{}:
		return "map"
	case []interface{}:
		return "slice"
	case string:
		return "string"
	case bool:
		return "bool"
	case int, int64:
		return "int64"
	case float64:
		return "float64"
	}
	return reflect.ValueOf(v).Kind().String()
}

func toString(v interface{}) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case int64:
		return strconv.FormatInt(t, 10)
	case int:
		return strconv.Itoa(t)
	case float64:
		return formatFloat(t)
	case bool:
		return strconv.FormatBool(t)
	}
	return fmt.Sprint(v)
}

func toFloat(v interface{}) (float64, error) {
	switch t := v.(type) {
	case int:
		return float64(t), nil
	case int64:
		return float64(t), nil
	case float64:
		return t, nil
	case string:
		return strconv.ParseFloat(t, 64)
	}
	return 0, fmt.Errorf("not a number: %v", v)
}

func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func toList(v interface{}) []interface{} {
	switch t := v.(type) {
	case nil:
		return nil
	case []interface{}:
		return t
	case []string:
		return stringsToList(t)
	}
	r := reflect.ValueOf(v)
	if r.Kind() == reflect.Slice || r.Kind() == reflect.Array {
		out := make([]interface{}, r.Len())
		for i := range out {
			out[i] = r.Index(i).Interface()
		}
		return out
	}
	return []interface{}{v}
}

func stringsToList(s []string) []interface{} {
	out := make([]interface{}, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// toPlain converts template-side values (APIVersions, []string, int) into the plain kinds.
func toPlain(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		return t
	case []interface{}:
		return t
	case APIVersions:
		return stringsToList(t)
	case []string:
		return stringsToList(t)
	case int:
		return int64(t)
	}
	return v
}

func deepCopy(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(t))
		for k, child := range t {
			out[k] = deepCopy(toPlain(child))
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, child := range t {
			out[i] = deepCopy(toPlain(child))
		}
		return out
	}
	return v
}

// mergeInto deep-merges src into dst, src winning; maps merge key by key, other kinds replace.
func mergeInto(dst, src map[string]interface{}) {
	for k, v := range src {
		sv, srcMap := v.(map[string]interface{})
		dv, dstMap := dst[k].(map[string]interface{})
		if srcMap && dstMap {
			mergeInto(dv, sv)
		} else {
			dst[k] = deepCopy(toPlain(v))
		}
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

var (
	plainString = regexp.MustCompile(`^[A-Za-z_/][A-Za-z0-9_./@+=-]*( [A-Za-z0-9_./@+=()-]+)*$`)
	reserved    = map[string]bool{"true": true, "false": true, "yes": true, "no": true, "on": true,
		"off": true, "null": true, "y": true, "n": true, "~": true}
)

// scalar writes a YAML scalar; strings that a YAML reader could take for another type, or that
// hold YAML syntax, are double-quoted (a JSON string is a valid YAML double-quoted scalar).
func scalar(v interface{}) (string, error) {
	switch t := v.(type) {
	case nil:
		return "null", nil
	case bool:
		return strconv.FormatBool(t), nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case float64:
		return formatFloat(t), nil
	case string:
		if plainString.MatchString(t) && !reserved[strings.ToLower(t)] {
			return t, nil
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(t); err != nil {
			return "", err
		}
		return strings.TrimSuffix(buf.String(), "\n"), nil
	}
	return "", fmt.Errorf("toYaml: cannot write a %T", v)
}

// emitYaml writes block-style YAML with sorted keys, as Helm's toYaml does.
func emitYaml(b *strings.Builder, v interface{}, level int) error {
	pad := strings.Repeat(" ", level)
	switch t := toPlain(v).(type) {
	case map[string]interface{}:
		if len(t) == 0 {
			b.WriteString(pad + "{}\n")
			return nil
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			key, err := scalar(k)
			if err != nil {
				return err
			}
			if err := emitEntry(b, pad+key+":", t[k], level, false); err != nil {
				return err
			}
		}
	case []interface{}:
		if len(t) == 0 {
			b.WriteString(pad + "[]\n")
			return nil
		}
		for _, item := range t {
			if err := emitEntry(b, pad+"-", item, level, true); err != nil {
				return err
			}
		}
	default:
		s, err := scalar(t)
		if err != nil {
			return err
		}
		b.WriteString(pad + s + "\n")
	}
	return nil
}

// emitEntry writes `head value`: scalars and empty collections inline, maps and lists below.
func emitEntry(b *strings.Builder, head string, v interface{}, level int, inList bool) error {
	v = toPlain(v)
	switch t := v.(type) {
	case map[string]interface{}:
		if len(t) == 0 {
			b.WriteString(head + " {}\n")
			return nil
		}
		if inList {
			// The first key shares the dash's line; the others align with it.
			var inner strings.Builder
			if err := emitYaml(&inner, t, level+2); err != nil {
				return err
			}
			b.WriteString(head + " " + strings.TrimPrefix(inner.String(), strings.Repeat(" ", level+2)))
			return nil
		}
		b.WriteString(head + "\n")
		return emitYaml(b, t, level+2)
	case []interface{}:
		if len(t) == 0 {
			b.WriteString(head + " []\n")
			return nil
		}
		b.WriteString(head + "\n")
		if inList {
			return emitYaml(b, t, level+2)
		}
		return emitYaml(b, t, level)
	}
	s, err := scalar(v)
	if err != nil {
		return err
	}
	b.WriteString(head + " " + s + "\n")
	return nil
}
