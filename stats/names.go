package stats

import (
	"regexp"
	"strings"
)

// The rules of Vitess's snake-case converter (go/stats/snake_case_converter.go), applied in
// order, then lower-cased: QueryErrorCounts → query_error_counts, ConnPoolWaitCount →
// conn_pool_wait_count, TabletStateName → tablet_state_name.
var snakeRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile("([a-z])([A-Z])"), "${1}_${2}"},
	{regexp.MustCompile("([A-Z])([A-Z][a-z])"), "${1}_${2}"},
	{regexp.MustCompile(`\.`), "_"},
	{regexp.MustCompile("-"), "_"},
}

// SnakeName is Vitess's Prometheus spelling of a variable or label name.
func SnakeName(name string) string {
	name = strings.NewReplacer("VSchema", "vschema", "VtGate", "vtgate").Replace(name)
	for _, r := range snakeRules {
		name = r.re.ReplaceAllString(name, r.repl)
	}
	return strings.ToLower(name)
}

// PromName is the Prometheus metric name Vitess's backend gives variable name in namespace:
// vttablet + QueryCounts → vttablet_query_counts. A name already carrying the namespace
// keeps it once.
func PromName(namespace, name string) string {
	s := strings.TrimPrefix(SnakeName(name), namespace+"_")
	if namespace == "" {
		return s
	}
	return namespace + "_" + s
}

// safeLabel is how Vitess stores one label value of a multi-label variable: its labels are
// joined with ".", so a "." inside a value becomes "_".
func safeLabel(v string) string { return strings.ReplaceAll(v, ".", "_") }

// JoinLabels is the key of a multi-label variable for these label values (Vitess's format:
// values joined with ".", dots inside a value replaced by "_"). Compute it once and pass it
// to AddKey when several variables share the labels.
func JoinLabels(values ...string) string {
	switch len(values) {
	case 0:
		return ""
	case 1:
		return safeLabel(values[0])
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(safeLabel(v))
	}
	return b.String()
}
