; ntfsldr.asm - the first stage of xpboot's NTFS boot code, made to load
; the setup loader $LDR$ instead of NTLDR: the BOOTSECT.DAT that
; `xpboot setup stage` writes into $WIN_NT$.~BT of an NTFS volume, as
; winnt32 /syspart does.
;
; NTLDR, given the boot.ini entry C:\$WIN_NT$.~BT\BOOTSECT.DAT, loads that
; 512-byte file to 0:7C00 and jumps to it with DL = the boot drive. This
; sector carries the volume's BPB (copied by NTFSSetupLoaderSector) and the
; same first stage as ntfs.asm; it loads the volume's own second stage from
; sectors 1..15 of $Boot, checks its "XPBN" tag and that the name at
; name_ntldr is "NTLDR", replaces that name by "$LDR$" in memory, and runs
; it. The second stage on disk is never changed, so the volume still boots
; NTLDR.
;
; Assemble: nasm -f bin -o ntfsldr.bin ntfsldr.asm
; Only the first 512 bytes are used (sectors 1..15 equal ntfs.bin's).

%define SETUP_LOADER '$', 'L', 'D', 'R', '$'
%include "ntfs.asm"
