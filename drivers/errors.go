package drivers

import "fmt"

// An Error reports a problem at a line of a driver file.
type Error struct {
	File string // file name as given to the parser
	Line int    // 1-based line, 0 when the problem is not tied to a line
	Msg  string
}

// Error formats the error as file:line: message.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func errorf(file string, line int, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}
