// Package drivers reads Windows driver packages for NT 5.x (2000, XP,
// Server 2003) the way setupapi and text-mode setup read them, and resolves
// what installing each device would do.
//
// [ParseINF] parses one INF: sections (repeated sections merge), comments,
// quoting ("" inside quotes is a quote), line continuations (\ at the end
// of a line), %strkey% substitution anywhere in a field (%% is a percent
// sign; numeric tokens such as %12% are DIRIDs and stay as they are), the
// [Strings] section and its locale variants [Strings.LLLL], UTF-16LE and
// UTF-8 files with a byte-order mark and ANSI files in the code page of the
// locale (windows-1252 by default). The lexical rules are package
// internal/inftext's, shared with integrate's setup-file editor. Errors are
// *[Error] values naming the file and the line.
//
// [ParseTxtSetupOEM] parses a text-mode driver disk's txtsetup.oem.
//
// [OpenPackage] reads a driver directory: every *.inf and txtsetup.oem in
// it, found case-insensitively. [Package.Resolve] (or [INF.Resolve] for an
// INF alone) computes, for a [Target] (OS version, architecture, product
// type), the install plan of every device: the models section chosen as
// Windows XP/2003 choose TargetOSVersion decorations (Windows 2000 only
// knows undecorated models sections), the install section with its
// .NTx86/.NTamd64/.NT decoration, hardware and compatible IDs, files to
// copy (package path → path relative to %SystemRoot%), services with every
// AddService field, registry operations with typed data, class and
// ClassGUID. The plan is plain data: package integrate applies it to hives
// and setup files. Resolution refuses missing sections, files the package
// lacks, and absolute or ..\ paths in any file name.
//
// Nothing here writes files.
package drivers
