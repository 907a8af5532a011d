; cdboot.asm - a stand-in El Torito boot image for the iso tests (not shipped).
;
; The BIOS loads it (no emulation, 4 virtual sectors) to 0:7C00 or 07C0:0000
; with DL = the CD's drive number. It writes "CDBOOT-OK DL=xx" to COM1 and
; exits QEMU through isa-debug-exit (port 0xF4, status (0x10 << 1) | 1 = 33).
; The last sector carries a tag the test also checks, so the BIOS must have
; loaded all four virtual sectors.

bits 16
cpu 386
org 0x7C00

        cli
        jmp 0:start
start:
        xor ax, ax
        mov ds, ax
        mov bp, dx
        mov si, msg
        call puts
        cmp dword [tag], 'TAG4'
        jne .bad
        mov si, m_dl
        call puts
        mov ax, bp
        call hex8
        mov si, m_nl
        call puts
        mov al, 0x10
        out 0xF4, al
.bad:
        mov si, m_bad
        call puts
.halt:
        hlt
        jmp .halt

puts:
        lodsb
        test al, al
        jz .done
        call putc
        jmp puts
.done:
        ret

putc:
        push dx
        push ax
        mov dx, 0x3FD
.wait:
        in al, dx
        test al, 0x20
        jz .wait
        pop ax
        mov dx, 0x3F8
        out dx, al
        pop dx
        ret

hex8:
        push ax
        shr al, 4
        call nib
        pop ax
        and al, 0x0F
nib:
        add al, '0'
        cmp al, '9'
        jbe .p
        add al, 7
.p:
        jmp putc

msg:    db "CDBOOT-OK", 0
m_dl:   db " DL=", 0
m_nl:   db 13, 10, 0
m_bad:  db " short load", 13, 10, 0

        times 2048 - 4 - ($ - $$) db 0
tag:    db 'TAG4'
