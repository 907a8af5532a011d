package integrate

import (
	"strings"
	"testing"
)

var diffTests = []struct {
	name string
	a, b string // lines separated by '|'
	want string
}{
	{"equal", "a|b", "a|b", ""},
	{"append", "a|b", "a|b|c", "--- a\n+++ b\n@@ -1,2 +1,3 @@\n a\n b\n+c\n"},
	{"from-empty", "", "x", "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n"},
	{"replace", "1|2|3|4|5|6|7|8|9", "1|2|3|4|X|6|7|8|9",
		"--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+X\n 6\n 7\n 8\n"},
	{"two-hunks", "1|2|3|4|5|6|7|8|9|10|11|12", "0|1|2|3|4|5|6|7|8|9|10|11|12|13",
		"--- a\n+++ b\n@@ -1,3 +1,4 @@\n+0\n 1\n 2\n 3\n@@ -10,3 +11,4 @@\n 10\n 11\n 12\n+13\n"},
	{"delete", "a|b|c", "a|c", "--- a\n+++ b\n@@ -1,3 +1,2 @@\n a\n-b\n c\n"},
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

func TestDiff(t *testing.T) {
	for _, tt := range diffTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Diff("a", "b", split(tt.a), split(tt.b)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestDiffApplies replays the script of random-ish edits and checks it
// rebuilds b from a.
func TestDiffApplies(t *testing.T) {
	a := strings.Split("a b c d e f g h i j k l m n o p", " ")
	for _, b := range [][]string{
		strings.Split("a x c d e f g h i j k l m n o p q", " "),
		strings.Split("p o n m", " "),
		nil,
		strings.Split("a b c d e f g h i j k l m n o p", " "),
	} {
		ops := editScript(a, b)
		var got []string
		for _, o := range ops {
			switch o.op {
			case ' ':
				if a[o.ai] != b[o.bi] {
					t.Fatalf("context %q != %q", a[o.ai], b[o.bi])
				}
				got = append(got, a[o.ai])
			case '+':
				got = append(got, b[o.bi])
			}
		}
		if ops == nil {
			got = a
		}
		if strings.Join(got, " ") != strings.Join(b, " ") {
			t.Errorf("script rebuilds %q, want %q", got, b)
		}
	}
}

// TestDiffLarge: a txtsetup.sif-sized file with scattered insertions
// diffs quickly and the hunks carry every added line.
func TestDiffLarge(t *testing.T) {
	var a, b []string
	for i := 0; i < 20000; i++ {
		l := "line " + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		a = append(a, l)
		b = append(b, l)
		if i%200 == 0 {
			b = append(b, "added")
		}
	}
	d := Diff("a", "b", a, b)
	if n := strings.Count(d, "\n+added\n"); n != 100 {
		t.Errorf("%d added lines in the diff, want 100", n)
	}
}
