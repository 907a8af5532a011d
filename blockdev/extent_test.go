package blockdev

import (
	"slices"
	"testing"
)

func TestAppendExtent(t *testing.T) {
	type run struct {
		off, end int64
		s        State
	}
	tests := []struct {
		name string
		runs []run
		want []Extent
	}{
		{"empty range adds nothing", []run{{5, 5, Data}, {7, 3, Zero}}, nil},
		{"same state and adjacent joins", []run{{0, 4, Data}, {4, 10, Data}}, []Extent{{0, 10, Data}}},
		{"other state starts a new extent", []run{{0, 4, Data}, {4, 6, Zero}, {6, 8, Data}}, []Extent{{0, 4, Data}, {4, 2, Zero}, {6, 2, Data}}},
		{"a gap starts a new extent", []run{{0, 4, Parent}, {5, 6, Parent}}, []Extent{{0, 4, Parent}, {5, 1, Parent}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Extent
			for _, r := range tc.runs {
				got = AppendExtent(got, r.off, r.end, r.s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
