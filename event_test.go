package annals

import "testing"

func TestAfter(t *testing.T) {
	tests := []struct {
		name string
		in   uint64
		want uint64
	}{
		{"start", Start, 1},
		{"inside", 41, 42},
		{"last before end", End - 1, End},
		{"end stays end", End, End},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := After(Position(tt.in)); got != Position(tt.want) {
				t.Errorf("After(Position(%d)) = %d, want %d", tt.in, got, tt.want)
			}
			if got := After(Revision(tt.in)); got != Revision(tt.want) {
				t.Errorf("After(Revision(%d)) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}
