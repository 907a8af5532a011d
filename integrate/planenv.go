package integrate

import (
	"fmt"
	"slices"
	"strings"
)

// planEnv is what every planner shares: the tree, the options and the
// plan's list of edits and warnings. It points into the Plan, whose
// exported fields callers set and read.
type planEnv struct {
	tree     *Tree
	opts     *Options
	edits    *[]Edit
	warnings *[]string
	// seen holds the edits recorded in edits (Edit.String), so that each
	// is listed once whichever planner makes it.
	seen map[string]bool
}

// warn records a warning once: several devices or drivers of one run may
// hit the same condition, and the user needs to read it once.
func (p *planEnv) warn(format string, a ...any) {
	w := fmt.Sprintf(format, a...)
	if !slices.Contains(*p.warnings, w) {
		*p.warnings = append(*p.warnings, w)
	}
}

// stagingDir is the tree path of an INF's staging directory,
// <setup dir>/scsidrv/<stagingName>; a package file at rel (relative to the
// INF's directory) is staged at path.Join(stagingDir, rel) in lower case.
func (p *planEnv) stagingDir(inf string) string {
	return p.tree.SetupDir + "/scsidrv/" + stagingName(inf)
}

// recordOnce adds an edit (applied by the caller) to the plan's edits
// unless an equal one is there.
func (p *planEnv) recordOnce(e Edit) {
	k := e.String()
	if p.seen[k] {
		return
	}
	p.seen[k] = true
	*p.edits = append(*p.edits, e)
}

// record adds an edit of a packed file (applied by the caller) to the
// plan's edits once; a repeat that changed the file marks the first
// changed.
func (p *planEnv) record(e Edit) {
	k := e.String()
	if p.seen[k] {
		if e.Changed {
			edits := *p.edits
			for i := range edits {
				if edits[i].String() == k {
					edits[i].Changed = true
				}
			}
		}
		return
	}
	p.seen[k] = true
	*p.edits = append(*p.edits, e)
}

// recordHive adds a setupreg.hiv edit to the plan's edits, one per key
// and value name: a value set again (a list that grows per adapter)
// replaces the earlier edit in place, so --json shows what the hive ends
// with and a second run reports the same edits.
func (p *planEnv) recordHive(e Edit) {
	edits := *p.edits
	for i := range edits {
		o := &edits[i]
		if o.File == e.File && o.Op == e.Op && strings.EqualFold(o.Section, e.Section) && strings.EqualFold(o.Key, e.Key) {
			*o = e
			return
		}
	}
	*p.edits = append(*p.edits, e)
}
