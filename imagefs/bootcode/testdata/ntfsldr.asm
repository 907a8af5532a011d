; ntfsldr.asm - a stand-in NTLDR for the NTFS boot tests (not shipped).
;
; The NTFS boot code loads this file to 2000:0000 and jumps to it. It
; reports on COM1 what it finds and exits QEMU through isa-debug-exit
; (port 0xF4, exit status (0x10 << 1) | 1 = 33):
;   DL=xx          the drive number it was entered with
;   BPBDL=xx       the BPB drive field at 0:7C24
;   FS=...         the 8 bytes at 0:7C03 (the OEM id, "NTFS    ")
;   SP=xxxx        its stack pointer (SS is printed as part of SEGS)
;   SEGS=xxxx,xxxx,xxxx  DS, ES and SS on entry
;   CS=xxxx        its code segment
;   HASH=xxxxxxxx  h = h*31 + byte over the SIZE bytes at 2000:0000
;   EXT=xxxx CHS=xxxx  INT 13h call counts kept at 0:04F2 and 0:04F0 by the
;                  test option ROM (noext.asm) when it is loaded
; The test pads the file with pseudo-random bytes and stores its length at
; offset 4 before computing the expected hash.

bits 16
cpu 386
org 0

E_DS    equ 0x500
E_ES    equ 0x502
E_SS    equ 0x504
E_SP    equ 0x506

        jmp short start
        nop
        db 0
size:   dd 0                            ; patched by the test

start:
        ; SeaBIOS mirrors INT 10h output to COM1 from its timer interrupt;
        ; with interrupts off it cannot overwrite a character of ours.
        cli
        mov bx, ds                      ; the entry state, kept at 0:0500
        mov cx, es                      ; (not in this image: the hash
        mov si, ss                      ; covers it)
        mov di, sp
        xor ax, ax
        mov es, ax
        mov [es:E_DS], bx
        mov [es:E_ES], cx
        mov [es:E_SS], si
        mov [es:E_SP], di
        mov bp, dx                      ; keep DL
        push cs
        pop ds
        mov si, m_start
        call puts
        mov ax, bp
        call hex8
        mov si, m_bpbdl
        call puts
        xor ax, ax
        mov es, ax
        mov al, [es:0x7C24]
        call hex8
        mov si, m_fs
        call puts
        mov bx, 0x7C03
        mov cx, 8
.fs:    mov al, [es:bx]
        call putc
        inc bx
        loop .fs
        mov si, m_cs
        call puts
        mov ax, cs
        call hex16
        mov si, m_sp
        call puts
        mov ax, [es:E_SP]
        call hex16
        mov si, m_segs
        call puts
        mov ax, [es:E_DS]
        call hex16
        mov al, ','
        call putc
        mov ax, [es:E_ES]
        call hex16
        mov al, ','
        call putc
        mov ax, [es:E_SS]
        call hex16

        ; Hash the whole loaded image, crossing 64 KiB segments.
        xor ebx, ebx
        mov ecx, [size]
        push 0x2000
        pop es
        xor di, di
.hash:  imul ebx, ebx, 31
        movzx eax, byte [es:di]
        add ebx, eax
        inc di
        jnz .same
        mov ax, es
        add ax, 0x1000
        mov es, ax
.same:  dec ecx
        jnz .hash
        mov si, m_hash
        call puts
        mov eax, ebx
        call hex32

        xor ax, ax
        mov es, ax
        mov si, m_ext
        call puts
        mov ax, [es:0x4F2]
        call hex16
        mov si, m_chs
        call puts
        mov ax, [es:0x4F0]
        call hex16
        mov si, m_end
        call puts

        mov al, 0x10
        out 0xF4, al                    ; isa-debug-exit
.halt:  hlt
        jmp short .halt

puts:   lodsb
        test al, al
        jz .ret
        call putc
        jmp short puts
.ret:   ret

putc:   push dx
        push ax
        mov dx, 0x3FD                   ; line status: wait for THR empty
.wait:  in al, dx
        test al, 0x20
        jz .wait
        pop ax
        mov dx, 0x3F8
        out dx, al
        pop dx
        ret

hex32:  push eax
        shr eax, 16
        call hex16
        pop eax
hex16:  push ax
        mov al, ah
        call hex8
        pop ax
hex8:   push ax
        shr al, 4
        call hex4
        pop ax
hex4:   push ax
        and al, 0x0F
        add al, '0'
        cmp al, '9'
        jbe .digit
        add al, 'A' - '0' - 10
.digit: call putc
        pop ax
        ret

m_start: db 13, 10, "NTLDR-TEST DL=", 0
m_bpbdl: db " BPBDL=", 0
m_fs:    db " FS=", 0
m_cs:    db " CS=", 0
m_sp:    db " SP=", 0
m_segs:  db " SEGS=", 0
m_hash:  db " HASH=", 0
m_ext:   db " EXT=", 0
m_chs:   db " CHS=", 0
m_end:   db " END", 13, 10, 0
