package serve

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/xpboot/xpboot/iscsitarget"
	"github.com/xpboot/xpboot/sanboot"
)

// Policy is the one answer to what a client may do: DHCP and TFTP ask it
// through Clients, the iSCSI target through Authorize and CHAPSecret, the
// overlays through Overlay, and the log through ClientOf. It is immutable
// after New and safe for concurrent use.
type Policy struct {
	clients *sanboot.StaticPolicy // nil without DHCP
	events  *sanboot.EventLog
	// secrets: lower-cased target name ("" for discovery) → user → secret.
	secrets map[string]map[string][]byte
}

// newPolicy builds the policy from the prepared targets and, with DHCP,
// the client policy built from the bound address.
func newPolicy(targets []iscsitarget.FileTarget, discovery iscsitarget.Auth, clients *sanboot.StaticPolicy, events *sanboot.EventLog) *Policy {
	p := &Policy{clients: clients, events: events, secrets: map[string]map[string][]byte{}}
	add := func(key string, a iscsitarget.Auth) {
		m := map[string][]byte{}
		for _, in := range a.Incoming {
			m[in.User] = append([]byte(nil), in.Secret...)
		}
		p.secrets[key] = m
	}
	add("", discovery)
	for _, t := range targets {
		add(strings.ToLower(t.Name), t.Auth)
	}
	return p
}

// Clients returns the DHCP/TFTP client policy, nil without DHCP.
func (p *Policy) Clients() *sanboot.StaticPolicy { return p.clients }

// CHAPSecret returns the secret of CHAP user for the connection's target
// (discovery sessions: the discovery accounts), for
// iscsitarget.Config.CHAPSecret.
func (p *Policy) CHAPSecret(meta iscsitarget.ConnMeta, user string) ([]byte, error) {
	key := strings.ToLower(meta.TargetName)
	if meta.SessionType == "Discovery" {
		key = ""
	}
	if s, ok := p.secrets[key][user]; ok {
		return s, nil
	}
	return nil, iscsitarget.ErrUnknownUser
}

// Authorize says whether the connection's initiator may use its target,
// for iscsitarget.Config.Authorize. With DHCP an initiator IQN handed out
// to a client may use that client's target only, and initiator names the
// policy did not hand out follow the unknown-client rule; a refused login
// to a normal session is a login-failed event of the client (discovery
// sessions only leave the target out of their list). Without DHCP every
// initiator may use every target.
func (p *Policy) Authorize(m iscsitarget.ConnMeta) error {
	if p.clients == nil {
		return nil
	}
	_, err := p.clients.AuthorizeISCSI(m.InitiatorName, m.TargetName)
	if err != nil && m.SessionType == "Normal" {
		p.events.Record(p.ClientOf(m.RemoteAddr, m.InitiatorName), "iscsi", sanboot.StateLoginFailed, "login refused: initiator not authorized for target",
			slog.String("remote", fmt.Sprint(m.RemoteAddr)), slog.String("initiator", m.InitiatorName), slog.String("target", m.TargetName),
			slog.String("session", m.SessionType), slog.String("err", err.Error()))
	}
	return err
}

// Overlay says whether initiator gets its own overlay and which computer
// name a new overlay is given ("" for none).
func (p *Policy) Overlay(initiator string) (overlay bool, name string) {
	if p.clients != nil {
		if cl, err := p.clients.ClientByIQN(initiator); err == nil {
			name = cl.Name
		}
	}
	return OverlayWanted(p.clients, initiator), name
}

// ClientOf names the client behind an iSCSI connection for the log: with
// DHCP the MAC that leased the remote address or was given the initiator
// name, else the remote address.
func (p *Policy) ClientOf(remote net.Addr, initiator string) string {
	if p.clients == nil {
		return sanboot.ClientOf(nil, nil, remote, "")
	}
	return sanboot.ClientOf(p.events, p.clients, remote, initiator)
}

// OverlayWanted says whether initiator iqn gets an overlay: a client of
// the policy as its overlay switch says (on by default with an overlay
// directory), initiator names the policy did not hand out always, and
// every initiator without a policy (no DHCP).
func OverlayWanted(p *sanboot.StaticPolicy, iqn string) bool {
	if p == nil {
		return true
	}
	cl, err := p.ClientByIQN(iqn)
	if err != nil {
		return true
	}
	return cl.Overlay
}
