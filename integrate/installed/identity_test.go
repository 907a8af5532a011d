package installed

import (
	"errors"
	"testing"
)

func TestCheckComputerName(t *testing.T) {
	for name, ok := range map[string]bool{
		"LAB-01": true, "pc7": true, "A": true, "ABCDEFGHIJKLMNO": true,
		"": false, "ABCDEFGHIJKLMNOP": false, "12345": false, "-pc": false, "pc-": false, "pc_1": false, "pc 1": false, "pc.lab": false,
	} {
		err := CheckComputerName(name)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrComputerName)) {
			t.Errorf("CheckComputerName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
