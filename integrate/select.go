package integrate

import (
	"strings"

	"github.com/xpboot/xpboot/drivers"
)

// idMatches reports whether the model-line ID model names the device ID
// id: equal (case-insensitively), or, for bus IDs such as
// PCI\VEN_8086&DEV_100E, every &-separated part of model is one of id's
// with the same first part. That is how a device reporting the specific
// PCI\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02 also gets the less specific
// IDs Windows generates (…&SUBSYS_…, …&REV_…, VEN&DEV) matched against the
// models.
func idMatches(model, id string) bool {
	if strings.EqualFold(model, id) {
		return true
	}
	mp := strings.Split(strings.ToUpper(model), "&")
	ip := strings.Split(strings.ToUpper(id), "&")
	if len(mp) < 2 || len(mp) >= len(ip) || mp[0] != ip[0] {
		return false
	}
	have := map[string]bool{}
	for _, s := range ip[1:] {
		have[s] = true
	}
	for _, s := range mp[1:] {
		if !have[s] {
			return false
		}
	}
	return true
}

// MatchesID reports whether the device's model line lists id, as its
// hardware ID or one of its compatible IDs (see idMatches for the PCI
// specificity rule).
func MatchesID(d *drivers.Device, id string) bool {
	if idMatches(d.HardwareID, id) {
		return true
	}
	for _, c := range d.CompatibleIDs {
		if idMatches(c, id) {
			return true
		}
	}
	return false
}

// SelectDevices keeps the devices that match any of ids (the --device
// choice), in order. used[i] tells whether ids[i] matched a device.
func SelectDevices(devs []*drivers.Device, ids []string) (sel []*drivers.Device, used []bool) {
	used = make([]bool, len(ids))
	for _, d := range devs {
		keep := false
		for i, id := range ids {
			if MatchesID(d, id) {
				used[i], keep = true, true
			}
		}
		if keep {
			sel = append(sel, d)
		}
	}
	return sel, used
}

// IsNIC reports whether the device is a network adapter ([Version]
// Class=Net or its class GUID).
func IsNIC(d *drivers.Device) bool { return isNIC(d) }
