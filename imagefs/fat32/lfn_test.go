package fat32

import "testing"

// TestLFNRun reads long names as Windows does: a whole run with the short
// entry's checksum gives the name; a run missing a slot, out of order or
// for another short name gives none (the checker used to take a broken
// run's partial name).
func TestLFNRun(t *testing.T) {
	short := shortName([]byte("LONGFI~1TXT"))
	const long = "A long file name of thirty chars.txt"
	slots := encodeLFN(long, short.checksum())
	if len(slots) < 3 {
		t.Fatalf("%d slots; the test needs at least 3", len(slots))
	}
	tests := []struct {
		name  string
		order []int // indexes into slots, in disk order
		short shortName
		want  string
	}{
		{"whole run", []int{0, 1, 2}, short, long},
		{"a middle slot missing", []int{0, 2}, short, ""},
		{"slots out of order", []int{0, 2, 1}, short, ""},
		{"no slot marked last", []int{1, 2}, short, ""},
		{"another short name", []int{0, 1, 2}, shortName([]byte("OTHER   TXT")), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newLFNRun()
			for i, k := range tc.order {
				r.add(slots[k][:], i)
			}
			got, start, ok := r.name(tc.short)
			if got != tc.want || ok != (tc.want != "") || (ok && start != 0) {
				t.Errorf("name %q, start %d, ok %v; want %q", got, start, ok, tc.want)
			}
			if _, _, again := r.name(tc.short); again {
				t.Error("the run was not closed after name")
			}
		})
	}
}
