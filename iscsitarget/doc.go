// Package iscsitarget is a userspace iSCSI target (RFC 7143) serving
// blockdev.Device disks to iPXE, the Windows XP/2003 iSCSI initiator,
// libiscsi and QEMU.
//
// A Server is built from a Config by NewServer, which copies it, applies
// defaults in one place and refuses unusable or insecure setups. Serve
// accepts connections on a caller-supplied net.Listener; Shutdown ends
// connections after their in-flight commands and flushes every device.
//
// Layers, one file each: pdu.go (framing, digests, length checks before
// allocation), text.go (key=value parsing and negotiation result
// functions), login.go (security → operational → full-feature stages as a
// typed state, CHAP in chap.go), session.go (sessions, CmdSN window,
// Text/NOP/Logout), task.go (SCSI command tasks: immediate, unsolicited and
// R2T-solicited data, Data-In, task management), scsi.go and pr.go (the SBC
// and SPC command set and reservations).
//
// Who may use which target is the caller's: Config.Authorize sees the
// initiator and target names before authentication and refuses a login
// with status 0x0202 (authorization failure); it also filters SendTargets
// in discovery sessions.
//
// The initiator is treated as hostile: login rounds, text continuations,
// R2Ts, queued commands and CHAP tries are bounded, a malformed PDU is
// answered with a Reject or ends its connection with an error naming the
// opcode and ITT, and a panic in a connection handler only drops that
// connection.
//
// iPXE specifics honoured here: the T bit it sets on every login PDU is
// ignored until CHAP is complete, no unsolicited NOP-In is ever sent (dead
// sessions are reaped through TCP keepalive instead), Data-In is split by the
// initiator's MaxRecvDataSegmentLength and MaxBurstLength, and StatSN,
// ExpCmdSN and MaxCmdSN are filled in every PDU it may read them from.
package iscsitarget
