package overlay

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Name is the overlay file of an initiator: its IQN lower-cased with every
// character other than a-z, 0-9, '.' and '-' replaced by '_', plus ".vmdk".
// A name made by Name maps to itself, so the stem of an overlay file names
// its client as well as the IQN does.
func Name(iqn string) string {
	b := []byte(strings.ToLower(iqn))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b) + ".vmdk"
}

// Path returns the overlay file in dir of client, which is an initiator
// IQN, or the name of an overlay file there (with or without ".vmdk", as
// List shows it). It refuses names that would leave dir.
func Path(dir, client string) (string, error) {
	if client == "" {
		return "", fmt.Errorf("overlay: empty client name")
	}
	if strings.HasSuffix(strings.ToLower(client), ".vmdk") {
		if client != filepath.Base(client) || strings.HasPrefix(client, ".") {
			return "", fmt.Errorf("overlay: %q is not a file name in the overlay directory", client)
		}
		return filepath.Join(dir, client), nil
	}
	return filepath.Join(dir, Name(client)), nil
}
