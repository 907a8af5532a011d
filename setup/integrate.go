package setup

import (
	"errors"
	"fmt"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/integrate"
)

// IntegrateRequest is driver integration to run on the staged tree, with
// the meaning of `xpboot integrate`'s options.
type IntegrateRequest struct {
	// Drivers are PnP driver package directories (--driver).
	Drivers []string `json:"drivers"`
	// TextMode are txtsetup.oem driver disks (--textmode-driver DIR[:ID]).
	TextMode []TextModeDriver `json:"textmode_drivers,omitempty"`
	// Devices keeps only the matching devices of each package (--device).
	Devices []string          `json:"devices,omitempty"`
	Options integrate.Options `json:"options"`

	pkgs []*drivers.Package
	oems []*drivers.Package
}

// TextModeDriver is one --textmode-driver.
type TextModeDriver struct {
	Dir string `json:"dir"`
	ID  string `json:"id,omitempty"`
}

// IntegrateResult reports an integration run by Stage.
type IntegrateResult struct {
	Tree     *integrate.Tree        `json:"tree"`
	Edits    []integrate.Edit       `json:"edits"`
	Files    []integrate.FileChange `json:"files"`
	Changed  int                    `json:"changed"`
	Warnings []string               `json:"warnings"`
}

// load reads every package before the target is touched.
func (r *IntegrateRequest) load() error {
	if len(r.Drivers) == 0 && len(r.TextMode) == 0 {
		return errors.New("setup: integration asked for without --driver or --textmode-driver")
	}
	if _, err := r.Options.Check(); err != nil {
		return err
	}
	r.pkgs, r.oems = nil, nil
	for _, d := range r.Drivers {
		pkg, err := drivers.OpenPackage(d)
		if err != nil {
			return fmt.Errorf("setup: driver %s: %w", d, err)
		}
		r.pkgs = append(r.pkgs, pkg)
	}
	for _, t := range r.TextMode {
		pkg, err := drivers.OpenPackage(t.Dir)
		if err != nil {
			return fmt.Errorf("setup: text-mode driver %s: %w", t.Dir, err)
		}
		if pkg.TxtSetup == nil {
			return fmt.Errorf("setup: text-mode driver %s: no txtsetup.oem (use a --driver for an INF package)", t.Dir)
		}
		r.oems = append(r.oems, pkg)
	}
	return nil
}

// run integrates into the staged tree fsys exactly as `xpboot integrate
// --target` on that tree does: the same detection, device selection,
// plan and commit.
func (r *IntegrateRequest) run(fsys imagefs.FS) (*IntegrateResult, error) {
	tree, err := integrate.Detect(fsys)
	if err != nil {
		return nil, err
	}
	res := &IntegrateResult{Tree: tree, Warnings: append([]string{}, tree.Warnings...)}
	w, _ := r.Options.Check()
	res.Warnings = append(res.Warnings, w...)
	var all []*drivers.Device
	matched := make([]bool, len(r.Devices))
	devs := make([][]*drivers.Device, len(r.pkgs))
	for i, pkg := range r.pkgs {
		d, err := pkg.Resolve(tree.Target())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pkg.Dir, err)
		}
		if len(r.Devices) > 0 {
			sel, used := integrate.SelectDevices(d, r.Devices)
			for j, u := range used {
				matched[j] = matched[j] || u
			}
			if len(sel) > 0 {
				d = sel
			}
		}
		devs[i] = d
		all = append(all, d...)
	}
	for j, ok := range matched {
		if !ok {
			return nil, fmt.Errorf("--device %s matches no device of the driver packages for Windows %s %s", r.Devices[j], tree.OS, tree.Arch)
		}
	}
	w, err = r.Options.CheckDevices(all)
	if err != nil {
		return nil, err
	}
	res.Warnings = append(res.Warnings, w...)
	plan, err := integrate.NewPlan(tree)
	if err != nil {
		return nil, err
	}
	plan.Options = r.Options
	for i, o := range r.oems {
		if err := plan.AddTextModeDriver(r.TextMode[i].Dir, o.TxtSetup, r.TextMode[i].ID); err != nil {
			return nil, fmt.Errorf("%s: %w", r.TextMode[i].Dir, err)
		}
	}
	for i, pkg := range r.pkgs {
		if err := plan.AddDriver(pkg, devs[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", pkg.Dir, err)
		}
	}
	res.Warnings = append(res.Warnings, plan.Warnings...)
	files, err := plan.Files()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.Changed {
			res.Changed++
		}
	}
	res.Edits, res.Files = plan.Edits, files
	if err := plan.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}
