// Package iscsitarget is a userspace iSCSI target (RFC 7143) serving
// blockdev.Device disks to iPXE, the Windows XP/2003 iSCSI initiator,
// libiscsi and QEMU.
//
// A Server is built from a Config by NewServer, which copies it, applies
// defaults in one place and refuses unusable or insecure setups. Serve
// accepts connections on a caller-supplied net.Listener; Shutdown ends
// connections after their in-flight commands and flushes every device.
//
// Layers: pdu.go (framing, digests, length checks before allocation),
// text.go (key=value parsing and negotiation result functions), login.go
// (security → operational → full-feature stages as a typed state, CHAP in
// chap.go), session.go (sessions, CmdSN window, NOP/Logout; Text requests
// in textreq.go, idle pings in idle.go), task.go (SCSI command tasks:
// immediate, unsolicited and R2T-solicited data), datain.go (Data-In and
// responses), tmf.go (task management), budget.go (the memory budget).
// The SCSI layer is table-driven: scsi_table.go holds one row per
// operation code and service action (name, CDB length, data direction,
// reservation class, block-range decoding, handler) from which the
// dispatcher execSCSI, CDB lengths, REPORT SUPPORTED OPERATION CODES and
// the reservation checks all read; execSCSI checks every block command's
// CDB fields, LBA range, write protection and transfer length (against
// the Block Limits page's MAXIMUM TRANSFER LENGTH) in one place before its
// handler runs. Handlers live in scsi_block.go (SBC), scsi_spc.go (SPC)
// and pr.go (persistent reservations); scsi.go holds the LU and sense
// helpers.
//
// Target names must pass auth.CheckName, the one iSCSI name validator of
// xpboot; Account is auth.Account, and secrets outside auth.CheckSecret's
// 12 to 16 bytes (what the Windows initiator accepts) are logged as a
// warning, not refused, since Linux initiators take any length (xpboot
// serve refuses them before it builds a Server).
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
// connection. Memory is bounded by configuration, not by clients: READ
// data is copied from the device in chunks of at most 1 MiB while it is
// sent, write buffers are allocated only when the budget (per connection,
// per source address, per server) has room, and a connection whose client
// stops reading holds at most its share. Connections and sessions are
// capped per source address and sessions per initiator name, below the
// global caps; failed logins delay the answers to later failures of the
// same user and address, never a correct login; TARGET RESETs act on the
// caller's own sessions unless Config.AllowGlobalReset. docs/iscsi.md
// lists every limit.
//
// iPXE specifics honoured here: the T bit it sets on every login PDU is
// ignored until CHAP is complete, no NOP-In ping is ever sent to iPXE or
// gPXE (recognised by the ISID they build from IANA enterprise number
// 10019; their dead sessions are reaped through TCP keepalive, other
// initiators' idle connections are pinged), Data-In is split by the
// initiator's MaxRecvDataSegmentLength and MaxBurstLength, and StatSN,
// ExpCmdSN and MaxCmdSN are filled in every PDU it may read them from.
package iscsitarget
