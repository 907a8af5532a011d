package media

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
)

//go:generate nasm -f bin -o floppy.bin floppy.asm

// floppyLoader is xpboot's own floppy boot loader (floppy.asm): the boot
// sector and its second stage, LoaderSectors sectors in all.
//
//go:embed floppy.bin
var floppyLoader []byte

// 1.44 MB floppy geometry and the FAT12 layout Write gives it: the loader
// in the reserved sectors, two FATs, a 224-entry root directory, then one
// sector per cluster.
const (
	floppySectors     = 2880
	floppySPT         = 18
	floppyHeads       = 2
	floppyMedia       = 0xF0
	floppyFATSectors  = 9
	floppyRootEntries = 224
	// LoaderSectors is the number of reserved sectors the floppy loader
	// fills (the BPB's reserved sector count).
	LoaderSectors     = 4
	floppyRootStart   = LoaderSectors + 2*floppyFATSectors
	floppyDataStart   = floppyRootStart + floppyRootEntries*32/512
	floppyParamsOff   = 512 // "XPBL", kernel LBA, length, initrd LBA, length
	floppyMaxClusters = floppySectors - floppyDataStart
)

// floppyFile is one file of the floppy, stored in consecutive clusters.
type floppyFile struct {
	name83 string // 11 bytes, space padded: "IPXE    KRN"
	data   []byte
	first  uint16 // first cluster
}

// buildFloppy returns a 1.44 MB FAT12 image holding kernel and script as
// IPXE.KRN and SANBOOT.IPX, with the loader in its reserved sectors told
// where they are. volID is the volume serial number.
func buildFloppy(kernel, script []byte, volID uint32) ([]byte, error) {
	if len(floppyLoader) != LoaderSectors*512 || !bytes.Equal(floppyLoader[floppyParamsOff:floppyParamsOff+4], []byte("XPBL")) || floppyLoader[510] != 0x55 || floppyLoader[511] != 0xAA {
		return nil, fmt.Errorf("media: the embedded floppy loader is damaged (run go generate)")
	}
	files := []*floppyFile{
		{name83: "IPXE    KRN", data: kernel},
		{name83: "SANBOOT IPX", data: script},
	}
	next := uint16(2)
	for _, f := range files {
		f.first = next
		n := (len(f.data) + 511) / 512
		if n == 0 {
			n = 1
		}
		next += uint16(min(n, floppyMaxClusters+1))
		if int(next)-2 > floppyMaxClusters {
			return nil, fmt.Errorf("%w: %d bytes of iPXE and script do not fit the %d bytes of a 1.44 MB floppy", ErrInput, len(kernel)+len(script), floppyMaxClusters*512)
		}
	}
	img := make([]byte, floppySectors*512)
	copy(img, floppyLoader)
	b := img[:512]
	copy(b[3:11], "XPBOOT  ")
	binary.LittleEndian.PutUint16(b[11:], 512)
	b[13] = 1
	binary.LittleEndian.PutUint16(b[14:], LoaderSectors)
	b[16] = 2
	binary.LittleEndian.PutUint16(b[17:], floppyRootEntries)
	binary.LittleEndian.PutUint16(b[19:], floppySectors)
	b[21] = floppyMedia
	binary.LittleEndian.PutUint16(b[22:], floppyFATSectors)
	binary.LittleEndian.PutUint16(b[24:], floppySPT)
	binary.LittleEndian.PutUint16(b[26:], floppyHeads)
	b[36] = 0x00 // drive number
	b[38] = 0x29 // extended boot signature
	binary.LittleEndian.PutUint32(b[39:], volID)
	copy(b[43:54], "XPBOOT     ")
	copy(b[54:62], "FAT12   ")

	p := img[floppyParamsOff:]
	lba := func(cluster uint16) uint32 { return uint32(floppyDataStart + int(cluster) - 2) }
	binary.LittleEndian.PutUint32(p[4:], lba(files[0].first))
	binary.LittleEndian.PutUint32(p[8:], uint32(len(files[0].data)))
	binary.LittleEndian.PutUint32(p[12:], lba(files[1].first))
	binary.LittleEndian.PutUint32(p[16:], uint32(len(files[1].data)))

	fat := make([]byte, floppyFATSectors*512)
	set := func(n uint16, v uint16) {
		off := int(n) * 3 / 2
		if n%2 == 0 {
			fat[off] = byte(v)
			fat[off+1] = fat[off+1]&0xF0 | byte(v>>8)&0x0F
		} else {
			fat[off] = fat[off]&0x0F | byte(v<<4)
			fat[off+1] = byte(v >> 4)
		}
	}
	set(0, 0xF00|floppyMedia)
	set(1, 0xFFF)
	root := img[floppyRootStart*512:]
	label := root[:32]
	copy(label, "XPBOOT     ")
	label[11] = 0x08
	putDOSTime(label[22:])
	for i, f := range files {
		n := max((len(f.data)+511)/512, 1)
		for k := 0; k < n; k++ {
			c := f.first + uint16(k)
			if k == n-1 {
				set(c, 0xFFF)
			} else {
				set(c, c+1)
			}
		}
		copy(img[lba(f.first)*512:], f.data)
		e := root[32*(i+1):][:32]
		copy(e, f.name83)
		// Read-only and system, as DOS marks its boot files: the loader
		// holds their sector numbers, so they must not be moved.
		e[11] = 0x01 | 0x04
		putDOSTime(e[14:]) // creation time and date
		binary.LittleEndian.PutUint16(e[18:], binary.LittleEndian.Uint16(e[16:]))
		putDOSTime(e[22:]) // modification time and date
		binary.LittleEndian.PutUint16(e[26:], f.first)
		binary.LittleEndian.PutUint32(e[28:], uint32(len(f.data)))
	}
	for i := 0; i < 2; i++ {
		copy(img[(LoaderSectors+i*floppyFATSectors)*512:], fat)
	}
	return img, nil
}

// putDOSTime writes mediaTime as a FAT time and date (4 bytes).
func putDOSTime(b []byte) {
	t := mediaTime
	binary.LittleEndian.PutUint16(b[0:], uint16(t.Hour()<<11|t.Minute()<<5|t.Second()/2))
	binary.LittleEndian.PutUint16(b[2:], uint16((t.Year()-1980)<<9|int(t.Month())<<5|t.Day()))
}
