; mbr.asm - xpboot master boot record code.
;
; Written for xpboot from public interface descriptions only (BIOS INT 10h
; and INT 13h as listed in Ralf Brown's interrupt list, the EDD
; specification's disk address packet); it copies no other boot code.
;
; Assemble: nasm -f bin -o mbr.bin mbr.asm
;
; The output is exactly 440 bytes: the code area of sector 0. Bytes 440..511
; (disk signature, partition table, 55 AA) are not emitted; Go's InstallMBR
; writes the code around them.
;
; Contract, like the usual PC MBR:
;   - the BIOS loads sector 0 to 0:7C00 and jumps there with DL = boot drive;
;   - the code moves itself to 0:0600 and runs on from there;
;   - exactly one of the four partition entries must have boot flag 0x80 and
;     all others 0x00, else "Invalid partition table" (a flag that is neither,
;     or two active entries) or "No active partition" is printed;
;   - the first sector of the active partition is read to 0:7C00 with
;     INT 13h AH=42h when INT 13h AH=41h reports the extensions, else with
;     AH=02h using the entry's CHS start fields; a failing read is retried
;     after a disk reset (AH=00h) up to five times in all, then
;     "Error loading operating system" is printed;
;   - a sector not ending in 55 AA gives "Missing operating system";
;   - control passes to 0:7C00 with DL = boot drive and DS:SI (and DS:BP)
;     pointing at the active entry in the relocated copy at 0:07BE..07FD.
; Messages go through INT 10h AH=0Eh; the code then halts with interrupts
; enabled (a hlt loop), so the machine stays quiet until reset.

bits 16
cpu 386
org 0x0600

LOAD    equ 0x7C00              ; where the BIOS put us, and where the VBR goes
TABLE   equ 0x0600 + 446        ; partition table in the relocated copy
DRIVE   equ 0x0500              ; one byte of free low memory: the boot drive
TRIES   equ 5

start:
        cli
        xor ax, ax
        mov ss, ax
        mov sp, LOAD
        mov ds, ax
        mov es, ax
        sti
        cld
        mov si, LOAD
        mov di, 0x0600
        mov cx, 256
        rep movsw
        jmp 0:relocated         ; continue in the copy; CS = 0 from here on

relocated:
        mov [DRIVE], dl

        ; Find the single active entry. BX = entry found so far (0 = none).
        xor bx, bx
        mov si, TABLE
        mov cl, 4               ; CH is 0 after rep movsw
.scan:
        mov al, [si]
        cmp al, 0x80
        jne .notactive
        test bx, bx
        jnz bad_table           ; a second active entry
        mov bx, si
        jmp short .next
.notactive:
        test al, al
        jnz bad_table           ; boot flag neither 0x00 nor 0x80
.next:
        add si, 16
        loop .scan
        mov si, msg_noactive
        test bx, bx
        jz fail

        mov di, TRIES
read:
        ; INT 13h extensions present? (AH=41h, BX=55AAh; CF clear, BX=AA55h
        ; and CX bit 0 "fixed disk access" set).
        mov dl, [DRIVE]
        push bx
        mov ah, 0x41
        mov bx, 0x55AA
        int 0x13
        jc .chs
        cmp bx, 0xAA55
        jne .chs
        test cl, 1
        jz .chs
        pop bx
        ; Disk address packet on the stack: size 16, 1 sector, buffer
        ; 0000:7C00, 64-bit LBA = the entry's 32-bit start.
        push dword 0
        push dword [bx + 8]
        push word 0
        push word LOAD
        push word 1
        push word 16
        mov si, sp
        mov dl, [DRIVE]
        mov ah, 0x42
        int 0x13
        lea sp, [si + 16]       ; drop the packet, keep CF
        jmp short .done
.chs:
        pop bx
        mov dl, [DRIVE]
        mov dh, [bx + 1]        ; head
        mov cx, [bx + 2]        ; CL = sector | cylinder bits 8-9, CH = cylinder
        mov ax, 0x0201          ; read one sector
        push bx
        mov bx, LOAD            ; ES = 0
        int 0x13
        pop bx
.done:
        jnc loaded
        xor ah, ah              ; reset the disk and retry
        mov dl, [DRIVE]
        int 0x13
        dec di
        jnz read
        mov si, msg_ioerror
        jmp short fail

loaded:
        mov si, msg_missing
        cmp word [LOAD + 510], 0xAA55
        jne fail
        mov si, bx
        mov bp, bx
        mov dl, [DRIVE]
        jmp 0:LOAD

bad_table:
        mov si, msg_badtable
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

msg_badtable:   db "Invalid partition table", 0
msg_noactive:   db "No active partition", 0
msg_ioerror:    db "Error loading operating system", 0
msg_missing:    db "Missing operating system", 0

%if ($ - $$) > 440
%error "MBR code is larger than 440 bytes"
%endif
        times 440 - ($ - $$) db 0
