package integrate

import (
	"bytes"
	"fmt"
)

// Kernel names the setup loader chooses between (research §7.5).
var (
	kernelMP = []byte("ntkrnlmp.exe")
	kernelUP = []byte("ntoskrnl.exe")
)

// loaderResult is what patchLoader found.
type loaderResult int

const (
	loaderPatched        loaderResult = iota + 1 // ntkrnlmp.exe replaced
	loaderAlreadyPatched                         // only ntoskrnl.exe there: a second run
)

// patchLoader makes a setup loader (setupldr.bin, or its copies $LDR$ and
// NTLDR in a local-source tree) load the uniprocessor kernel ntoskrnl.exe
// instead of ntkrnlmp.exe: text mode hangs with a NIC on the
// multiprocessor kernel and the uniprocessor HAL it uses by default.
//
// XP and 2003 loaders are a real-mode stub followed by a PE image, whose
// checksum the stub verifies: the name is replaced in the image's first
// section, where the loader keeps it, and the checksum recomputed. The
// image is taken to start at the first "MZ" where a PE header parses
// and to run to the end of the file, as IntegrateDrv reads it. Windows
// 2000's loader has no PE image and no checksum: every occurrence in the
// file is replaced.
//
// A loader with neither name, or whose image does not parse, is an error
// the caller turns into a warning: nothing is patched.
func patchLoader(b []byte, win2000 bool) ([]byte, loaderResult, error) {
	if win2000 {
		switch {
		case bytes.Contains(b, kernelMP):
			return bytes.ReplaceAll(b, kernelMP, kernelUP), loaderPatched, nil
		case bytes.Contains(b, kernelUP):
			return b, loaderAlreadyPatched, nil
		}
		return nil, 0, fmt.Errorf("neither %s nor %s is in the loader", kernelMP, kernelUP)
	}
	start := -1
	var f *peFile
	for i := 0; i+1 < len(b); i++ {
		j := bytes.Index(b[i:], []byte("MZ"))
		if j < 0 {
			break
		}
		i += j
		if pf, err := parsePE(b[i:]); err == nil && len(pf.Sections) > 0 {
			start, f = i, pf
			break
		}
	}
	if f == nil {
		return nil, 0, fmt.Errorf("no PE image after the loader's stub")
	}
	sec := f.raw(0)
	switch {
	case bytes.Contains(sec, kernelMP):
	case bytes.Contains(sec, kernelUP):
		return b, loaderAlreadyPatched, nil
	default:
		return nil, 0, fmt.Errorf("neither %s nor %s is in the first section (%q) of the loader's PE image at byte 0x%x",
			kernelMP, kernelUP, f.Sections[0].Name, start)
	}
	out := bytes.Clone(b)
	s := f.Sections[0]
	copy(out[start+int(s.PointerToRaw):], bytes.ReplaceAll(sec, kernelMP, kernelUP))
	setPEChecksum(out[start:])
	return out, loaderPatched, nil
}

// tcpipFiles plans the file copies and the loader patch text mode needs
// to run TCP/IP for a network adapter (research §7.1, §7.5): in a
// local-source tree the TCP/IP drivers go to the boot directory (on
// media, the dosnet.inf [FloppyFiles.1] lines of tcpipTextMode have
// winnt32 copy them); on x86 the setup loader is switched to the
// uniprocessor kernel.
func (p *copyPlanner) tcpipFiles() error {
	t := p.tree
	const why = "network adapter: TCP/IP in text mode"
	if t.Layout == LocalSource {
		files := []string{"tdi.sy_", "ndis.sy_", "ipsec.sy_", "tcpip.sy_"}
		if t.Minor == 0 {
			files = []string{"tdi.sy_", "ndis.sy_", "tcpip.sy_"} // Windows 2000 has no IPSec driver to load
		}
		for _, f := range files {
			if err := p.copyToBootDir(f, why); err != nil {
				return err
			}
		}
	}
	if t.Arch == "x86" {
		return p.uniprocessorKernel()
	}
	return nil
}

// setupFileName returns the name under which the setup directory holds
// name, compressed (x.sy_) or not (x.sys, as nLite leaves some), or ""
// when neither is there.
func (p *copyPlanner) setupFileName(name string) (string, error) {
	cands := []string{name}
	if n := len(name); n >= 4 && name[n-1] == '_' {
		switch ext := name[n-4:]; ext {
		case ".sy_":
			cands = append(cands, name[:n-1]+"s")
		case ".ex_":
			cands = append(cands, name[:n-1]+"e")
		}
	}
	for _, c := range cands {
		if _, ok, err := p.current(p.tree.SetupDir + "/" + c); err != nil {
			return "", err
		} else if ok {
			return c, nil
		}
	}
	return "", nil
}

// copyToBootDir plans copying a file of the setup directory to the boot
// directory of a local-source tree; a missing file is a warning.
func (p *copyPlanner) copyToBootDir(name, why string) error {
	t := p.tree
	real, err := p.setupFileName(name)
	if err != nil {
		return err
	}
	if real == "" {
		p.warn("%s/%s is missing: text mode cannot load it from %s", t.SetupDir, name, t.BootDir)
		return nil
	}
	data, _, err := p.current(t.SetupDir + "/" + real)
	if err != nil {
		return err
	}
	_, err = p.putFile(t.BootDir+"/"+real, data, KindBinary, why+": "+real+" copied to the boot directory")
	return err
}

// uniprocessorKernel patches the setup loader to load ntoskrnl.exe and
// makes the uniprocessor kernel available to it (research §7.5). A
// loader that is missing or cannot be patched is a warning: the rest of
// the integration stands, text mode may hang with the NIC.
func (p *copyPlanner) uniprocessorKernel() error {
	t := p.tree
	const why = "network adapter: text mode on the uniprocessor kernel"
	var loader string
	var data []byte
	if t.Layout == LocalSource {
		// winnt32 /syspart /tempdrive leaves setupldr as NTLDR instead
		// of $LDR$ (a comment in IntegrateDrv's KernelAndHalIntegrator).
		for _, n := range []string{"$LDR$", "NTLDR"} {
			b, ok, err := p.current(n)
			if err != nil {
				return err
			}
			if ok {
				loader, data = n, b
				break
			}
		}
		if loader == "" {
			p.warn("neither $LDR$ nor NTLDR is in the tree: the setup loader keeps the multiprocessor kernel, text mode may hang with the network adapter")
			return nil
		}
	} else {
		loader = t.SetupDir + "/setupldr.bin"
		b, ok, err := p.current(loader)
		if err != nil {
			return err
		}
		if !ok {
			p.warn("%s is missing: the setup loader keeps the multiprocessor kernel, text mode may hang with the network adapter", loader)
			return nil
		}
		data = b
	}
	out, _, err := patchLoader(data, t.Minor == 0)
	if err != nil {
		p.warn("%s not patched (%v): text mode keeps the multiprocessor kernel and may hang with the network adapter", loader, err)
		return nil
	}
	if _, err := p.putFile(loader, out, KindBinary, why+": loads ntoskrnl.exe instead of ntkrnlmp.exe"); err != nil {
		return err
	}
	if t.Layout == LocalSource {
		return p.copyToBootDir("ntoskrnl.ex_", why)
	}
	real, err := p.setupFileName("ntoskrnl.ex_")
	if err != nil {
		return err
	}
	if real == "" {
		p.warn("%s/ntoskrnl.ex_ is missing: setup cannot load the uniprocessor kernel", t.SetupDir)
		return nil
	}
	if p.texts.text(DosNetINF) != nil {
		p.texts.do(Edit{File: DosNetINF, Op: OpAdd, Section: "FloppyFiles.1", Value: "d1," + real, Why: why})
	}
	return nil
}
