// Package auth holds the iSCSI credential and naming rules every part of
// xpboot applies alike: the CHAP account type, the one secret-length rule
// and the one iSCSI name validator. It sits below iscsitarget, sanboot and
// serve (it imports neither), so the target, the DHCP/TFTP policy and the
// command line refuse the same things with the same words.
//
// # Contract
//
//   - [Account] is one CHAP user name and secret; iscsitarget.Account is
//     the same type.
//   - [CheckSecret] is the secret rule: 12 to 16 bytes. The Microsoft iSCSI
//     initiator of Windows XP/2003 refuses any other length on a
//     connection without IPsec (SetIScsiInitiatorCHAPSharedSecret, MS-VDS),
//     and it does so after iPXE has already booted from the same secret,
//     so a boot that iPXE starts would stop in the Windows boot screen.
//     Callers that configure a boot refuse such secrets; the iscsitarget
//     library, which also serves Linux initiators, only warns.
//   - [CheckPair] holds the rules between the one-way and the mutual
//     account: mutual CHAP needs one-way CHAP, and the two secrets must
//     differ (RFC 7143 §9.2.1 and §12.1.3).
//   - [CheckName] is the iSCSI name validator for target and initiator
//     names (RFC 3720 §3.2.6): an iqn., eui. or naa. name of at most 223
//     bytes without white space, control characters or characters the
//     stringprep profile of RFC 3722 maps away or prohibits.
//
// Errors wrap [ErrSecret] or [ErrName] and never contain a secret.
package auth
