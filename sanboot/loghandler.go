package sanboot

import (
	"context"
	"log/slog"
)

// ClientLogHandler wraps the handler of the iSCSI target's logger so that
// every record about a connection names the client: a record (or a logger
// made With) carrying a "remote" attribute, the connection's peer address,
// gets "client" (what client returns for that address, normally
// Netboot.ISCSIClient's MAC) and "proto"="iscsi". The lookup happens when
// the record is written, so a lease granted after the connection opened is
// still found. Other records pass through unchanged.
func ClientLogHandler(h slog.Handler, client func(remote string) string) slog.Handler {
	return &clientHandler{h: h, client: client}
}

type clientHandler struct {
	h      slog.Handler
	client func(remote string) string
	remote string // from WithAttrs
}

func (c *clientHandler) Enabled(ctx context.Context, l slog.Level) bool { return c.h.Enabled(ctx, l) }

func (c *clientHandler) Handle(ctx context.Context, r slog.Record) error {
	remote := c.remote
	if remote == "" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "remote" {
				remote = a.Value.Resolve().String()
				return false
			}
			return true
		})
	}
	if remote != "" {
		if who := c.client(remote); who != "" {
			r = r.Clone()
			r.AddAttrs(slog.String("client", who), slog.String("proto", "iscsi"))
		}
	}
	return c.h.Handle(ctx, r)
}

func (c *clientHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *c
	n.h = c.h.WithAttrs(as)
	for _, a := range as {
		if a.Key == "remote" {
			n.remote = a.Value.Resolve().String()
		}
	}
	return &n
}

func (c *clientHandler) WithGroup(name string) slog.Handler {
	n := *c
	n.h = c.h.WithGroup(name)
	n.remote = "" // attributes now land inside the group
	return &n
}
