package integrate

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"strings"

	"github.com/xpboot/xpboot/drivers"
	"github.com/xpboot/xpboot/hive"
	"github.com/xpboot/xpboot/imagefs"
)

// This file exports the pieces of setup-tree integration that the
// installed-system integration (package integrate/installed) and the
// boot check reuse, so both follow one set of rules.

// HiveDiff renders the key/value difference of two hive files, one line
// each in key order (`+ key\`, `- key\`, `+ key\name = type:data`,
// `~ key\name = new (was old)`); a nil hive is empty. It is the format
// of --dry-run.
func HiveDiff(a, b []byte) (string, error) { return hiveDiff(a, b) }

// RenderValue shows registry value data as the hive diff does:
// sz:"text", multi_sz:"a","b", dword:1, hex:01,02 …
func RenderValue(t hive.ValueType, b []byte) string { return renderValue(t, b) }

// EncodeReg encodes INF registry data (drivers.RegOp.Data with its
// drivers.Reg* type) as registry bytes.
func EncodeReg(typ uint32, data drivers.RegData) ([]byte, error) { return encodeReg(typ, data) }

// FunctionService returns the device's function driver: the service
// flagged SPSVCINST_ASSOCSERVICE, else the first one, or nil.
func FunctionService(d *drivers.Device) *drivers.Service { return functionService(d) }

// ClassGUID returns the device's class GUID upper case with braces (the
// Net class for a network adapter that names only its class), or "".
func ClassGUID(d *drivers.Device) string { return classGUID(d) }

// IsStorage reports a storage controller (SCSIAdapter or HDC class).
func IsStorage(d *drivers.Device) bool { return isStorage(d) }

// IsGUID reports whether s is a braced GUID, {8-4-4-4-12} hex digits.
func IsGUID(s string) bool { return isGUID(s) }

// NetCfgGUID derives a network adapter's NetCfgInstanceId for a new class
// instance: a name-based GUID (RFC 4122 version 5 layout over SHA-1) of
// the class key (`…Control\Class\{4D36E972-…}\0001`) and the hardware
// ID, so the same system and drivers always get the same GUID.
func NetCfgGUID(classKey, hardwareID string) string {
	h := sha1.Sum([]byte("xpboot NetCfgInstanceId\x00" + strings.ToLower(classKey) + "\x00" + strings.ToLower(hardwareID)))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("{%08X-%04X-%04X-%04X-%012X}", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// ServiceGroups are the load-order groups the TCP/IP boot set moves
// (research integratedrv.md §7.2, sanbootconf's installer §10.1), in
// their new order.
func ServiceGroups() []string { return append([]string(nil), tcpipGroups...) }

// A Journal writes and removes files of an FS and remembers what it did,
// so that a failure part way can put every file back: the all-or-nothing
// commit of Plan.Commit, for other planners.
type Journal struct{ j journal }

// NewJournal returns a Journal over fsys.
func NewJournal(fsys imagefs.FS) *Journal { return &Journal{j: journal{fs: fsys}} }

// Write creates or replaces name with data, creating missing
// directories; orig and existed describe what it replaces, for Rollback.
func (j *Journal) Write(name string, data, orig []byte, existed bool) error {
	return j.j.apply(change{path: name, data: data, orig: orig, exists: existed})
}

// Remove deletes name, whose content orig Rollback puts back.
func (j *Journal) Remove(name string, orig []byte) error {
	return j.j.apply(change{path: name, orig: orig, exists: true, remove: true})
}

// Rollback undoes everything the journal did, newest first, after writing
// name failed with err, and returns the error to report: err with what
// was restored, or also what could not be.
func (j *Journal) Rollback(name string, err error) error { return j.j.fail(name, err) }

// CheckedHive parses hive bytes for editing once hive.Check finds no fault
// in them: a hive with problems (dirty, bad checksum, broken cells) is
// refused, naming the first problem, before anything is planned. name
// stands for the hive in messages.
func CheckedHive(b []byte, name string) (*hive.File, *hive.Editor, error) {
	probs, err := hive.Check(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(probs) > 0 {
		more := ""
		if len(probs) > 1 {
			more = fmt.Sprintf(" (and %d more problems)", len(probs)-1)
		}
		return nil, nil, fmt.Errorf("%s fails the hive check, not edited: %w%s", name, probs[0], more)
	}
	f, err := hive.NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	ed, err := hive.NewEditor(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, ed, nil
}
