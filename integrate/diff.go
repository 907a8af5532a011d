package integrate

import (
	"fmt"
	"strings"
)

// Diff returns a unified diff (three lines of context) turning a into b,
// or "" when they are equal. It is a Myers shortest-edit-script diff.
func Diff(aName, bName string, a, b []string) string {
	ops := editScript(a, b)
	if ops == nil {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", aName, bName)
	const ctx = 3
	// ops: one entry per line of the script: ' ', '-', '+' with indices.
	for i := 0; i < len(ops); {
		if ops[i].op == ' ' {
			i++
			continue
		}
		// Hunk from i-ctx to the last change followed by <= 2*ctx equal lines.
		start := max(i-ctx, 0)
		end := i
		for j := i; j < len(ops); j++ {
			if ops[j].op != ' ' {
				end = j
				continue
			}
			if j-end > 2*ctx {
				break
			}
		}
		stop := min(end+ctx+1, len(ops))
		aStart, bStart, aLen, bLen := ops[start].ai, ops[start].bi, 0, 0
		for _, o := range ops[start:stop] {
			if o.op != '+' {
				aLen++
			}
			if o.op != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, o := range ops[start:stop] {
			s := ""
			if o.op == '+' {
				s = b[o.bi]
			} else {
				s = a[o.ai]
			}
			sb.WriteByte(o.op)
			sb.WriteString(s)
			sb.WriteByte('\n')
		}
		i = stop
	}
	return sb.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

type diffOp struct {
	op     byte // ' ', '-' or '+'
	ai, bi int  // line index in a and b before this op
}

// editScript returns the lines of a shortest edit script, or nil when a
// and b are equal.
func editScript(a, b []string) []diffOp {
	n, m := len(a), len(b)
	maxD := n + m
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int
	found := false
	for d := 0; d <= maxD && !found; d++ {
		// Keep only the diagonals step d reads: -(d+1) … d+1.
		trace = append(trace, append([]int(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = true
				break
			}
		}
	}
	if len(trace) == 1 {
		return nil // d = 0: equal
	}
	// Backtrack through the saved V arrays (trace[d] is V after step d-1,
	// diagonal k at index k+d+1).
	var rev []diffOp
	x, y := n, m
	for d := len(trace) - 1; d > 0; d-- {
		vp := trace[d]
		o := d + 1
		k := x - y
		pk := k - 1
		if k == -d || (k != d && vp[o+k-1] < vp[o+k+1]) {
			pk = k + 1
		}
		px := vp[o+pk]
		py := px - pk
		for x > px && y > py {
			x, y = x-1, y-1
			rev = append(rev, diffOp{' ', x, y})
		}
		if x == px { // down: insertion of b[y-1]
			y--
			rev = append(rev, diffOp{'+', x, y})
		} else { // right: deletion of a[x-1]
			x--
			rev = append(rev, diffOp{'-', x, y})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, diffOp{' ', x, y})
	}
	ops := make([]diffOp, len(rev))
	for i := range rev {
		ops[i] = rev[len(rev)-1-i]
	}
	return ops
}
