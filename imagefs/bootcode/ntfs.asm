; ntfs.asm - xpboot NTFS volume boot code that loads NTLDR.
;
; Written for xpboot from public interface descriptions only (BIOS INT 10h
; and INT 13h as listed in Ralf Brown's interrupt list, the EDD disk address
; packet, the NTFS on-disk structures as documented publicly by the Linux-NTFS
; project and ReactOS); it copies no other boot code.
;
; Assemble: nasm -f bin -o ntfs.bin ntfs.asm
; The BOOTSECT.DAT variant, ntfsldr.asm, defines SETUP_LOADER (a five-letter
; name, UTF-16 words) and includes this file: its first stage renames the
; file the second stage looks for (see SETUP_LOADER below). The variant's
; sectors 1..15 are this file's byte for byte.
;
; The output is 8192 bytes, the 16 sectors of $Boot at the start of the
; volume:
;   bytes    0..511   the boot sector: EB 52 90, the OEM id "NTFS    ", zeros
;                     where the formatter's BPB lives (0x0B..0x53), the first
;                     stage from 0x54, and 55 AA at 510;
;   bytes 512..8191   the second stage; its last four bytes are the tag
;                     "XPBN", which stage 1 checks before running it.
;
; Run-time contract:
;   - entered at 0:7C00 (or 07C0:0000) with DL = BIOS drive number and the
;     boot sector with its BPB at 0:7C00;
;   - DL is stored in the BPB's drive field (0x24, the byte Windows' format
;     sets to 80h); the BPB is otherwise only read: bytes per sector (0x0B,
;     must be 512), sectors per cluster (0x0D), sectors per track (0x18) and
;     heads (0x1A) for CHS, hidden sectors (0x1C, the volume's first sector
;     on the disk), the $MFT cluster (0x30) and clusters per MFT record
;     (0x40); the index block size comes from the root's $INDEX_ROOT;
;   - disk reads are one sector at a time, INT 13h AH=42h when AH=41h reports
;     the extensions (fixed disk access subset), else AH=02h with CHS computed
;     from the BPB's geometry; a read is tried five times with a disk reset in
;     between, then "Disk error";
;   - stage 1 loads sectors 1..15 of the volume to 0:7E00 and checks the tag
;     ("Boot code damaged" if it is wrong);
;   - stage 2 reads MFT record 0 from the $MFT cluster, applies its update
;     sequence fixups and keeps the runlist of $MFT's unnamed $DATA; every
;     other record is read through that runlist, so a fragmented $MFT works;
;   - record 5 (the root directory): $INDEX_ROOT "$I30" gives the root node,
;     $INDEX_ALLOCATION "$I30" the INDX blocks, a resident $BITMAP "$I30"
;     which blocks are in use (a child pointing at a free block is damage);
;     the B+tree is walked from the root, comparing the key names with
;     "NTLDR" after upper-casing a-z (enough for an ASCII name: every
;     volume's $UpCase maps a-z to A-Z and leaves A-Z, digits and ASCII
;     punctuation as they are);
;   - the entry's MFT record must be in use and not a directory; its unnamed
;     $DATA is loaded to 2000:0000 upwards: a resident value is copied, a
;     non-resident one is read run by run (any number of runs; sparse runs
;     read as zeros); the segment advances 0x20 per sector so 64 KiB
;     boundaries need no special case;
;   - control passes to 2000:0000 with DL = boot drive, DS = ES = SS = 0,
;     SP just below 0:7C00 and the boot sector intact at 0:7C00, which is
;     what a loader started at 2000:0000 by an NTFS boot sector may rely on
;     (syslinux's chain.c32 "ntldr=" hands over to NTLDR the same way: the
;     file at 2000:0000, the boot sector at 0:7C00 with correct hidden
;     sectors, DL = drive).
; Limits: volumes whose sectors fit in 32 bits (2 TiB), MFT records and index
; blocks of 512 to 4096 bytes, NTLDR at most 0x7F000 bytes (it must end
; below 0x9F000). Attributes continued in other records through an
; $ATTRIBUTE_LIST are not followed: reading past the base record's runlist
; gives "NTFS damaged", a base record without the attribute "NTLDR is
; missing" or "NTFS damaged". Errors print a message through INT 10h
; AH=0Eh, then the code halts with interrupts enabled (a hlt loop):
;   "Disk error"             a read failed five times or left CHS range
;   "Boot code damaged"      sectors 1..15 are not this code's
;   "NTFS not supported"     sector size not 512, records or index blocks
;                            over 4 KiB, $MFT beyond 2 TiB
;   "NTFS damaged"           bad FILE/INDX magic, update sequence mismatch,
;                            attributes or index entries out of bounds,
;                            a runlist ending early, a tree deeper than 16
;   "NTLDR is missing"       no entry, a directory, a record not in use,
;                            no or empty unnamed $DATA
;   "NTLDR is compressed"    compressed or encrypted $DATA
;   "NTLDR is too big"       more than 0x7F000 bytes
;
; Memory: stack below 0:7BC0, variables 0:7BC0..7BFF, $Boot 0:7C00..9BFF,
; $MFT record 0:A000, root record 0:B000, index block 0:C000, NTLDR's record
; 0:D000 (each up to 4 KiB), NTLDR 2000:0000..9F00:0000.

bits 16
cpu 386
org 0x7C00

; BPB fields, relative to BP = 0x7C00.
BPB_BPS         equ 0x0B        ; word  bytes per sector
BPB_SPC         equ 0x0D        ; byte  sectors per cluster
BPB_SPT         equ 0x18        ; word  sectors per track
BPB_HEADS       equ 0x1A        ; word  heads
BPB_HIDDEN      equ 0x1C        ; dword sectors before the volume
BPB_DRIVE       equ 0x24        ; byte  BIOS drive number
BPB_MFT         equ 0x30        ; qword first cluster of $MFT
BPB_RECSIZE     equ 0x40        ; byte  clusters per MFT record (< 0: 2^-n bytes)

; Variables below the boot sector, relative to BP.
V_EXT           equ -1          ; byte  1 = use INT 13h extensions
V_RECSEC        equ -4          ; word  sectors per MFT record
V_IBSEC         equ -6          ; word  sectors per index block
V_VCNSEC        equ -8          ; word  sectors per index VCN
V_MFTDATA       equ -10         ; word  $MFT's $DATA attribute (in MFTREC)
V_IALLOC        equ -12         ; word  root's $INDEX_ALLOCATION, 0 if none
V_IBMP          equ -14         ; word  root's resident $BITMAP value, 0 if none
V_DEPTH         equ -16         ; word  tree levels left
V_IBMPLEN       equ -20         ; dword length of the $BITMAP value
V_TARGET        equ -24         ; dword VCN find_lcn looks for
V_CUR           equ -28         ; dword first VCN of the current run
V_LCN           equ -32         ; dword LCN of the current run
V_RUNEND        equ -34         ; word  end of the attribute holding the runlist
V_VCN           equ -38         ; dword VCN of the index block being read
V_SIZE          equ -64         ; bottom of the variables

STAGE2          equ 0x7E00
BOOT_SECTORS    equ 16
MFTREC          equ 0xA000
DIRREC          equ 0xB000
IDXBUF          equ 0xC000
FILEREC         equ 0xD000
LOADSEG         equ 0x2000
ENDSEG          equ 0x9F00      ; first paragraph NTLDR may not reach
MAXREC          equ 8           ; sectors: 4 KiB records and index blocks
MAXDEPTH        equ 16
TRIES           equ 5

; Attribute types and record offsets (NTFS 3.1).
AT_DATA         equ 0x80
AT_INDEX_ROOT   equ 0x90
AT_INDEX_ALLOC  equ 0xA0
AT_BITMAP       equ 0xB0

; ---------------------------------------------------------------- sector 0
        jmp short start
        nop
        db "NTFS    "
        times 0x54 - ($ - $$) db 0      ; BPB: the formatter's, not ours

start:
        cli
        xor ax, ax
        mov ss, ax
        mov bp, 0x7C00
        lea sp, [bp + V_SIZE]
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
        ; The rest of $Boot, sectors 1..15, right behind the boot sector.
        mov eax, [bp + BPB_HIDDEN]
        mov bx, STAGE2                  ; ES = 0
        mov cx, BOOT_SECTORS - 1
.more:
        inc eax
        call read_sector
        add bx, 512
        loop .more
        mov si, msg_code
        cmp dword [0x7C00 + BOOT_SECTORS * 512 - 4], 'XPBN'
        jne fail
%ifdef SETUP_LOADER
        jmp near rename                 ; same size as the jump below: the
                                        ; routines stage 2 calls keep their
                                        ; addresses
%else
        jmp near stage2
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
msg_code:       db 13, 10, "Boot code damaged", 0
%ifdef SETUP_LOADER
        ; BOOTSECT.DAT variant (ntfsldr.asm): the second stage on disk is
        ; the one that loads NTLDR. Its name, at name_ntldr in this build,
        ; is replaced by the loader name below in memory before it runs; a
        ; second stage without "NTLDR" there is another build's, whose
        ; calls into this stage would land elsewhere: "Boot code damaged"
        ; (SI still points at msg_code).
rename:
        mov di, name_ntldr
        push di
        mov si, ldr_from
        mov cx, NTLDR_LEN
        repe cmpsw
        pop di
        mov si, msg_code
        jne fail
        mov si, ldr_name
        mov cx, NTLDR_LEN
        rep movsw
        jmp near stage2
ldr_from:       dw 'N', 'T', 'L', 'D', 'R'
; The loader's name; InstallNTFS never writes this sector, BOOTSECT.DAT
; carries it (bootcode.NTFSSetupLoaderSector).
ldr_name:       dw SETUP_LOADER
%if ($ - ldr_name) / 2 != 5               ; NTLDR_LEN, defined in stage 2
%error "SETUP_LOADER must have as many characters as NTLDR"
%endif
%endif

STAGE1_END equ $
%if STAGE1_END - $$ > 510
%error "stage 1 does not fit in the boot sector"
%endif
        times 510 - ($ - $$) db 0
        dw 0xAA55

; ---------------------------------------------------------------- sectors 1..15
stage2:
        mov si, msg_unsupported
        cmp word [bp + BPB_BPS], 512
        jne fail
        cmp dword [bp + BPB_MFT + 4], 0
        jne fail
        mov al, [bp + BPB_RECSIZE]
        call size_sectors
        mov [bp + V_RECSEC], ax

        ; MFT record 0, $MFT itself, from the cluster the BPB names.
        mov eax, [bp + BPB_MFT]
        movzx ecx, byte [bp + BPB_SPC]
        mul ecx
        test edx, edx
        jnz fail                        ; SI = msg_unsupported
        add eax, [bp + BPB_HIDDEN]
        jc fail
        mov cx, [bp + V_RECSEC]
        push MFTREC >> 4
        pop es
        xor bx, bx
.rec0:
        call read_sector
        inc eax
        mov dx, es
        add dx, 512 >> 4
        mov es, dx
        loop .rec0
        mov di, MFTREC
        call check_record
        mov eax, AT_DATA
        xor cx, cx                      ; unnamed
        call find_attr
        jc damaged
        cmp byte [bx + 8], 0
        je damaged                      ; $MFT's data is never resident
        mov [bp + V_MFTDATA], bx

        ; Record 5, the root directory, and its $I30 index.
        mov eax, 5
        mov di, DIRREC
        call read_record
        test byte [di + 0x16], 2        ; a directory
        jz damaged
        mov eax, AT_INDEX_ROOT
        call find_i30
        jc damaged
        cmp byte [bx + 8], 0
        jne damaged                     ; $INDEX_ROOT is always resident
        push bx
        mov eax, AT_INDEX_ALLOC
        call find_i30
        mov word [bp + V_IALLOC], 0
        jc .noalloc                     ; a small directory has none
        cmp byte [bx + 8], 0
        je damaged                      ; nor is $INDEX_ALLOCATION resident
        mov [bp + V_IALLOC], bx
.noalloc:
        mov eax, AT_BITMAP
        call find_i30
        mov si, 0
        jc .nobmp
        cmp byte [bx + 8], 0
        jne .nobmp                      ; a non-resident bitmap is not checked
        mov si, [bx + 0x14]
        add si, bx
        mov eax, [bx + 0x10]
        mov [bp + V_IBMPLEN], eax
.nobmp:
        mov [bp + V_IBMP], si
        pop bx
        mov si, [bx + 0x14]
        add si, bx                      ; the $INDEX_ROOT value
        ; Index block size in bytes at +8: the VCNs of child nodes count
        ; clusters when a block fills at least a cluster, else 512-byte units.
        mov eax, [si + 8]
        test ax, 511
        jnz unsupported
        shr eax, 9
        jz unsupported
        cmp eax, MAXREC
        ja unsupported
        mov [bp + V_IBSEC], ax
        movzx cx, byte [bp + BPB_SPC]
        cmp ax, cx
        jae .vcn
        mov cx, 1
.vcn:
        mov [bp + V_VCNSEC], cx
        mov word [bp + V_DEPTH], MAXDEPTH
        add si, 0x10                    ; the root node's index header

        ; SI = an index node header: entries from SI + [SI], ending at
        ; SI + [SI + 4].
node:
        mov dx, [si + 4]                ; the node's end, within 4 KiB
        cmp dx, MAXREC * 512
        ja damaged
        mov di, [si]
        cmp di, dx
        jae damaged
        add di, si
        add dx, si
.entry:
        lea ax, [di + 0x10]
        cmp ax, dx
        ja damaged
        test byte [di + 0x0C], 2        ; the last entry has no key
        jnz .down
        cmp word [di + 0x0A], 0x42      ; a key too short for a name
        jb damaged
        call compare_name
        je found
        jb .down                        ; NTLDR sorts before this key
        mov ax, [di + 8]
        cmp ax, 0x10
        jb damaged
        add di, ax
        jmp short .entry
.down:
        test byte [di + 0x0C], 1        ; no child: not in the tree
        jz missing
        dec word [bp + V_DEPTH]
        jz damaged
        mov bx, [di + 8]
        add bx, di
        mov eax, [bx - 8]               ; the child's VCN (bits 0..31)
        cmp dword [bx - 4], 0
        jne damaged
        mov [bp + V_VCN], eax
        movzx ecx, word [bp + V_VCNSEC]
        mul ecx                         ; the block's first sector in the stream
        test edx, edx
        jnz damaged
        ; The $BITMAP bit of block (sector / sectors per block) must be set.
        mov si, [bp + V_IBMP]
        test si, si
        jz .read
        push eax
        movzx ecx, word [bp + V_IBSEC]
        div ecx                         ; EDX = 0 from the test above
        mov ecx, eax
        shr ecx, 3
        cmp ecx, [bp + V_IBMPLEN]
        jae damaged
        add si, cx
        and al, 7
        mov cl, al
        mov al, 1
        shl al, cl
        test [si], al
        jz damaged
        pop eax
.read:
        mov si, [bp + V_IALLOC]
        test si, si
        jz damaged                      ; a child but no INDX blocks
        mov cx, [bp + V_IBSEC]
        push IDXBUF >> 4
        pop es
        call read_stream
        mov di, IDXBUF
        cmp dword [di], 'INDX'
        jne damaged
        call fixup
        mov eax, [bp + V_VCN]
        cmp [di + 0x10], eax            ; the block says which VCN it is
        jne damaged
        lea si, [di + 0x18]
        jmp node

found:
        cmp word [di + 4], 0            ; record numbers beyond 32 bits
        jne missing
        mov eax, [di]
        mov di, FILEREC
        call read_record
        mov al, [di + 0x16]
        and al, 3
        cmp al, 1                       ; in use, not a directory
        jne missing
        mov eax, AT_DATA
        xor cx, cx
        call find_attr
        jc missing
        mov si, msg_compressed
        test word [bx + 0x0C], 0x40FF   ; compressed or encrypted
        jnz fail
        push LOADSEG
        pop es
        cmp byte [bx + 8], 0
        jne .nonresident
        mov cx, [bx + 0x10]             ; a resident value is at most a record
        jcxz missing
        mov si, [bx + 0x14]
        add si, bx
        xor di, di
        rep movsb
        jmp short .go
.nonresident:
        mov si, msg_big
        mov eax, [bx + 0x30]            ; data size
        cmp dword [bx + 0x34], 0
        jne fail
        cmp eax, (ENDSEG - LOADSEG) * 16
        ja fail
        test eax, eax
        jz missing
        add eax, 511
        shr eax, 9
        mov cx, ax
        mov si, bx
        xor eax, eax
        call read_stream
.go:
        mov dl, [bp + BPB_DRIVE]
        xor ax, ax
        mov es, ax
        jmp LOADSEG:0

missing:
        mov si, msg_missing
        jmp fail
unsupported:
        mov si, msg_unsupported
        jmp fail
damaged:
        mov si, msg_damaged
        jmp fail

; size_sectors turns a BPB size byte AL (clusters if positive, 2^-AL bytes
; if negative) into a count of sectors in AX, 1..MAXREC, or fails with
; "NTFS not supported".
size_sectors:
        test al, al
        js .log
        mul byte [bp + BPB_SPC]
        jmp short .check
.log:
        neg al
        sub al, 9                       ; 2^n bytes = 2^(n-9) sectors
        jb unsupported
        cmp al, 3
        ja unsupported
        mov cl, al
        mov ax, 1
        shl ax, cl
.check:
        test ax, ax
        jz unsupported
        cmp ax, MAXREC
        ja unsupported
        ret

; read_record reads MFT record EAX into DI (segment 0) through $MFT's
; runlist and checks it (check_record). EAX, BX, ECX, EDX, SI and ES are lost.
read_record:
        movzx ecx, word [bp + V_RECSEC]
        mul ecx
        test edx, edx
        jnz missing
        mov si, [bp + V_MFTDATA]
        mov dx, di
        shr dx, 4
        mov es, dx
        call read_stream
        ; fall through

; check_record checks the FILE magic of the record at DI, whose length is
; V_RECSEC sectors, and applies its fixups.
check_record:
        mov cx, [bp + V_RECSEC]
        cmp dword [di], 'FILE'
        jne damaged
        ; fall through

; fixup checks and undoes the update sequence of the CX-sector structure at
; DI: the last word of each sector must equal the update sequence number and
; gets back the word the array saved for it. SI, AX, BX, CX and DX are lost.
fixup:
        mov si, [di + 4]                ; update sequence array offset
        cmp si, 0x28
        jb damaged
        add si, di
        mov ax, [di + 6]                ; its size in words: 1 + sectors
        dec ax
        cmp ax, cx
        jne damaged
        lodsw                           ; the update sequence number
        lea bx, [di + 510]
.sector:
        cmp [bx], ax
        jne damaged
        mov dx, [si]
        mov [bx], dx
        inc si
        inc si
        add bx, 512
        loop .sector
        ret

; find_i30 looks for the attribute of type EAX named "$I30" in the record at
; DI; see find_attr.
find_i30:
        mov si, name_i30
        mov cx, 4
        ; fall through

; find_attr looks for the attribute of type EAX whose name is the CX UTF-16
; characters at SI (CX = 0: unnamed) in the record at DI. It returns the
; attribute in BX with CF clear, or CF set when the record has none.
; Attributes reaching outside the record give "NTFS damaged".
find_attr:
        push dx
        mov bx, [di + 0x14]             ; first attribute
        mov dx, [bp + V_RECSEC]
        shl dx, 9
        add dx, di
        sub dx, 4                       ; the last place for the end marker
        add bx, di
.attr:
        cmp bx, dx
        ja damaged
        cmp dword [bx], -1              ; end marker
        je .none
        push dx
        sub dx, 0x18 - 4                ; the last place for a header
        cmp bx, dx
        pop dx
        ja damaged
        cmp dword [bx + 4], 0x18
        jb damaged
        cmp [bx], eax
        jne .next
        cmp [bx + 9], cl
        jne .next
        pusha
        push es
        push word 0
        pop es
        mov di, bx
        add di, [bx + 0x0A]
        cmp ax, ax                      ; equal if there is nothing to compare
        repe cmpsw                      ; (CX = 0 leaves the flags alone)
        pop es
        popa
        je .found
.next:
        add bx, [bx + 4]
        jnc .attr
        jmp damaged
.none:
        stc
.found:
        pop dx
        ret

; compare_name compares "NTLDR" with the file name key of the index entry at
; DI, upper-casing a-z in the key, and sets the flags like cmp NTLDR, key:
; JB when NTLDR sorts first, JE when they match, JA when it sorts after.
compare_name:
        pusha
        lea si, [di + 0x10 + 0x42]      ; the name in the FILE_NAME key
        movzx cx, byte [di + 0x10 + 0x40]
        mov bx, name_ntldr
        mov dx, NTLDR_LEN
.char:
        jcxz .end
        test dx, dx
        jz .end
        lodsw
        cmp ax, 'a'
        jb .upper
        cmp ax, 'z'
        ja .upper
        sub ax, 'a' - 'A'
.upper:
        cmp [bx], ax
        jne .done
        inc bx
        inc bx
        dec dx
        dec cx
        jmp short .char
.end:
        cmp dx, cx                      ; the shorter name sorts first
.done:
        popa
        ret

; read_stream reads CX sectors of the non-resident attribute at SI from
; sector EAX of its stream into ES:0 upwards, advancing ES by 0x20 per
; sector (ES is returned past the data). Sparse clusters read as zeros;
; sectors beyond the runlist give "NTFS damaged".
read_stream:
        pushad
.sector:
        push eax
        push cx
        xor edx, edx
        movzx ecx, byte [bp + BPB_SPC]
        div ecx                         ; EAX = VCN, EDX = sector in cluster
        push edx
        call find_lcn
        pop edx
        jc damaged
        cmp eax, -1
        je .zero
        movzx ecx, byte [bp + BPB_SPC]  ; find_lcn lost CX
        push edx
        mul ecx
        pop ecx
        test edx, edx
        jnz unsupported
        add eax, ecx
        jc unsupported
        add eax, [bp + BPB_HIDDEN]
        jc unsupported
        xor bx, bx
        call read_sector
        jmp short .next
.zero:
        xor di, di
        mov cx, 256
        xor ax, ax
        rep stosw
.next:
        mov ax, es
        add ax, 512 >> 4
        mov es, ax
        pop cx
        pop eax
        inc eax
        loop .sector
        popad
        ret

; find_lcn maps VCN EAX of the non-resident attribute at SI to its LCN in
; EAX, -1 for a sparse cluster; CF is set when the runlist does not cover
; the VCN. BX, CX, DX and DI are lost. LCNs and lengths beyond 32 bits are
; taken modulo 2^32: the boot code reaches 2 TiB at most.
find_lcn:
        push si
        mov [bp + V_TARGET], eax
        mov eax, [si + 0x10]            ; the attribute's first VCN
        mov [bp + V_CUR], eax
        and dword [bp + V_LCN], 0
        mov ax, [si + 4]
        add ax, si
        mov [bp + V_RUNEND], ax
        add si, [si + 0x20]             ; the mapping pairs
.run:
        cmp si, [bp + V_RUNEND]
        jae damaged                     ; the runlist runs off its attribute
        lodsb                           ; header: offset size, length size
        test al, al
        stc
        jz .out                         ; end of the runlist
        mov bl, al
        movzx cx, bl
        and cl, 0x0F
        cmp cl, 8
        ja damaged
        xor eax, eax
        call get_le                     ; the run's length
        mov edi, eax
        movzx cx, bl
        shr cl, 4
        cmp cl, 8
        ja damaged
        or eax, -1
        jcxz .have                      ; no offset: a sparse run
        mov bx, si
        add bx, cx
        movsx eax, byte [bx - 1]
        sar eax, 31                     ; the offset's sign, for the fill
        call get_le
        add eax, [bp + V_LCN]
        mov [bp + V_LCN], eax
.have:
        mov edx, [bp + V_TARGET]
        sub edx, [bp + V_CUR]           ; the VCN's offset in this run
        add [bp + V_CUR], edi
        cmp edx, edi
        jae .run
        cmp eax, -1
        je .hole
        add eax, edx
.hole:
        clc
.out:
        pop si
        ret

; get_le reads the CX-byte little-endian number at SI into EAX, filling the
; bits above it from EAX's value on entry (0, or -1 for a negative signed
; number); only the low 32 bits are kept. SI advances past the number.
get_le:
        add si, cx
        push si
.byte:
        jcxz .done
        dec si
        shl eax, 8
        mov al, [si]
        dec cx
        jmp short .byte
.done:
        pop si
        ret

name_i30:       dw '$', 'I', '3', '0'
name_ntldr:     dw 'N', 'T', 'L', 'D', 'R'
NTLDR_LEN       equ ($ - name_ntldr) / 2
msg_missing:    db 13, 10, "NTLDR is missing", 0
msg_big:        db 13, 10, "NTLDR is too big", 0
msg_compressed: db 13, 10, "NTLDR is compressed", 0
msg_damaged:    db 13, 10, "NTFS damaged", 0
msg_unsupported: db 13, 10, "NTFS not supported", 0

STAGE2_END equ $
%if STAGE2_END - $$ > BOOT_SECTORS * 512 - 4
%error "stage 2 does not fit in $Boot"
%endif
        times BOOT_SECTORS * 512 - 4 - ($ - $$) db 0
        db 'XPBN'
