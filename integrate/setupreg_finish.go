package integrate

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
)

// tcpipGroups are the load-order groups the TCP/IP boot set moves
// (research §7.2), in their new order.
var tcpipGroups = []string{"NDIS Wrapper", "NDIS", "Base", "PNP_TDI"}

// groupOrder removes the TCP/IP boot groups from list and inserts them
// after the third entry (the first group, which setupdd uses to tell text
// mode, Boot Bus Extender and System Bus Extender), before SCSI miniport.
// Applying it twice gives the same list.
func groupOrder(list []string) []string {
	var out []string
	for _, g := range list {
		if !hasFold(tcpipGroups, g) {
			out = append(out, g)
		}
	}
	i := min(3, len(out))
	return slices.Concat(out[:i], tcpipGroups, out[i:])
}

// setupRegTCPIP plans the setupreg.hiv TCP/IP boot-start set (research
// §7.2): KSecDD and NDIS boot start (text mode only), IPSec and Tcpip,
// DependOnService as REG_MULTI_SZ, DisablePagingExecutive,
// DisableDHCPMediaSense (hiveSysTCPIP wrote hivesys.inf's), and the
// ServiceGroupOrder in both hives.
func (p *hivePlanner) setupRegTCPIP() error {
	const why = "network adapter: TCP/IP boot start"
	type val struct {
		key, name string
		typ       uint32
		data      drivers.RegData
	}
	svc := ccs + `Services\`
	vals := []val{
		{svc + "KSecDD", "Start", drivers.RegDWORD, drivers.DWORDData(0)},
		{svc + "KSecDD", "Group", drivers.RegSZ, drivers.StringData("Base")},
		{svc + "NDIS", "Start", drivers.RegDWORD, drivers.DWORDData(0)},
		{svc + "NDIS", "Group", drivers.RegSZ, drivers.StringData("NDIS Wrapper")},
	}
	tcp := []string{"Tcpip"}
	if p.tree.Minor != 0 {
		tcp = []string{"IPSec", "Tcpip"}
	}
	for _, s := range tcp {
		vals = append(vals, val{svc + s, "Start", drivers.RegDWORD, drivers.DWORDData(0)},
			val{svc + s, "Group", drivers.RegSZ, drivers.StringData("PNP_TDI")},
			val{svc + s, "Type", drivers.RegDWORD, drivers.DWORDData(1)})
	}
	if p.tree.Minor != 0 {
		vals = append(vals, val{svc + "Tcpip", "DependOnService", drivers.RegMultiSZ, drivers.MultiData([]string{"IPSec"})})
	}
	vals = append(vals,
		val{ccs + `Control\Session Manager\Memory Management`, "DisablePagingExecutive", drivers.RegDWORD, drivers.DWORDData(1)},
		val{svc + `Tcpip\Parameters`, "DisableDHCPMediaSense", drivers.RegDWORD, drivers.DWORDData(1)})
	for _, v := range vals {
		if err := p.setupRegSet(v.key, v.name, v.typ, v.data, why); err != nil {
			return err
		}
	}

	s, err := p.setupRegLoad()
	if err != nil {
		return err
	}
	const sgo = ccs + `Control\ServiceGroupOrder`
	hp, err := s.resolve(sgo)
	if err != nil {
		return err
	}
	regList, ok := s.multi(hp, "List")
	if !ok {
		p.warn("%s has no ServiceGroupOrder List; NDIS, TCP/IP and Base keep text mode's default order", s.path)
	} else if err := p.setupRegSet(sgo, "List", drivers.RegMultiSZ, drivers.MultiData(groupOrder(regList)), why); err != nil {
		return err
	}
	// hivesys.inf: its own list when it sets one, else setupreg.hiv's.
	sysList, ok := p.hiveSysFields(sgo, "List")
	if !ok {
		sysList = regList
	}
	if len(sysList) > 0 {
		p.setReg(sgo, "List", drivers.RegMultiSZ, drivers.MultiData(groupOrder(sysList)), why)
	}
	return nil
}

// finishSetupReg turns the in-memory hive into the planned file output:
// setupreg.hiv in the setup directory and, for a local source, the copy
// in $WIN_NT$.~BT that text-mode setup boots with. The hive is laid out
// anew only when a key or value really changed (hive.Editor.Bytes
// rewrites every cell), so a second run writes nothing. It also refuses
// an Options.NIC that no integrated adapter matched.
func (p *hivePlanner) finishSetupReg() error {
	s := p.setupReg
	if s == nil {
		return nil
	}
	if p.opts.NIC != "" && s.chosen == nil {
		var ids []string
		for _, n := range p.nics {
			ids = append(ids, n.dev.HardwareID)
		}
		have := "none"
		if len(ids) > 0 {
			have = strings.Join(ids, ", ")
		}
		return fmt.Errorf("%w: NIC %s matches no integrated network adapter (integrated: %s)", ErrOptions, p.opts.NIC, have)
	}
	if s.built {
		return nil
	}
	data := s.orig
	dirty := s.dirty()
	if dirty {
		b, err := s.ed.Bytes()
		if err != nil {
			return fmt.Errorf("integrate: %s: %w", s.path, err)
		}
		if probs, err := hive.Check(bytes.NewReader(b), int64(len(b))); err != nil || len(probs) > 0 {
			return fmt.Errorf("integrate: %s as edited fails the hive check (%v %v); nothing written", s.path, err, probs)
		}
		data = b
	}
	o, err := p.copies.putFile(s.path, data, KindHive, "registry of text-mode setup")
	if err != nil {
		return err
	}
	o.diff = hiveDiffer(o.path)
	if p.tree.Layout == LocalSource && p.tree.BootDir != "" {
		bt := p.tree.BootDir + "/" + path.Base(s.path)
		var cur []byte
		var ok bool
		if ob := p.copies.output(bt); ob != nil {
			cur, ok = ob.orig, ob.exists
		} else if cur, ok, err = p.copies.readOptional(bt); err != nil {
			return err
		}
		btData := data
		if !dirty && ok && sameHive(cur, s.orig) {
			btData = cur
		}
		ob, err := p.copies.putFile(bt, btData, KindHive, "copy of "+s.path+" text-mode setup boots with")
		if err != nil {
			return err
		}
		ob.diff = hiveDiffer(ob.path)
	}
	s.built = true
	return nil
}

// sameHive reports whether two hives hold the same keys and values.
func sameHive(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	d, err := hiveDiff(a, b)
	return err == nil && d == ""
}

// hiveDiffer renders a hive output's change for --dry-run: a header and
// hiveDiff's lines. An original that is not a hive (a damaged ~BT copy the
// plan replaces) is noted and diffed as empty.
func hiveDiffer(name string) func(orig, data []byte) (string, error) {
	return func(orig, data []byte) (string, error) {
		note := ""
		if orig != nil {
			if _, err := flatten(orig); err != nil {
				note, orig = fmt.Sprintf("(a/%s is not a valid hive: %v)\n", name, err), nil
			}
		}
		d, err := hiveDiff(orig, data)
		if err != nil || d == "" {
			return "", err
		}
		return "--- a/" + name + "\n+++ b/" + name + "\n" + note + d, nil
	}
}

// flatHive is a hive's keys and values by upper-case path.
type flatHive struct {
	keys map[string]string      // upper path → path
	vals map[string]*hive.Value // upper path \x00 upper name → value
}

func flatten(b []byte) (*flatHive, error) {
	h := &flatHive{keys: map[string]string{}, vals: map[string]*hive.Value{}}
	if b == nil {
		return h, nil
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	err = f.Walk(func(p string, k *hive.Key) error {
		up := strings.ToUpper(p)
		h.keys[up] = p
		vals, err := k.Values()
		if err != nil {
			return err
		}
		for _, v := range vals {
			h.vals[up+"\x00"+strings.ToUpper(v.Name)] = v
		}
		return nil
	})
	return h, err
}

// hiveDiff renders the key/value difference of two hives, one line each,
// in key order: `+ key\` for a new key, `- key\` for a removed one,
// `+ key\name = type:data`, `- …`, `~ key\name = new (was old)`; the
// default value is named @. a nil hive is empty.
func hiveDiff(a, b []byte) (string, error) {
	fa, err := flatten(a)
	if err != nil {
		return "", err
	}
	fb, err := flatten(b)
	if err != nil {
		return "", err
	}
	type line struct{ sortKey, text string }
	var lines []line
	add := func(sortKey, text string) { lines = append(lines, line{sortKey, text}) }
	for up, p := range fb.keys {
		if _, ok := fa.keys[up]; !ok && up != "" {
			add(up+"\x00", "+ "+p+`\`)
		}
	}
	for up, p := range fa.keys {
		if _, ok := fb.keys[up]; !ok && up != "" {
			add(up+"\x00", "- "+p+`\`)
		}
	}
	name := func(k string, v *hive.Value, keys map[string]string) string {
		up, _, _ := strings.Cut(k, "\x00")
		n := v.Name
		if n == "" {
			n = "@"
		}
		if p := keys[up]; p != "" {
			return p + `\` + n
		}
		return n
	}
	for k, v := range fb.vals {
		o, ok := fa.vals[k]
		switch {
		case !ok:
			add(k, "+ "+name(k, v, fb.keys)+" = "+renderValue(v.Type, v.Data))
		case o.Type != v.Type || !bytes.Equal(o.Data, v.Data):
			add(k, "~ "+name(k, v, fb.keys)+" = "+renderValue(v.Type, v.Data)+" (was "+renderValue(o.Type, o.Data)+")")
		}
	}
	for k, v := range fa.vals {
		if _, ok := fb.vals[k]; !ok {
			add(k, "- "+name(k, v, fa.keys)+" = "+renderValue(v.Type, v.Data))
		}
	}
	slices.SortFunc(lines, func(x, y line) int { return strings.Compare(x.sortKey, y.sortKey) })
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(l.text)
		sb.WriteByte('\n')
	}
	return sb.String(), nil
}
