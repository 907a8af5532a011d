package ntfs

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// Label returns the volume label ($Volume's $VOLUME_NAME; "" when the
// volume has none).
func (fs *FS) Label() (string, error) {
	v := fs.reader()
	if v == nil {
		return "", fmt.Errorf("ntfs: reading the label: %w", fs.rdErr)
	}
	r, as, err := v.recordAttrs(recVolume)
	if err != nil {
		return "", fmt.Errorf("ntfs: reading the label: %w", err)
	}
	for _, a := range as {
		if a.typ != atVolumeName || a.nonRes {
			continue
		}
		b := r.b[a.valOff : a.valOff+a.valLen]
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u)), nil
	}
	return "", nil
}
