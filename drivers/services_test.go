package drivers

import "testing"

func TestUniqueServices(t *testing.T) {
	devs := []*Device{
		{Services: []Service{{Name: "E1000"}, {Name: "Tcpip"}}},
		{Services: []Service{{Name: "e1000"}, {Name: "NDIS"}}},
		{},
	}
	var got []string
	for _, sv := range UniqueServices(devs) {
		got = append(got, sv.Name)
	}
	want := []string{"E1000", "Tcpip", "NDIS"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if UniqueServices(devs)[0] != &devs[0].Services[0] {
		t.Error("UniqueServices copies the services; callers rely on the device's own")
	}
}
