// Package sanboot answers the network half of an iPXE SAN boot: DHCP (full
// or proxy), the PXE port 4011, and read-only TFTP for the iPXE binaries and
// generated boot scripts. The iSCSI target itself lives in package
// iscsitarget; package serve composes both for `xpboot serve`.
//
// # Contract
//
//   - A [Target] names one iSCSI disk (server, port, target IQN, LUN) and the
//     CHAP credentials a client presents: the client's view of a served
//     target. [Target.Validate] applies package auth's rules (the iSCSI
//     name validator, CHAP secrets of 12 to 16 characters, mutual CHAP
//     only with one-way CHAP and another secret); [Target.RootPath] is iPXE's
//     `iscsi:<server>:<protocol>:<port>:<LUN>:<IQN>` form and [ParseRootPath]
//     reads it back.
//   - A [Policy] maps a client MAC to a [Client]: its initiator IQN, target,
//     boot file, overlay flag and credentials. The same policy answers DHCP,
//     TFTP (per-client scripts) and, later, the iSCSI target's access checks.
//     [NewStaticPolicy] builds one from the configuration's clients section
//     and an unknown-client rule ([UnknownServe] or [UnknownIgnore]);
//     [StaticPolicy.ClientByIQN] maps an initiator name back to its client
//     for the target (client initiator IQNs must pass auth.CheckName),
//     and [StaticPolicy.Reserved] feeds the lease table's
//     fixed addresses. Client.Image and Client.Overlay are carried for the
//     target; DHCP and TFTP do not use them.
//   - Options are typed values on github.com/insomniacslk/dhcp: [OptRootPath]
//     (17), [OptIPXE] (175 with [IPXESettings]), [OptInitiatorIQN] (203),
//     [OptPXEVendor] (43) and [OptPXEClient] (60). Every reply is built by
//     dhcpv4.NewReplyFromRequest from named [dhcpv4.Modifier] policies
//     ([WithSANBoot], [WithChainload], [WithProxyOffer], [WithoutGateway],
//     [WithInitiatorIQN], [WithLease] …); no code here writes option bytes by
//     hand except the encoders of those types.
//   - The chainload loop is broken by [Classify]: a request carrying option
//     175 or user class "iPXE" gets the SAN answer; a plain PXE ROM gets the
//     iPXE binary chosen by option 93 ([BootFiles]).
//   - [DHCPServer] and [TFTPServer] take a context and a net.PacketConn that
//     the caller opens ([ListenDHCP] for a real interface, loopback in tests),
//     stop when the context ends, never spawn a goroutine per packet, ignore
//     malformed packets with a debug log, and log with slog attributes
//     client (MAC), proto and state. Both record into a shared [EventLog]
//     that keeps the last N events per client for status output;
//     [EventLog.Watch] streams every kept event (`xpboot serve --json`). The
//     caller records the iSCSI side into the same log ([StateLogin],
//     [StateLoginFailed], [StateOverlay]) and can wrap the target's logger
//     in [ClientLogHandler], so every line about a connection names the
//     client's MAC.
//   - Full mode answers only its own link: requests a relay agent forwarded
//     (giaddr set) are ignored, the first one with a warning.
//   - [Server] composes them (and further loops such as the iSCSI target)
//     under one context: the caller opens all sockets first, the first
//     failure stops everything.
//   - A [RouterAdvertiser] answers IPv6 router solicitations on the client
//     link (an [NDPConn] from [ListenNDP]: raw ICMPv6, hop limit 255, from
//     the link-local address) with [EndsIPXEWait]: router lifetime 0, no
//     prefix, M and O clear, so iPXE ends its IPv6 configuration at once
//     and no host routes through this server. It keeps RFC 4861's
//     multicast rate limit by answering inside it by unicast, and stays
//     quiet while another router on the link advertises a route, a prefix
//     or DHCPv6. [ParseRouterSolicitation] and [ParseRouterAdvertisement]
//     check what they read and name the offending byte ([NDPError]).
//   - In proxy mode a REQUEST asking for an address (option 50) is never
//     answered on port 67, even when it names the proxy's address: it
//     selects the offer of a DHCP server sharing that address.
//   - [ProbeDHCP] lets full mode warn about another DHCP server on the link
//     before it starts; while running, a REQUEST naming another server
//     identifier is logged as a warning too.
//   - Leases live in a [Leases] table persisted as JSON, written to a temporary
//     file and renamed, so a crash never leaves a torn file.
//
// The package never prints and never imports the command packages.
package sanboot
