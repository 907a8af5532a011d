package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/xpboot/xpboot/imagefs"
	"github.com/xpboot/xpboot/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf16"

	"github.com/urfave/cli/v2"

	"github.com/xpboot/xpboot/hive"
)

// defaultRegPrefix is the registry path a hive's root stands for in .reg
// files unless --prefix says otherwise.
const defaultRegPrefix = `HKEY_LOCAL_MACHINE\SYSTEM`

func hiveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "hive",
		Usage: "read, edit, check, import and export offline registry hives (regf 1.3 and 1.5)",
		Description: "KEY paths are backslash-separated from the hive's root (\"\" or \\ is the root) and\n" +
			"case-insensitive. With --ccs a leading CurrentControlSet is resolved through\n" +
			"\\Select\\Current (ControlSet001 when Current is 1). Edits are saved in place the way\n" +
			"Windows saves a hive: the changed pages go to HIVE.LOG first, then into the hive\n" +
			"(a crash leaves the old hive, or a dirty one that HIVE.LOG completes); large edits\n" +
			"rewrite the file (temporary file, fsync, rename). A dirty hive is replayed from\n" +
			"HIVE.LOG when that log belongs to it, else refused unless --log names its log.\n" +
			"'hive compact' lays a hive out anew without free space. Options go before the arguments.",
		Subcommands: []*cli.Command{
			hiveNewCommand(e),
			hiveLsCommand(e),
			hiveGetCommand(e),
			hiveSetCommand(e),
			hiveRmCommand(e),
			hiveImportCommand(e),
			hiveExportCommand(e),
			hiveCheckCommand(e),
			hiveCompactCommand(e),
		},
	}
}

var (
	hiveJSONFlag   = &cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}
	hiveCCSFlag    = &cli.BoolFlag{Name: "ccs", Usage: "resolve a leading CurrentControlSet through \\Select\\Current"}
	hivePrefixFlag = &cli.StringFlag{Name: "prefix", Value: defaultRegPrefix, Usage: "registry path the hive's root stands for in the .reg file"}
	hiveLogFlag    = &cli.StringFlag{Name: "log", Usage: "replay this old-format transaction log (HIVE.LOG) first if the hive is dirty"}
)

// hiveExit turns a package error into an exit status: 2 for bad
// arguments, 1 for everything else.
func hiveExit(cmd string, err error) error {
	// "hive set: hive: …" says hive twice: the package's own prefix goes.
	msg := strings.TrimPrefix(err.Error(), "hive: ")
	if errors.Is(err, hive.ErrInvalid) {
		return cli.Exit(fmt.Sprintf("hive %s: %s", cmd, msg), 2)
	}
	return cli.Exit(fmt.Sprintf("hive %s: %s", cmd, msg), 1)
}

func wantArgs(c *cli.Context, cmd string, min, max int) error {
	if n := c.NArg(); n < min || n > max {
		return cli.Exit(fmt.Sprintf("hive %s: wrong number of arguments; usage: xpboot hive %s %s", cmd, cmd, c.Command.ArgsUsage), 2)
	}
	return nil
}

// openKey opens a hive read-only and finds a key in it.
func openKey(c *cli.Context, cmd, path, keyPath string) (*hive.File, *hive.Key, string, error) {
	f, err := hive.Open(path)
	if err != nil {
		return nil, nil, "", hiveExit(cmd, err)
	}
	if c.Bool("ccs") {
		if keyPath, err = f.ResolveCurrentControlSet(keyPath); err != nil {
			f.Close()
			return nil, nil, "", hiveExit(cmd, err)
		}
	}
	k, err := f.Key(keyPath)
	if err != nil {
		f.Close()
		return nil, nil, "", hiveExit(cmd, err)
	}
	return f, k, keyPath, nil
}

// editHive loads a hive, applies edit and saves it atomically.
func (e *env) editHive(c *cli.Context, cmd, path string, edit func(ed *hive.Editor, resolve func(string) (string, error)) error) error {
	// An edit lives for milliseconds and holds little more than the lists
	// it touches: collecting garbage costs more than the memory it frees.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	ed, err := openEditor(path, c.String("log"))
	if err != nil {
		return hiveExit(cmd, err)
	}
	resolve := func(p string) (string, error) { return p, nil }
	if c.Bool("ccs") {
		resolve = ed.ResolveCurrentControlSet
	}
	if err := edit(ed, resolve); err != nil {
		return hiveExit(cmd, err)
	}
	if err := ed.Save(path); err != nil {
		return hiveExit(cmd, err)
	}
	e.log.Debug("hive saved", "path", path, "command", cmd)
	return nil
}

// openEditor loads a hive for editing, replaying logPath first if given
// and the hive is dirty.
func openEditor(path, logPath string) (*hive.Editor, error) {
	if logPath == "" {
		return hive.Edit(path)
	}
	hb, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lb, err := os.ReadFile(logPath)
	if err != nil {
		return nil, err
	}
	rec, err := hive.RecoverOldLog(bytes.NewReader(hb), int64(len(hb)), bytes.NewReader(lb), int64(len(lb)))
	if err != nil {
		return nil, fmt.Errorf("%s: replaying %s: %w", path, logPath, err)
	}
	f, err := hive.NewFile(bytes.NewReader(rec), int64(len(rec)))
	if err != nil {
		return nil, fmt.Errorf("%s after replaying %s: %w", path, logPath, err)
	}
	return hive.NewEditor(f)
}

func hiveNewCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "new",
		Usage:     "create an empty hive",
		ArgsUsage: "FILE|IMG:/path",
		Flags: []cli.Flag{partitionFlag,
			&cli.UintFlag{Name: "minor", Value: 3, Usage: "format version 1.MINOR: 3 (what Windows creates) or 5 (NtSaveKeyEx latest format)"},
			&cli.BoolFlag{Name: "force", Usage: "replace FILE if it exists"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, "new", 1, 1); err != nil {
				return err
			}
			path := c.Args().First()
			ed, err := hive.New(uint32(c.Uint("minor")))
			if err != nil {
				return hiveExit("new", err)
			}
			if loc, ok := imagefs.ParseImagePath(path); ok {
				return newHiveInImage(c, ed, loc)
			}
			if _, err := os.Lstat(path); err == nil && !c.Bool("force") {
				return cli.Exit(fmt.Sprintf("hive new: %s exists (use --force to replace it)", path), 1)
			}
			if err := ed.Save(path); err != nil {
				return hiveExit("new", err)
			}
			e.log.Debug("hive created", "path", path, "minor", c.Uint("minor"))
			return nil
		},
	}
}

// newHiveInImage saves a new hive at IMG:/path: built in a private
// temporary directory, then written into the image as one file.
func newHiveInImage(c *cli.Context, ed *hive.Editor, loc imagefs.Location) error {
	if err := loc.Validate(); err != nil {
		return cli.Exit(err, 2)
	}
	img, err := imagefs.Open(loc.Image, true)
	if err != nil {
		return cli.Exit(fmt.Sprintf("hive new: %v", err), 1)
	}
	fsys, err := img.FS(c.Int("partition"))
	if err != nil {
		img.Close()
		return cli.Exit(fmt.Sprintf("hive new: %v", err), 1)
	}
	if _, err := fsys.Stat(loc.Path); err == nil && !c.Bool("force") {
		img.Close()
		return cli.Exit(fmt.Sprintf("hive new: %s exists (use --force to replace it)", loc), 1)
	}
	dir, err := os.MkdirTemp("", "xpboot-hive-")
	if err != nil {
		img.Close()
		return cli.Exit(err, 1)
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "hive")
	if err := ed.Save(local); err != nil {
		img.Close()
		return hiveExit("new", err)
	}
	f, err := os.Open(local)
	if err != nil {
		img.Close()
		return cli.Exit(err, 1)
	}
	defer f.Close()
	err = imagefs.PutFrom(fsys, f, loc.Path, time.Now())
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("hive new: %s: %v", loc, err), 1)
	}
	return nil
}

// jsonValue is the JSON form of a value.
type jsonValue struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Code uint32 `json:"type_code"`
	Text string `json:"text"`
	Hex  string `json:"hex"`
}

func toJSONValue(v *hive.Value) jsonValue {
	return jsonValue{Name: v.Name, Type: v.Type.String(), Code: uint32(v.Type), Text: v.Text(), Hex: hex.EncodeToString(v.Data)}
}

func displayName(name string) string {
	if name == "" {
		return "@"
	}
	return fmt.Sprintf("%q", name)
}

func hiveLsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list a key's subkeys and values",
		ArgsUsage: "HIVE [KEY]",
		Flags:     []cli.Flag{partitionFlag, hiveJSONFlag, hiveCCSFlag},
		Action: imageAware(e, false, func(c *cli.Context, hivePath string) error {
			if err := wantArgs(c, "ls", 1, 2); err != nil {
				return err
			}
			f, k, keyPath, err := openKey(c, "ls", hivePath, c.Args().Get(1))
			if err != nil {
				return err
			}
			defer f.Close()
			subs, err := k.Subkeys()
			if err != nil {
				return hiveExit("ls", err)
			}
			vals, err := k.Values()
			if err != nil {
				return hiveExit("ls", err)
			}
			if c.Bool("json") {
				type jsonKey struct {
					Name      string    `json:"name"`
					Subkeys   int       `json:"subkeys"`
					Values    int       `json:"values"`
					Modified  time.Time `json:"modified"`
					ClassName string    `json:"class,omitempty"`
				}
				out := struct {
					Key     string      `json:"key"`
					Subkeys []jsonKey   `json:"subkeys"`
					Values  []jsonValue `json:"values"`
				}{Key: keyPath, Subkeys: []jsonKey{}, Values: []jsonValue{}}
				for _, s := range subs {
					cls, _ := s.Class()
					out.Subkeys = append(out.Subkeys, jsonKey{s.Name(), s.NumSubkeys(), s.NumValues(), s.ModTime(), cls})
				}
				for _, v := range vals {
					out.Values = append(out.Values, toJSONValue(v))
				}
				return e.printJSON(out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, s := range subs {
				fmt.Fprintf(tw, "%s\\\n", s.Name())
			}
			for _, v := range vals {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", displayName(v.Name), v.Type, oneLine(v.Text()))
			}
			return tw.Flush()
		}),
	}
}

func oneLine(s string) string {
	b := []byte(s)
	b = bytes.ReplaceAll(b, []byte("\n"), []byte(`\0`))
	if len(b) > 200 {
		b = append(b[:200], "…"...)
	}
	return string(b)
}

func hiveGetCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "print a value (or every value of a key)",
		ArgsUsage: "HIVE KEY [VALUE]",
		Description: "VALUE @ is the key's default value. Strings print as text (REG_MULTI_SZ one per\n" +
			"line), numbers as hex and decimal, other data as hex; --json adds the raw bytes.",
		Flags: []cli.Flag{partitionFlag, hiveJSONFlag, hiveCCSFlag},
		Action: imageAware(e, false, func(c *cli.Context, hivePath string) error {
			if err := wantArgs(c, "get", 2, 3); err != nil {
				return err
			}
			f, k, _, err := openKey(c, "get", hivePath, c.Args().Get(1))
			if err != nil {
				return err
			}
			defer f.Close()
			if c.NArg() == 2 {
				vals, err := k.Values()
				if err != nil {
					return hiveExit("get", err)
				}
				if c.Bool("json") {
					out := []jsonValue{}
					for _, v := range vals {
						out = append(out, toJSONValue(v))
					}
					return e.printJSON(out)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				for _, v := range vals {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", displayName(v.Name), v.Type, oneLine(v.Text()))
				}
				return tw.Flush()
			}
			v, err := k.Value(valueName(c.Args().Get(2)))
			if err != nil {
				return hiveExit("get", err)
			}
			if c.Bool("json") {
				return e.printJSON(toJSONValue(v))
			}
			_, err = fmt.Fprintln(e.stdout, v.Text())
			return err
		}),
	}
}

// valueName maps the command-line name @ to the default value.
func valueName(s string) string {
	if s == "@" {
		return ""
	}
	return s
}

func hiveSetCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "set",
		Usage:     "set a value, creating the key if needed",
		ArgsUsage: "HIVE KEY VALUE DATA...",
		Description: "VALUE @ is the default value. DATA by type: text for sz, expand_sz and link; one\n" +
			"argument per string for multi_sz (none for an empty list); a decimal or 0x number for\n" +
			"dword, dword_big_endian and qword; hex bytes (\"de,ad\" or \"dead\") for binary, none\n" +
			"and any numeric type (--type 0x20).",
		Flags: []cli.Flag{partitionFlag,
			hiveCCSFlag, hiveLogFlag,
			&cli.StringFlag{Name: "type", Aliases: []string{"t"}, Value: "sz", Usage: "value type: sz, expand_sz, multi_sz, dword, dword_big_endian, qword, binary, none, link, or a number"},
		},
		Action: imageAware(e, true, func(c *cli.Context, hivePath string) error {
			if c.NArg() < 3 {
				return cli.Exit("hive set: want HIVE KEY VALUE DATA...", 2)
			}
			t, err := hive.ParseValueType(c.String("type"))
			if err != nil {
				return hiveExit("set", err)
			}
			data, err := hive.ParseData(t, c.Args().Slice()[3:])
			if err != nil {
				return hiveExit("set", err)
			}
			return e.editHive(c, "set", hivePath, func(ed *hive.Editor, resolve func(string) (string, error)) error {
				key, err := resolve(c.Args().Get(1))
				if err != nil {
					return err
				}
				if err := ed.CreateKey(key); err != nil {
					return err
				}
				return ed.SetValue(key, valueName(c.Args().Get(2)), t, data)
			})
		}),
	}
}

func hiveRmCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "delete a value, or a key with all its subkeys",
		ArgsUsage: "HIVE KEY [VALUE]",
		Flags:     []cli.Flag{partitionFlag, hiveCCSFlag, hiveLogFlag},
		Action: imageAware(e, true, func(c *cli.Context, hivePath string) error {
			if err := wantArgs(c, "rm", 2, 3); err != nil {
				return err
			}
			return e.editHive(c, "rm", hivePath, func(ed *hive.Editor, resolve func(string) (string, error)) error {
				key, err := resolve(c.Args().Get(1))
				if err != nil {
					return err
				}
				if c.NArg() == 3 {
					return ed.DeleteValue(key, valueName(c.Args().Get(2)))
				}
				return ed.DeleteKey(key)
			})
		}),
	}
}

func hiveImportCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "apply a .reg file (REGEDIT4 or version 5.00) to a hive",
		ArgsUsage: "HIVE FILE.reg",
		Description: "Keys in the file must start with --prefix, which stands for the hive's root; a .reg\n" +
			"written by 'hive export' with the same prefix imports into any hive. [key] creates\n" +
			"the key and its parents, [-key] deletes a subtree, \"v\"=- deletes a value. FILE.reg -\n" +
			"reads standard input. Nothing is saved if any line fails.",
		Flags: []cli.Flag{partitionFlag, hivePrefixFlag, hiveLogFlag},
		Action: imageAware(e, true, func(c *cli.Context, hivePath string) error {
			if err := wantArgs(c, "import", 2, 2); err != nil {
				return err
			}
			var r io.Reader = e.stdin
			if name := c.Args().Get(1); name != "-" {
				fh, err := os.Open(name)
				if err != nil {
					return hiveExit("import", err)
				}
				defer fh.Close()
				r = fh
			}
			return e.editHive(c, "import", hivePath, func(ed *hive.Editor, _ func(string) (string, error)) error {
				return hive.ImportReg(ed, r, hive.RegOptions{Prefix: c.String("prefix")})
			})
		}),
	}
}

func hiveExportCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a key and its subtree as a .reg file",
		ArgsUsage: "HIVE [KEY]",
		Description: "Writes \"Windows Registry Editor Version 5.00\" (UTF-16LE with BOM, CRLF) or, with\n" +
			"--regedit4, REGEDIT4 (Windows-1252) to standard output or to -o FILE (replaced\n" +
			"atomically). The hive's root is written as --prefix.",
		Flags: []cli.Flag{partitionFlag,
			hivePrefixFlag, hiveCCSFlag,
			&cli.BoolFlag{Name: "regedit4", Usage: "write a REGEDIT4 (ANSI) file"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to FILE instead of standard output"},
			&cli.StringFlag{Name: "encoding", Usage: "utf16 (UTF-16LE with BOM and CRLF, what regedit writes and reads) or utf8 (UTF-8 and LF, for grep and diff) (default: utf16 for -o FILE, utf8 for standard output)"},
		},
		Action: imageAware(e, false, func(c *cli.Context, hivePath string) error {
			if err := wantArgs(c, "export", 1, 2); err != nil {
				return err
			}
			f, _, keyPath, err := openKey(c, "export", hivePath, c.Args().Get(1))
			if err != nil {
				return err
			}
			defer f.Close()
			opt := hive.RegOptions{Prefix: c.String("prefix")}
			if c.Bool("regedit4") {
				opt.Format = hive.RegEdit4
			}
			out := c.String("output")
			enc := c.String("encoding")
			switch {
			case enc == "" && (out == "" || out == "-"):
				enc = "utf8"
			case enc == "":
				enc = "utf16"
			case enc != "utf8" && enc != "utf16":
				return cli.Exit(fmt.Sprintf("hive export: --encoding %q: want utf8 or utf16", enc), 2)
			}
			var buf bytes.Buffer
			if err := hive.ExportReg(&buf, f, keyPath, opt); err != nil {
				return hiveExit("export", err)
			}
			data := buf.Bytes()
			if enc == "utf8" && !c.Bool("regedit4") {
				data = utf16ToUTF8Text(data)
			}
			if out != "" && out != "-" {
				if err := writeFileAtomic(out, data); err != nil {
					return hiveExit("export", err)
				}
				return nil
			}
			_, err = e.stdout.Write(data)
			return err
		}),
	}
}

// fromStdin runs a reading hive command on a hive given as "-": standard
// input, spooled to a temporary file (the reader needs random access).
// Editing commands refuse it: they save the hive in place.
func fromStdin(c *cli.Context, e *env, writable bool, action func(c *cli.Context, hivePath string) error) error {
	if writable {
		return usageError(c, errors.New("HIVE - (standard input) is for reading commands; an edit needs the hive's file"))
	}
	dir, err := os.MkdirTemp("", "xpboot-stdin-")
	if err != nil {
		return cli.Exit(err, 1)
	}
	defer os.RemoveAll(dir)
	local := filepath.Join(dir, "stdin")
	f, err := os.Create(local)
	if err != nil {
		return cli.Exit(err, 1)
	}
	_, err = io.Copy(f, e.stdin)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("hive %s: reading standard input: %v", c.Command.Name, err), exitUnreadable)
	}
	if err := action(c, local); err != nil {
		code := 1
		if ec, ok := err.(cli.ExitCoder); ok {
			code = ec.ExitCode()
		}
		return cli.Exit(strings.ReplaceAll(err.Error(), local, "standard input"), code)
	}
	return nil
}

// writeFileAtomic writes b to path, which appears complete or not at all.
func writeFileAtomic(path string, b []byte) error {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// utf16ToUTF8Text turns regedit's UTF-16LE text (with BOM and CRLF) into
// UTF-8 with LF line ends, which grep, diff and terminals read.
func utf16ToUTF8Text(b []byte) []byte {
	b = bytes.TrimPrefix(b, []byte{0xFF, 0xFE})
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return []byte(strings.ReplaceAll(string(utf16.Decode(u)), "\r\n", "\n"))
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}

func hiveCompactCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "compact",
		Usage:     "lay a hive out anew, without free space (what RegSaveKey does)",
		ArgsUsage: "HIVE",
		Description: "Edits reuse free cells in place, so a hive keeps the space deleted keys and values\n" +
			"left. compact writes every cell anew in tree order into fresh bins, sorts lists\n" +
			"stored out of order, rewrites lists of the wrong type for the hive version, and drops\n" +
			"unused security descriptors. The result replaces HIVE atomically (temporary file,\n" +
			"fsync, rename), or goes to -o FILE.",
		Flags: []cli.Flag{partitionFlag, hiveJSONFlag,
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the compacted hive to FILE instead of replacing HIVE"},
		},
		Action: imageAware(e, true, func(c *cli.Context, hivePath string) error {
			if err := wantArgs(c, "compact", 1, 1); err != nil {
				return err
			}
			out := c.String("output")
			if out == "" {
				out = hivePath
			}
			before, after, err := hive.CompactFile(hivePath, out)
			if err != nil {
				return hiveExit("compact", err)
			}
			if c.Bool("json") {
				return e.printJSON(struct {
					Path   string `json:"path"`
					Output string `json:"output"`
					Before int64  `json:"bytes_before"`
					After  int64  `json:"bytes_after"`
				}{c.Args().First(), c.String("output"), before, after})
			}
			if !e.quiet {
				fmt.Fprintf(e.stdout, "%s: %d bytes, compacted to %d\n", c.Args().First(), before, after)
			}
			return nil
		}),
	}
}

func hiveCheckCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "verify every format rule Windows XP relies on; exit status 1 on any finding",
		ArgsUsage: "HIVE",
		Description: "Checks the base block (checksum, sequence numbers, version), bins and cells, key\n" +
			"and list structure (list type by version, order, hashes, duplicates), values (inline\n" +
			"data, big data), security cells (list, reference counts), class names and maximum\n" +
			"length fields. Each finding names its file offset.",
		Flags: []cli.Flag{partitionFlag, hiveJSONFlag},
		Action: imageAware(e, false, func(c *cli.Context, hivePath string) error {
			if err := wantArgs(c, "check", 1, 1); err != nil {
				return err
			}
			path := c.Args().First() // as the user named it, also for IMG:/path
			// Could not read the hive at all: exit status 3, apart from
			// 1 for findings (the convention of every check command).
			fh, err := os.Open(hivePath)
			if err != nil {
				return cli.Exit(fmt.Sprintf("hive check: %v", err), exitUnreadable)
			}
			defer fh.Close()
			st, err := fh.Stat()
			if err != nil {
				return cli.Exit(fmt.Sprintf("hive check: %v", err), exitUnreadable)
			}
			sig := make([]byte, 4)
			if _, err := fh.ReadAt(sig, 0); err != nil || string(sig) != "regf" {
				return cli.Exit(fmt.Sprintf("hive check: %s is not a registry hive (no regf signature at offset 0)", path), exitUnreadable)
			}
			probs, err := hive.Check(fh, st.Size())
			if err != nil {
				return cli.Exit(fmt.Sprintf("hive check: %v", err), exitUnreadable)
			}
			if c.Bool("json") {
				type finding struct {
					Offset  int64  `json:"offset"`
					Message string `json:"message"`
				}
				out := struct {
					Path     string    `json:"path"`
					Clean    bool      `json:"clean"`
					Problems []finding `json:"problems"`
				}{Path: path, Clean: len(probs) == 0, Problems: []finding{}}
				for _, p := range probs {
					out.Problems = append(out.Problems, finding{p.Off, p.Msg})
				}
				if err := e.printJSON(out); err != nil {
					return err
				}
			} else {
				for _, p := range probs {
					fmt.Fprintf(e.stdout, "0x%08x: %s\n", p.Off, p.Msg)
				}
			}
			if len(probs) > 0 {
				return cli.Exit(fmt.Sprintf("hive check: %s: %d problem(s)", path, len(probs)), 1)
			}
			if !c.Bool("json") && !e.quiet {
				fmt.Fprintf(e.stdout, "%s: no problems\n", path)
			}
			return nil
		}),
	}
}

// imageAware lets a hive command take IMG:/path for a hive inside a disk
// image: the action runs on a local copy, which is written back into the
// image (FAT32 only) when a writable action changed it.
func imageAware(e *env, writable bool, action func(c *cli.Context, hivePath string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		arg := c.Args().First()
		if arg == "-" {
			return fromStdin(c, e, writable, action)
		}
		loc, ok := imagefs.ParseImagePath(arg)
		if ok {
			if err := loc.Validate(); err != nil {
				return cli.Exit(err, 2)
			}
		}
		if !ok {
			return action(c, arg)
		}
		var actionErr error
		err := imagefs.WithLocalCopy(loc, c.Int("partition"), writable, func(local string) error {
			actionErr = action(c, local)
			if actionErr != nil {
				// Name the hive as the user did, not by its temporary copy.
				code := 1
				if ec, ok := actionErr.(cli.ExitCoder); ok {
					code = ec.ExitCode()
				}
				actionErr = cli.Exit(strings.ReplaceAll(actionErr.Error(), local, loc.String()), code)
			}
			return actionErr
		})
		if actionErr != nil {
			return actionErr
		}
		if err != nil {
			code := 1
			if c.Command.Name == "check" {
				code = exitUnreadable // the image or the hive in it could not be read
			}
			return cli.Exit(err, code)
		}
		return nil
	}
}
