package main

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xpboot/xpboot/integrate/integratetest"
)

// TestIntegrateOneRun: integration reaches its final state in one run. For
// every integrable driver package in testdata (drivers/testdata/iscsi and
// edge hold stand-in binaries and deliberate faults), with each flag set the tests use and
// the --driver order shuffled, a second run reports nothing to do and
// changes no byte (issue: the first run once gave only some NIC class
// instances their MatchingDeviceId in hivesys.inf).
func TestIntegrateOneRun(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	testdata := filepath.Join(repo, "drivers", "testdata")
	sets := []struct {
		name    string
		drivers []string
		flags   []string
	}{
		{"e1000+sanbootconf", []string{filepath.Join(testdata, "e1000"), "sanbootconf"}, nil},
		{"e1000 dhcp", []string{filepath.Join(testdata, "e1000"), "sanbootconf"}, []string{"--dhcp"}},
		{"e1000 static backup", []string{filepath.Join(testdata, "e1000"), "sanbootconf"}, []string{"--ip", "192.168.1.50/24", "--gateway", "192.168.1.1", "--backup"}},
		{"vbus", []string{filepath.Join(testdata, "vbus"), "sanbootconf"}, nil},
		{"synthetic", []string{"e1000", "sanbootconf", "vscsi"}, []string{"--ip", "10.0.0.5/24"}},
		{"preconf", []string{"e1000", "sanbootconf"}, []string{"--preconf", "00:03.0", "--dhcp"}},
		{"textmode", []string{"e1000"}, []string{"--textmode-driver", filepath.Join(testdata, "textmode")}},
	}
	rng := rand.New(rand.NewSource(1))
	for _, set := range sets {
		for round := 0; round < 2; round++ {
			drivers := append([]string{}, set.drivers...)
			if round > 0 {
				rng.Shuffle(len(drivers), func(i, j int) { drivers[i], drivers[j] = drivers[j], drivers[i] })
			}
			t.Run(fmt.Sprintf("%s/%d", set.name, round), func(t *testing.T) {
				dir := integrateWork(t)
				args := []string{"integrate", "--target", "tree"}
				for _, d := range drivers {
					args = append(args, "--driver", d)
				}
				args = append(args, set.flags...)
				if r := xpboot(t, dir, args...); r.code != 0 {
					t.Fatalf("first run %q: %+v", args, r)
				}
				after := integratetest.Snapshot(t, filepath.Join(dir, "tree"))
				r := xpboot(t, dir, append(args, "--json")...)
				if r.code != 0 {
					t.Fatalf("second run: %+v", r)
				}
				j := parseIntegrateJSON(t, r)
				for _, f := range j.Files {
					if f.Changed {
						t.Errorf("second run %q changes %s", drivers, f.Path)
					}
				}
				if j.Changed != 0 || j.Diff != "" {
					t.Errorf("second run reports %d changes:\n%s", j.Changed, j.Diff)
				}
				integratetest.SameSnapshot(t, after, integratetest.Snapshot(t, filepath.Join(dir, "tree")))
				if _, err := os.Stat(filepath.Join(dir, "tree", "I386", "HIVESYS.INF")); err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(filepath.Join(dir, "tree", "I386", "HIVESYS.INF"))
				classKeys, matching := 0, 0
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, `\Control\Class\{`) {
						if strings.Contains(l, `"DriverDesc"`) {
							classKeys++
						}
						if strings.Contains(l, `"MatchingDeviceId"`) {
							matching++
						}
					}
				}
				if classKeys == 0 || matching != classKeys {
					t.Errorf("hivesys.inf: %d class instances with DriverDesc, %d with MatchingDeviceId", classKeys, matching)
				}
			})
		}
	}
}
