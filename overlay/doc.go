// Package overlay owns per-client write-back: a shared base image is
// served read-only and every client writes into its own copy-on-write
// delta, so that one installed Windows boots many diskless PCs.
//
// The pieces, end to end:
//
//   - Parent: the image an overlay names as its parent. A VMDK base is its
//     own parent; a raw base gets a monolithicFlat descriptor
//     DIR/@base-NAME.vmdk whose extent is the raw file, written once and
//     checked on every later call, so that its CID (which every delta
//     records) never changes. Other containers are refused (ErrBase).
//   - Name: the file of a client, DIR/<initiator IQN, sanitised>.vmdk.
//   - Base (OpenBase): a base opened read-only for serving, with Open,
//     which reopens a client's delta or creates it (imagefs/vmdk
//     CreateDelta; vmdk checks the parent's CID on every open) and writes
//     the client's computer name into a new one through the function the
//     caller passes (Options.SetComputerName: serve passes
//     integrate/installed's, so this package does not depend on the
//     Windows integration code).
//   - The registry of overlay directories (package overlay/registry,
//     Base.Register): a file beside the base listing the directories that
//     hold its overlays, so that imagefs.Children, and with it every writer
//     into the base (xpboot image put, resize, convert over it), finds and
//     protects overlays kept elsewhere. It is a sub-package because
//     imagefs needs it and this package builds on imagefs: overlay imports
//     imagefs, imagefs imports only overlay/registry, never overlay.
//   - List and Reset: what a directory holds (client, size, parent, whether
//     the parent still matches, whether a server has it open) and removing
//     a client's delta so that it boots the base again at its next login.
//     A delta a server holds open (its exclusive lock, visible across
//     processes) is refused with ErrInUse.
//
// Nothing here knows about networks: the iSCSI target asks a serve-made
// function for a client's device at login, and that function calls
// Base.Open.
package overlay
