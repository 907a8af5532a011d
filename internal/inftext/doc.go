// Package inftext is the one lexical layer for the INI-shaped text files
// of Windows setup: device INFs, txtsetup.sif, dosnet.inf, hivesys.inf,
// layout.inf, txtsetup.oem, winnt.sif and boot.ini. Package drivers parses
// driver INFs with it, package integrate edits setup files with it (its
// byte-preserving Text), and package setup writes winnt.sif and boot.ini
// through that editor; none of them holds lexing rules of its own.
//
// The rules follow setupapi as Microsoft documents it ("General Syntax
// Rules for INF Files" and "INF File Sections and Directives" on Microsoft
// Learn) and, where the documents are silent, the parsers of Wine's
// setupapi and ReactOS's inflib, which were written to read the same files
// the way Windows does:
//
//   - Text is decoded from UTF-16LE/BE or UTF-8 when a byte-order mark says
//     so, else from the ANSI code page of the locale ([Decode]).
//   - A line ends at LF; a CR before the LF belongs to the line ending,
//     a lone CR is ordinary white space. A Ctrl-Z (0x1A) anywhere ends the
//     file: DOS end-of-file, which txtsetup.sif and old INFs carry
//     ([SplitLines], [EOF]).
//   - ; starts a comment outside double quotes ([StripComment]).
//   - A backslash ending a line outside quotes (after its comment and
//     trailing blanks are removed) joins the next physical line with one
//     space; a backslash in an unterminated quote is a character, and one
//     on the last line joins nothing and is dropped ([Continued],
//     [Logical]). txtsetup.oem has no continuations: its [Disks] lines end
//     in the disk's root directory "\"; its reader does not call them.
//   - A line whose first non-blank character is [ is a section header; the
//     name runs to the first ] and the rest of the line is ignored
//     ([Header]). Section names match case-insensitively.
//   - key = value splits at the first = outside quotes; values split at
//     commas outside quotes ([SplitKey], [Split], [Fields]).
//   - Quotes group text: inside them , ; = and spaces are ordinary, ""
//     is one quote, and quoted and unquoted pieces of a field concatenate;
//     blanks outside quotes at either end of a field are trimmed
//     ([Unquote], [Quote]).
//   - %strkey% is replaced by its [Strings] value anywhere in a field,
//     quoted or not; %% is a percent sign; numeric tokens (DIRIDs such as
//     %11%) and unknown keys stay as written ([Expand]).
//
// The package holds no state and never fails on content: callers decide
// what is an error in their file type (package drivers refuses a section
// header without ], the editor keeps it).
package inftext
