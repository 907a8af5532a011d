; fat32.asm - xpboot FAT32 volume boot code that loads NTLDR.
;
; Written for xpboot from public interface descriptions only (BIOS INT 10h
; and INT 13h as listed in Ralf Brown's interrupt list, the EDD disk address
; packet, Microsoft's published FAT32 on-disk format); it copies no other
; boot code.
;
; Assemble: nasm -f bin -o fat32.bin fat32.asm
; The BOOTSECT.DAT variant, fat32ldr.asm, defines SETUP_LOADER (an 11-byte
; 8.3 directory name) and includes this file: its first stage renames the
; file the second stage looks for (see SETUP_LOADER below).
;
; The output is 1024 bytes, two sectors:
;   bytes    0..511   the volume's boot sector (sector 0 of the partition):
;                     EB 58 90, then zeros where the formatter's BPB lives
;                     (bytes 3..0x59, never written by InstallFAT32), the
;                     first stage at 0x5A..0x1FD, and 55 AA;
;   bytes  512..1023  the second stage, written to reserved sector 12 of the
;                     volume (and to BkBootSec+12, the backup). Its last six
;                     bytes are the tag "XPB2" and 55 AA.
;
; Run-time contract:
;   - entered at 0:7C00 (or 07C0:0000) with DL = BIOS drive number and the
;     boot sector with its BPB at 0:7C00;
;   - DL is stored in the BPB drive-number field (0x40), the BPB is
;     otherwise only read;
;   - disk reads are one sector at a time, INT 13h AH=42h when AH=41h reports
;     the extensions (fixed disk access subset), else AH=02h with CHS computed
;     from the BPB's sectors per track (0x18) and heads (0x1A); a read is
;     tried five times with a disk reset in between, then "Disk error";
;   - stage 1 loads sector hidden+12 to 0:7E00 and checks its tag
;     ("Boot sector 12 damaged" if it is wrong);
;   - stage 2 walks the root directory's cluster chain (BPB 0x2C) through the
;     active FAT (BPB 0x28 ExtFlags), looking for the 8.3 entry "NTLDR      "
;     that is neither a directory nor a volume label; deleted and long-name
;     entries never match. A missing entry, an empty file or the end of the
;     directory gives "NTLDR is missing";
;   - a file larger than 0x7F000 bytes, or a cluster chain reaching past
;     0x9F000, gives "NTLDR is too big";
;   - the whole cluster chain is loaded from 2000:0000 upwards, advancing the
;     segment 0x20 per sector so 64 KiB boundaries need no special case;
;   - control passes to 2000:0000 with DL = boot drive, DS = ES = SS = 0, the
;     BPB intact at 0:7C00.
; Messages go through INT 10h AH=0Eh, then the code halts with interrupts
; enabled (a hlt loop).
;
; Memory: 0:0500 unused, stack below 0:7BF0, variables 0:7BF0..7BFF,
; boot sector 0:7C00, stage 2 0:7E00, directory sector 0:8000, FAT sector
; 0:8200, NTLDR 2000:0000..9F00:0000.

bits 16
cpu 386
org 0x7C00

; BPB fields, relative to BP = 0x7C00.
BPB_SPC         equ 0x0D        ; byte  sectors per cluster
BPB_RESERVED    equ 0x0E        ; word  reserved sectors
BPB_NFATS       equ 0x10        ; byte  number of FATs
BPB_SPT         equ 0x18        ; word  sectors per track
BPB_HEADS       equ 0x1A        ; word  heads
BPB_HIDDEN      equ 0x1C        ; dword sectors before the volume
BPB_FATSZ       equ 0x24        ; dword sectors per FAT
BPB_EXTFLAGS    equ 0x28        ; word  bit 7: one active FAT, bits 0-3: its number
BPB_ROOT        equ 0x2C        ; dword first cluster of the root directory
BPB_DRIVE       equ 0x40        ; byte  BIOS drive number

; Variables below the boot sector, relative to BP.
V_DATA          equ -4          ; dword LBA of cluster 2
V_FAT           equ -8          ; dword LBA of the active FAT
V_CACHED        equ -12         ; dword LBA of the FAT sector at FATBUF
V_EXT           equ -13         ; byte  1 = use INT 13h extensions

STAGE2_SECTOR   equ 12
STAGE2          equ 0x7E00
DIRBUF          equ 0x8000
FATBUF          equ 0x8200
LOADSEG         equ 0x2000
ENDSEG          equ 0x9F00      ; first paragraph NTLDR may not reach
TRIES           equ 5

; ---------------------------------------------------------------- sector 0
        jmp short start
        nop
        times 0x5A - ($ - $$) db 0      ; BPB: the formatter's, not ours

start:
        cli
        xor ax, ax
        mov ss, ax
        mov bp, 0x7C00
        lea sp, [bp - 16]
        mov ds, ax
        mov es, ax
        sti
        cld
        jmp 0:.cs0                      ; some BIOSes enter at 07C0:0000
.cs0:
        mov [bp + BPB_DRIVE], dl

        ; INT 13h extensions: AH=41h, BX=55AAh -> CF clear, BX=AA55h, CX bit 0.
        mov byte [bp + V_EXT], 0
        mov ah, 0x41
        mov bx, 0x55AA
        int 0x13
        jc .noext
        cmp bx, 0xAA55
        jne .noext
        and cl, 1
        mov [bp + V_EXT], cl
.noext:
        ; Stage 2 from reserved sector 12, tagged "XPB2" at its end.
        mov eax, [bp + BPB_HIDDEN]
        add eax, byte STAGE2_SECTOR
        mov bx, STAGE2                  ; ES = 0
        call read_sector
        mov si, msg_stage2
        cmp dword [STAGE2 + 506], 'XPB2'
        jne fail
%ifdef SETUP_LOADER
        jmp near rename                 ; same size as the jump below: the
                                        ; routines stage 2 calls keep their
                                        ; addresses
%else
        jmp stage2
%endif

; read_sector reads the sector at absolute LBA EAX into ES:BX, retrying;
; it preserves every register and prints "Disk error" if all tries fail.
read_sector:
        pushad
        mov di, TRIES
.try:
        pushad
        mov dl, [bp + BPB_DRIVE]
        cmp byte [bp + V_EXT], 0
        je .chs
        push dword 0                    ; disk address packet: LBA 63..32
        push eax                        ; LBA 31..0
        push es                         ; buffer segment
        push bx                         ; buffer offset
        push byte 1                     ; one sector
        push byte 16                    ; packet size
        mov si, sp
        mov ah, 0x42
        int 0x13
        lea sp, [si + 16]               ; drop the packet, keep CF
        jmp short .done
.chs:
        xor edx, edx
        movzx ecx, word [bp + BPB_SPT]
        div ecx                         ; EAX = track, EDX = sector - 1
        inc dx
        mov cx, dx                      ; CL = sector, CH = 0
        xor edx, edx
        movzx esi, word [bp + BPB_HEADS]
        div esi                         ; EAX = cylinder, EDX = head
        cmp eax, 1023
        ja disk_error                   ; beyond CHS reach
        mov ch, al
        shl ah, 6
        or cl, ah                       ; cylinder bits 8-9 in CL 7-6
        mov dh, dl
        mov dl, [bp + BPB_DRIVE]
        mov ax, 0x0201
        int 0x13
.done:
        popad                           ; flags survive
        jnc .ok
        pushad
        xor ah, ah                      ; reset, then try again
        mov dl, [bp + BPB_DRIVE]
        int 0x13
        popad
        dec di
        jnz .try
        jmp short disk_error
.ok:
        popad
        ret

disk_error:
        mov si, msg_disk
fail:
        ; Print the NUL-terminated message at DS:SI, then halt for good.
        lodsb
        test al, al
        jz .halt
        mov ah, 0x0E
        mov bx, 7
        int 0x10
        jmp short fail
.halt:
        sti
        hlt
        jmp short .halt

msg_disk:       db 13, 10, "Disk error", 0
msg_stage2:     db 13, 10, "Boot sector 12 damaged", 0
%ifdef SETUP_LOADER
        ; BOOTSECT.DAT variant (fat32ldr.asm): the second stage on disk is
        ; the one that loads NTLDR. Replace the first "NTLDR      " in it
        ; by the loader name below before running it. SI still points at
        ; msg_stage2 for a stage 2 without that name.
rename:
        mov di, STAGE2
.find:
        pusha
        mov si, ldr_from
        mov cx, 11
        repe cmpsb
        popa
        je .patch
        inc di
        cmp di, STAGE2 + 506 - 11
        jbe .find
        jmp fail
.patch:
        mov si, ldr_name
        mov cx, 11
        rep movsb
        jmp stage2
ldr_from:       db "NTLDR      "
; The 8.3 directory entry name of the loader; InstallFAT32 never writes
; this sector, BOOTSECT.DAT carries it (bootcode.FAT32SetupLoaderSector).
ldr_name:       db SETUP_LOADER
%endif

STAGE1_END equ $
%if STAGE1_END - $$ > 510
%error "stage 1 does not fit in the boot sector"
%endif
        times 510 - ($ - $$) db 0
        dw 0xAA55

; ---------------------------------------------------------------- sector 12
stage2:
        ; First FAT: hidden + reserved. Data area: that + FATs * FAT size.
        movzx ebx, word [bp + BPB_RESERVED]
        add ebx, [bp + BPB_HIDDEN]
        movzx eax, byte [bp + BPB_NFATS]
        mul dword [bp + BPB_FATSZ]
        add eax, ebx
        mov [bp + V_DATA], eax
        ; The active FAT: number ExtFlags & 0x0F when bit 7 (no mirroring)
        ; is set, else FAT 0.
        movzx eax, byte [bp + BPB_EXTFLAGS]
        test al, 0x80
        jnz .active
        xor ax, ax
.active:
        and al, 0x0F
        mul dword [bp + BPB_FATSZ]
        add eax, ebx
        mov [bp + V_FAT], eax
        or dword [bp + V_CACHED], byte -1

        ; Walk the root directory one sector at a time.
        mov eax, [bp + BPB_ROOT]
.cluster:
        call check_cluster
        jnc missing                     ; end of the directory's chain
        push eax
        call cluster_lba                ; EAX = first sector, CX = count
.sector:
        mov bx, DIRBUF                  ; ES = 0
        call read_sector
        mov di, bx
.entry:
        cmp byte [di], 0
        je missing                      ; end of directory
        pusha
        mov si, ntldr
        mov cx, 11
        repe cmpsb
        popa
        jne .next
        test byte [di + 11], 0x18       ; directory or volume label (and LFN)
        jz found
.next:
        add di, 32
        cmp di, DIRBUF + 512
        jb .entry
        inc eax
        loop .sector
        pop eax
        call next_cluster
        jmp short .cluster

found:
        mov si, msg_big
        cmp dword [di + 0x1C], (ENDSEG - LOADSEG) * 16
        ja fail
        push word [di + 0x14]           ; first cluster, high word
        push word [di + 0x1A]           ; first cluster, low word
        pop eax
        call check_cluster
        jnc missing                     ; empty file
        push LOADSEG
        pop es
        xor bx, bx
.cluster:
        push eax
        call cluster_lba
.sector:
        mov dx, es
        cmp dx, ENDSEG
        jae fail                        ; SI = msg_big
        call read_sector
        add dx, 512 / 16
        mov es, dx
        inc eax
        loop .sector
        pop eax
        call next_cluster
        jc .cluster
        mov dl, [bp + BPB_DRIVE]
        push word 0
        pop es
        jmp LOADSEG:0

missing:
        mov si, msg_missing
        jmp fail

; cluster_lba turns cluster EAX into its first sector's LBA in EAX and the
; sectors per cluster in CX; EDX is lost.
cluster_lba:
        movzx ecx, byte [bp + BPB_SPC]
        dec eax
        dec eax
        mul ecx
        add eax, [bp + V_DATA]
        ret

; next_cluster replaces cluster EAX by its FAT entry; then, like
; check_cluster, CF is set when EAX is a usable cluster number (2 up to
; 0x0FFFFFF6), clear at the end of a chain or on a free, reserved or bad
; entry. EDX is lost.
next_cluster:
        push es
        push bx
        push di
        push word 0
        pop es
        shl eax, 2                      ; byte offset of the entry in the FAT
        mov di, ax
        and di, 511
        shr eax, 9
        add eax, [bp + V_FAT]
        cmp eax, [bp + V_CACHED]
        je .cached
        mov [bp + V_CACHED], eax
        mov bx, FATBUF
        call read_sector
.cached:
        mov eax, [di + FATBUF]
        and eax, 0x0FFFFFFF
        pop di
        pop bx
        pop es
check_cluster:
        lea edx, [eax - 2]
        cmp edx, 0x0FFFFFF7 - 2
        ret

ntldr:          db "NTLDR      "
msg_missing:    db 13, 10, "NTLDR is missing", 0
msg_big:        db 13, 10, "NTLDR is too big", 0

STAGE2_END equ $
%if STAGE2_END - stage2 > 506
%error "stage 2 does not fit in one sector"
%endif
        times 1024 - 6 - ($ - $$) db 0
        db 'XPB2'
        dw 0xAA55
