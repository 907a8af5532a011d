package installed_test

import "net/netip"

func parsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }
