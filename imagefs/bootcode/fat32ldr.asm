; fat32ldr.asm - the first stage of xpboot's FAT32 boot code, made to load
; the setup loader $LDR$ instead of NTLDR: the BOOTSECT.DAT that
; `xpboot setup stage` writes into $WIN_NT$.~BT, as winnt32 /syspart does.
;
; NTLDR, given the boot.ini entry C:\$WIN_NT$.~BT\BOOTSECT.DAT, loads that
; 512-byte file to 0:7C00 and jumps to it with DL = the boot drive. This
; sector carries the volume's BPB (copied by FAT32SetupLoaderSector) and
; the same first stage as fat32.asm; it loads the volume's own second stage
; from reserved sector 12, checks its "XPB2" tag, replaces the name
; "NTLDR      " in it by "$LDR$      " in memory, and runs it. The second
; stage on disk is never changed, so the volume still boots NTLDR.
;
; Assemble: nasm -f bin -o fat32ldr.bin fat32ldr.asm
; Only the first 512 bytes are used (the second sector equals fat32.bin's).

%define SETUP_LOADER "$LDR$      "
%include "fat32.asm"
