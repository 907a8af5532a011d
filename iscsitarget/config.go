package iscsitarget

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// FileConfig is a parsed configuration file. The syntax is IETD's ietd.conf
// (ietd.conf(5)), so an IETD setup can be served unchanged:
//
//	IncomingUser discuser discsecret12     # global: discovery sessions
//	Target iqn.2026-01.org.xpboot:xp
//	    IncomingUser testuser userpassword # several allowed
//	    OutgoingUser testtarget targetpassword
//	    Lun 0 Path=/srv/xp.img,Type=fileio,ScsiSN=XP0001
//	    Alias xp
//
// xpboot extensions: IOMode=ro in a Lun line (IETD's own spelling) makes it
// read-only; "RequireMutual Yes" in a target (or globally) refuses
// initiators that do not ask for mutual CHAP. IETD parameters that have no
// meaning here (MaxConnections, InitialR2T, Wthreads, …) are accepted and
// listed in Ignored.
type FileConfig struct {
	Discovery Auth
	Targets   []FileTarget
	Ignored   []string // "file:line: key" of accepted but unused settings
}

// FileTarget is one Target stanza.
type FileTarget struct {
	Name  string
	Alias string
	Auth  Auth
	LUNs  []FileLUN
}

// FileLUN is one Lun line; the caller opens Path.
type FileLUN struct {
	Number   uint16
	Path     string
	ReadOnly bool
	Serial   string
}

// ConfigError locates a configuration mistake.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParseConfig reads an ietd.conf-style file; name is used in errors.
func ParseConfig(r io.Reader, name string) (*FileConfig, error) {
	fc := &FileConfig{}
	sc := bufio.NewScanner(io.LimitReader(r, 4<<20))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	var cur *FileTarget
	lineNo := 0
	errf := func(format string, args ...any) error {
		return &ConfigError{File: name, Line: lineNo, Msg: fmt.Sprintf(format, args...)}
	}
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		auth := &fc.Discovery
		if cur != nil {
			auth = &cur.Auth
		}
		switch strings.ToLower(f[0]) {
		case "target":
			if len(f) != 2 {
				return nil, errf("Target needs exactly one name")
			}
			fc.Targets = append(fc.Targets, FileTarget{Name: f[1]})
			cur = &fc.Targets[len(fc.Targets)-1]
		case "incominguser", "outgoinguser":
			if len(f) == 1 {
				continue // IETD allows an empty line to mean "none"
			}
			if len(f) != 3 {
				return nil, errf("%s needs a user name and a secret", f[0])
			}
			a := Account{User: f[1], Secret: []byte(f[2])}
			if strings.EqualFold(f[0], "incominguser") {
				auth.Incoming = append(auth.Incoming, a)
			} else {
				if auth.Outgoing != nil {
					return nil, errf("only one OutgoingUser is allowed")
				}
				auth.Outgoing = &a
			}
		case "requiremutual":
			if len(f) != 2 {
				return nil, errf("RequireMutual needs Yes or No")
			}
			switch {
			case strings.EqualFold(f[1], "yes"):
				auth.RequireMutual = true
			case strings.EqualFold(f[1], "no"):
				auth.RequireMutual = false
			default:
				return nil, errf("RequireMutual %q: want Yes or No", f[1])
			}
		case "lun":
			if cur == nil {
				return nil, errf("Lun outside a Target")
			}
			if len(f) < 3 {
				return nil, errf("Lun needs a number and Path=…")
			}
			n, err := strconv.ParseUint(f[1], 10, 16)
			if err != nil || n > 16383 {
				return nil, errf("Lun number %q must be 0..16383", f[1])
			}
			l := FileLUN{Number: uint16(n)}
			for _, kv := range strings.Split(strings.Join(f[2:], ""), ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, errf("Lun option %q is not key=value", kv)
				}
				switch strings.ToLower(k) {
				case "path":
					l.Path = v
				case "type":
					switch strings.ToLower(v) {
					case "fileio", "blockio":
					default:
						return nil, errf("Lun Type=%s: only fileio and blockio are supported", v)
					}
				case "iomode":
					switch strings.ToLower(v) {
					case "ro":
						l.ReadOnly = true
					case "wt", "wb":
					default:
						return nil, errf("Lun IOMode=%s: want ro, wt or wb", v)
					}
				case "scsisn":
					if len(v) > 16 {
						return nil, errf("ScsiSN longer than 16 characters")
					}
					l.Serial = v
				case "scsiid", "blocksize":
					fc.Ignored = append(fc.Ignored, fmt.Sprintf("%s:%d: Lun %s", name, lineNo, k))
				default:
					return nil, errf("unknown Lun option %q", k)
				}
			}
			if l.Path == "" {
				return nil, errf("Lun %d has no Path", n)
			}
			cur.LUNs = append(cur.LUNs, l)
		case "alias":
			if cur == nil || len(f) != 2 {
				return nil, errf("Alias needs a target and one value")
			}
			cur.Alias = f[1]
		default:
			// IETD tuning parameters (MaxConnections, InitialR2T, Wthreads,
			// NOPInterval, …): the target negotiates these itself.
			if len(f) != 2 {
				return nil, errf("unknown setting %q", f[0])
			}
			fc.Ignored = append(fc.Ignored, fmt.Sprintf("%s:%d: %s", name, lineNo, f[0]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(fc.Targets) == 0 {
		return nil, errors.New(name + ": no Target")
	}
	return fc, nil
}
