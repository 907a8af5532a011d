// Package serve is the boot server behind `xpboot serve`: it composes the
// iSCSI target (package iscsitarget), per-client copy-on-write overlays,
// and, when asked, DHCP, TFTP and IPv6 router advertisements for iPXE
// (package sanboot) from one [Config], answers every question about a
// client from one [Policy], and runs everything under one context and
// one errgroup.
//
// # Contract
//
//   - [Config] is a plain struct: the served targets with their LUNs and
//     CHAP accounts (iscsitarget.FileTarget, the one target and credential
//     model), the discovery accounts, the overlay directory, the iSCSI
//     listen address, the target's tuning, and [Netboot] (the DHCP/TFTP
//     side; Mode off or empty runs none). [Config.Validate] checks it
//     without touching the network or a file: iSCSI names
//     (auth.CheckName), every CHAP account against the one secret rule
//     (auth.CheckSecret: 12 to 16 characters, what the Microsoft initiator
//     enforces), the one-way/mutual pairing, the DHCP settings, and the
//     clients' credentials. Errors of the configuration wrap [ErrConfig].
//   - Clients of the clients list bring credentials: a client naming a
//     CHAP user of its target without a secret gets that user's secret; a
//     client with its own user and secret adds that account to its target
//     (the target then requires CHAP from everyone); a secret that differs
//     from the target's for the same user is logged as a warning. This
//     merge happens on a copy inside the package; the caller's Config is
//     never changed.
//   - [New] validates, then binds the iSCSI listener first, then builds
//     the one [Policy] from the bound address (the port clients are told
//     is the port the target listens on, the server address the one DHCP
//     hands out), then opens the DHCP/TFTP sockets with that same policy,
//     then opens the images (or overlay bases) and builds the target whose
//     Authorize, CHAPSecret and AuthLog hooks are the policy's. Nothing is
//     built twice and no hook sees a value that is assigned later. On any
//     error everything opened so far is closed again.
//   - [Policy] answers DHCP and TFTP (through the sanboot.StaticPolicy it
//     holds), the target's authorization (an initiator IQN handed out to
//     one client may use that client's target only; others follow the
//     unknown-client rule), CHAP (the secret of a user of a target, or of
//     discovery), the overlay choice of an initiator and the name of the
//     client behind a connection for the log. Without DHCP it has no
//     clients: every initiator may use every target its CHAP allows, and
//     every initiator gets an overlay.
//   - [Server.Serve] runs the target and the DHCP/TFTP loops in one
//     errgroup: the first failure cancels the rest; it returns after the
//     target has ended its sessions and flushed every image. [Server.Close]
//     closes the sockets and images.
//   - Overlays: with OverlayDir each LUN's image is served read-only as the
//     base (overlay.OpenBase, which also gives a raw base the flat VMDK
//     descriptor the deltas name as parent, and Base.Register records the
//     directory beside the base) and each initiator name gets
//     DIR/<name>.vmdk (overlay.Name), a VMDK delta created at its first
//     login and reopened afterwards (Base.Open); a client's computer name
//     is written into a new overlay through integrate/installed. This
//     package only maps the policy's answer to Base.Open or Base.Shared and
//     records the outcome as events; `xpboot overlay list|reset` manage
//     the directory (overlay.List, overlay.Reset).
//   - The command line's text forms are read here too, so that
//     cmd/xpboot only maps flags: [ImageTarget] (the one target of
//     --image, with its accounts from [AccountSources]: flags, the
//     environment, secrets files), [ReadConfigFile] (ietd.conf),
//     [NetbootText] (addresses, range, lease directory, [ReadClients]),
//     [DefaultIQN] and [DefaultStateDir].
//   - Every step of a client is recorded in one sanboot.EventLog (DHCP,
//     TFTP, iSCSI logins, overlays); [Server.Listening] describes the
//     listening sockets and served targets for status output.
//
// The package never prints; it logs through the Config's slog.Logger and
// never imports the command packages.
package serve
